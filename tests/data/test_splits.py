"""Splits: reproducible, stratified, group-aware, user-given, fixed-test; subsampling; save/load."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from graftlab.core.config import DataConfig, SplitConfig, SubsampleConfig
from graftlab.core.errors import DataError
from graftlab.data import load_split, save_split, split_data, subsample, to_labeled
from graftlab.data.split import order_values


def _labeled(frame: pd.DataFrame, **kw):
    return to_labeled(frame, DataConfig(text="review", label="score", **kw))


@pytest.fixture
def skewed(reviews_factory):
    """200 rows, 70% 'great' / 30% 'other'."""
    keep = list(range(140)) + list(range(140, 200))  # all 140 'great' rows, 60 of the 'other' ones
    frame = reviews_factory(n_per_class=140).iloc[keep].reset_index(drop=True)
    assert (frame["score"] == "great").mean() == pytest.approx(0.7)
    return frame


def _assert_partition(split, n):
    allpos = np.concatenate([split["train"], split["val"], split["test"]])
    assert len(allpos) == n and len(np.unique(allpos)) == n


def test_same_seed_same_split_and_other_seed_differs(reviews):
    data = _labeled(reviews)
    a = split_data(data, SplitConfig(seed=3))
    b = split_data(data, SplitConfig(seed=3))
    c = split_data(data, SplitConfig(seed=4))
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(a[name], b[name])
    assert any(not np.array_equal(a[n], c[n]) for n in ("train", "val", "test"))
    _assert_partition(a, len(data))


def test_stratification_keeps_class_proportions(skewed):
    data = _labeled(skewed)
    split = split_data(data, SplitConfig(train=0.6, val=0.2, test=0.2, seed=0))
    for name, pos in split.items():
        share = (data.labels[pos] == 0).mean()
        assert share == pytest.approx(0.7, abs=0.02), name
    assert len(split["train"]) == pytest.approx(120, abs=2)


def test_without_stratify_proportions_may_drift_but_sizes_hold(skewed):
    data = _labeled(skewed)
    split = split_data(data, SplitConfig(train=0.6, val=0.2, test=0.2, stratify=False, seed=0))
    _assert_partition(split, len(data))
    assert len(split["test"]) == 40


@pytest.mark.parametrize("stratify", [True, False])
def test_group_never_spans_two_splits(reviews_factory, stratify):
    data = _labeled(reviews_factory(n_per_class=50), group="product")
    split = split_data(data, SplitConfig(stratify=stratify, seed=1), group_col="product")
    _assert_partition(split, len(data))
    groups = {name: set(data.meta["product"].iloc[pos]) for name, pos in split.items()}
    assert all(groups.values())
    assert not groups["train"] & groups["val"]
    assert not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]


def test_too_few_groups_is_a_data_error(reviews):
    reviews["product"] = np.where(np.arange(len(reviews)) % 2, "p1", "p2")
    data = _labeled(reviews, group="product")
    with pytest.raises(DataError, match="Cannot make the test split"):
        split_data(data, SplitConfig(), group_col="product")


def test_split_column_fixes_the_split(reviews):
    reviews["fold"] = (["train"] * 6 + [" Val"] * 2 + ["test"] * 2) * 6
    data = _labeled(reviews, split=SplitConfig(column="fold"))
    split = split_data(data, SplitConfig(column="fold"))
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (36, 12, 12)
    np.testing.assert_array_equal(split["val"][:2], [6, 7])


def test_split_column_with_other_values_is_a_data_error(reviews):
    reviews["fold"] = ["train", "dev", "test"] * 20
    data = _labeled(reviews, split=SplitConfig(column="fold"))
    with pytest.raises(DataError, match="must hold only test, train, val; 20 rows hold 'dev'"):
        split_data(data, SplitConfig(column="fold"))


def test_split_column_with_test_rows_and_a_fixed_test_set_is_an_error(reviews):
    reviews["fold"] = ["train", "val", "test"] * 20
    data = _labeled(reviews, split=SplitConfig(column="fold"))
    with pytest.raises(DataError, match="test_source gives the test set"):
        split_data(data, SplitConfig(column="fold"), fixed_test=True)


def test_fixed_test_splits_only_train_and_val(reviews_factory):
    data = _labeled(reviews_factory(n_per_class=100))
    split = split_data(data, SplitConfig(train=0.6, val=0.2, test=0.2), fixed_test=True)
    assert len(split["test"]) == 0
    assert len(split["val"]) == 50  # val / (train + val) = 0.25 of 200
    assert len(split["train"]) == 150


def test_zero_test_fraction_needs_a_test_source(reviews):
    with pytest.raises(DataError, match="'data.split.test' fraction is 0 but there is no 'data.test_source'"):
        split_data(_labeled(reviews), SplitConfig(train=0.8, val=0.2, test=0.0))


def test_save_and_load_split_round_trip(tmp_path, reviews):
    split = split_data(_labeled(reviews), SplitConfig(seed=7))
    path = save_split(tmp_path / "split.json", split, fingerprint="abc")
    loaded = load_split(path)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(loaded[name], split[name])


def test_load_split_of_a_bad_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_split(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="not a graftlab split file"):
        load_split(tmp_path / "x.json")


def test_subsample_per_class_is_seeded_and_keeps_order(skewed):
    data = _labeled(skewed)
    a = subsample(data, SubsampleConfig(per_class=50, seed=1))
    b = subsample(data, SubsampleConfig(per_class=50, seed=1))
    c = subsample(data, SubsampleConfig(per_class=50, seed=2))
    assert list(a.class_counts()) == [50, 50]
    np.testing.assert_array_equal(a.ids, b.ids)
    assert not np.array_equal(a.ids, c.ids)
    assert np.all(np.diff(a.ids) > 0)
    assert list(subsample(data, SubsampleConfig(per_class=100)).class_counts()) == [100, 60]


def test_subsample_max_rows_is_stratified(skewed):
    data = _labeled(skewed)
    small = subsample(data, SubsampleConfig(max_rows=100, seed=0))
    assert list(small.class_counts()) == [70, 30]
    assert subsample(data, None) is data


def _dated(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Each row gets a distinct date, in an order unrelated to the row order."""
    days = np.random.default_rng(seed).permutation(len(frame))
    return frame.assign(when=[(pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(d))).strftime("%Y-%m-%d") for d in days])


def test_order_by_trains_on_the_earliest_and_tests_on_the_latest(reviews_factory):
    frame = _dated(reviews_factory(n_per_class=50))
    cfg = SplitConfig(train=0.7, val=0.1, test=0.2, order_by="when")
    split = split_data(_labeled(frame, split=cfg), cfg)
    _assert_partition(split, 100)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (70, 10, 20)
    when = pd.to_datetime(frame["when"])
    assert when[split["train"]].max() < when[split["val"]].min() and when[split["val"]].max() < when[split["test"]].min()
    again = split_data(_labeled(frame, split=cfg), SplitConfig(train=0.7, val=0.1, test=0.2, order_by="when", seed=9))
    assert all(np.array_equal(split[k], again[k]) for k in split)  # the order decides, not the seed


def test_order_by_keeps_equal_times_in_one_split_and_takes_numbers_and_mixed_formats(reviews_factory):
    frame = reviews_factory(n_per_class=50)
    frame["year"] = np.repeat(np.arange(2000, 2010), 10)[::-1]  # ten rows a year, newest first
    cfg = SplitConfig(train=0.75, val=0.1, test=0.15, order_by="year")
    split = split_data(_labeled(frame, split=cfg), cfg)
    years = {k: set(frame["year"][v]) for k, v in split.items()}
    assert years == {"train": set(range(2000, 2008)), "val": {2008}, "test": {2009}}  # 75 -> 80: 2007 stays whole
    frame["stamp"] = ["2024-03-01T10:00:00+02:00", "1 March 2024 09:00"] * 50  # 08:00 UTC, then 09:00 UTC
    cfg = SplitConfig(train=0.5, val=0.25, test=0.25, order_by="stamp")
    data = _labeled(frame, split=cfg)
    assert sorted(set(order_values(data, "stamp").dt.hour)) == [8, 9]
    with pytest.raises(DataError, match="time-ordered test split is empty: 100 rows .* share the same 'stamp'"):
        split_data(data, cfg)  # 50 rows at 09:00 cannot be cut into val and test


def test_order_by_with_a_fixed_test_set_splits_train_and_val_by_time(reviews_factory):
    frame = _dated(reviews_factory(n_per_class=50))
    cfg = SplitConfig(train=0.6, val=0.2, test=0.2, order_by="when")
    split = split_data(_labeled(frame, split=cfg), cfg, fixed_test=True)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (75, 25, 0)
    when = pd.to_datetime(frame["when"])
    assert when[split["train"]].max() < when[split["val"]].min()


@pytest.mark.parametrize("values, says", [
    (["2024-01-01"] * 59 + ["soon"], "1 of 50 rows do not (first at row 59 of the data, counted from 0: 'soon')"),
    ([None] * 11 + ["2024-01-01"] * 49, "first at row 10 of the data, counted from 0: None"),
    ([True, False] * 30, "first at row 10 of the data, counted from 0: True"),
])
def test_order_by_values_that_are_not_times_are_a_data_error(reviews, values, says):
    reviews["when"] = values
    cfg = SplitConfig(order_by="when")
    data = _labeled(reviews, split=cfg).subset(range(10, 60))  # as after subsampling: the row named is the file's
    with pytest.raises(DataError, match=f"'data.split.order_by' column 'when' must hold a date.*{re.escape(says)}"):
        split_data(data, cfg)


def test_order_by_refuses_a_split_column_or_groups_and_names_a_missing_column(reviews):
    from graftlab.core.errors import ConfigError
    from graftlab.core.config import StudyConfig

    base = {"name": "t", "data": {"source": {"kind": "csv", "path": "x.csv"}}}
    with pytest.raises(ConfigError, match="set only one of them"):
        StudyConfig.from_dict({**base, "data": {**base["data"], "split": {"column": "fold", "order_by": "when"}}})
    with pytest.raises(ConfigError, match="a group may span the time boundaries"):
        StudyConfig.from_dict({**base, "data": {**base["data"], "group": "user", "split": {"order_by": "when"}}})
    with pytest.raises(DataError, match="'data.split.order_by' column 'when' is not in"):
        _labeled(reviews, split=SplitConfig(order_by="when"))
