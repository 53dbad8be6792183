"""Splits: reproducible, stratified, group-aware, user-given, fixed-test; subsampling; save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graftlab.core.config import DataConfig, SplitConfig, SubsampleConfig
from graftlab.core.errors import DataError
from graftlab.data import load_split, save_split, split_data, subsample, to_labeled


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
