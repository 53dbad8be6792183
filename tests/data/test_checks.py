"""Each pre-training check finds what it should, and each resolution (error / drop / warn) acts as configured."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab.core.config import ChecksConfig
from graftlab.core.errors import DataCheckError
from graftlab.data import LabeledData
from graftlab.data.checks import (
    CheckResult,
    DataChecksFailed,
    check_absent_classes,
    check_conflicts,
    check_empty,
    check_imbalance,
    check_leakage,
    duplicate_groups,
    check_min_per_class,
    rare_class_map,
    check_overlong,
    check_single_class,
    check_unseen_labels,
    checks_table,
    normalise_texts,
    raise_for_failures,
    run_class_checks,
    run_split_checks,
)

NAMES = ["a", "b", "c"]


def _data(texts, labels, start=0, names=NAMES) -> LabeledData:
    return LabeledData(list(texts), np.asarray(labels, dtype=np.int64), list(names),
                       np.arange(start, start + len(texts), dtype=np.int64))


def _splits(train, val, test):
    """Each argument: list of (text, label) pairs; ids run on across the splits (train 0.., then val, test)."""
    out, start = {}, 0
    for name, rows in (("train", train), ("val", val), ("test", test)):
        out[name] = _data([t for t, _ in rows], [y for _, y in rows], start)
        start += len(rows)
    return out


def test_normalise_texts_lowercases_strips_punctuation_and_collapses_whitespace():
    assert list(normalise_texts(["  Hello,   WORLD!! ", "café\tnoir", "..."])) == ["hello world", "café noir", ""]


@pytest.mark.parametrize(("resolution", "status", "n_dropped"), [("error", "fail", 0), ("drop", "fixed", 3),
                                                                 ("warn", "warn", 0)])
def test_empty_inputs(resolution, status, n_dropped):
    data = _data(["fine", "", "   \n", "ok", ""], [0, 1, 0, 1, 0])
    result, drop = check_empty(data, resolution)
    assert (result.status, result.count, len(drop)) == (status, 3, n_dropped)
    if resolution == "drop":
        np.testing.assert_array_equal(drop, [1, 2, 4])
    if resolution == "error":
        assert "data.checks.empty: drop" in result.action
    assert check_empty(_data(["x", "y"], [0, 1]), "error")[0].status == "ok"


def test_conflicting_labels_on_normalised_identical_inputs():
    data = _data(["Great tea!", "great  tea", "bad jam", "Bad jam.", "other"], [0, 1, 1, 1, 0])
    result, drop = check_conflicts(data, "error")
    assert (result.status, result.count) == ("fail", 2)
    assert "'Great tea!' (2 rows) -> 'a', 'b'" in result.detail  # the input as written, labels quoted
    result, drop = check_conflicts(data, "drop")
    assert result.status == "fixed"
    np.testing.assert_array_equal(drop, [0, 1])
    assert check_conflicts(_data(["x", "X!"], [0, 0]), "error")[0].status == "ok"


def _word_count(texts):
    return np.array([len(t.split()) for t in texts])


@pytest.mark.parametrize(("resolution", "status", "n_dropped"), [("truncate", "warn", 0), ("drop", "fixed", 2),
                                                                 ("error", "fail", 0)])
def test_overlong_inputs(resolution, status, n_dropped):
    data = _data(["one two", "one two three four", "a b c d e", "x"], [0, 1, 0, 1])
    result, drop = check_overlong(data, resolution, _word_count, max_length=3)
    assert (result.status, result.count, len(drop)) == (status, 2, n_dropped)
    assert "longer than 3 tokens" in result.detail
    if resolution == "truncate":
        assert "truncated to 3 tokens" in result.action


def test_overlong_without_length_fn_is_not_checked():
    result, drop = check_overlong(_data(["a " * 999], [0]), "error", None, None)
    assert (result.status, result.detail, len(drop)) == ("ok", "not checked", 0)


def test_classes_too_small_to_stratify():
    data = _data(["t"] * 7, [0, 0, 0, 0, 1, 1, 0])
    result = check_min_per_class(data, 3)
    assert (result.status, result.count) == ("fail", 1)
    assert "'b' (2)" in result.detail and "data.checks.min_per_class" in result.action
    assert check_min_per_class(data, 2).status == "ok"  # class 'c' has no rows: not "too small"


def test_single_class():
    result = check_single_class(_data(["x", "y", "z"], [1, 1, 1]))
    assert result.status == "fail" and "found only 'b'" in result.detail
    assert check_single_class(_data(["x", "y"], [0, 1])).status == "ok"


def test_exact_leakage_drops_from_val_and_test_never_from_train():
    splits = _splits(
        train=[("shared one", 0), ("train only", 1), ("shared two", 1)],
        val=[("shared one", 0), ("val only", 1), ("in val and test", 0)],
        test=[("shared two", 1), ("test only", 0), ("in val and test", 0)],
    )
    result, drop = check_leakage(splits, "drop")
    assert (result.status, result.count) == ("fixed", 3)
    # val 3 (train dup), test 6 (train dup), and val 5 (test dup; the test row is kept)
    np.testing.assert_array_equal(drop, [3, 5, 6])
    assert not np.isin(drop, splits["train"].ids).any()
    failed, _ = check_leakage(splits, "error")
    assert failed.status == "fail" and "set data.checks.leakage: group" in failed.action and "data.checks.leakage: drop" in failed.action


def test_normalised_leakage_counts_only_rows_the_exact_check_misses():
    splits = _splits(
        train=[("Hello, World!", 0), ("same", 1)],
        val=[("hello world", 0), ("same", 1)],
        test=[("other", 1)],
    )
    exact, _ = check_leakage(splits, "error")
    near, _ = check_leakage(splits, "error", normalised=True)
    assert (exact.status, exact.count) == ("fail", 1)
    assert (near.status, near.count) == ("fail", 1)
    assert "ids 2" in near.detail
    assert check_leakage(splits, "warn", normalised=True)[0].status == "warn"


def test_unseen_labels_in_val_or_test():
    splits = _splits(train=[("x", 0), ("y", 0)], val=[("z", 0)], test=[("u", 1), ("v", 0), ("w", 2)])
    result, drop = check_unseen_labels(splits, "error")
    assert (result.status, result.count) == ("fail", 2)
    assert "'b', 'c'" in result.detail
    _, drop = check_unseen_labels(splits, "drop")
    np.testing.assert_array_equal(drop, [3, 5])


def test_class_imbalance_against_max_imbalance():
    train = _data(["t"] * 32, [0] * 30 + [1] * 2)
    assert check_imbalance(train, 20.0, "warn").status == "ok"
    result = check_imbalance(train, 10.0, "warn")
    assert result.status == "warn" and "30/2 = 15.0" in result.detail
    failed = check_imbalance(train, 10.0, "error")
    assert failed.status == "fail" and "data.checks.max_imbalance" in failed.action


def test_run_split_checks_applies_drops_in_order():
    splits = _splits(
        train=[("keep", 0), ("dup", 1)] + [(f"t{i}", i % 2) for i in range(6)],
        val=[("dup", 1), ("v", 0)],
        test=[("DUP!", 1), ("c only", 2), ("w", 0)],
    )
    cfg = ChecksConfig(leakage="drop", unseen_test_labels="drop")
    results, drop = run_split_checks(splits, cfg)
    assert [r.name for r in results] == ["leakage_exact", "leakage_normalised", "unseen_labels", "absent_classes",
                                         "imbalance"]
    assert [r.status for r in results] == ["fixed", "fixed", "fixed", "warn", "ok"]  # val lost its only class-1 row
    np.testing.assert_array_equal(drop, [8, 10, 11])
    results, _ = run_split_checks(splits, cfg, time_ordered=True)  # auto: an error when the split is ordered in time
    assert results[3].name == "absent_classes" and results[3].status == "fail"
    results, _ = run_split_checks(splits, ChecksConfig(leakage="drop", unseen_test_labels="drop", absent_classes="error"))
    assert results[3].status == "fail"


def test_a_class_of_train_missing_from_val_or_test_is_named_and_fails_unless_warned():
    splits = _splits(train=[(f"t{i}", i % 3) for i in range(9)], val=[("v0", 0), ("v1", 1), ("v2", 2)],
                     test=[("w0", 1), ("w1", 1)])
    failed = check_absent_classes(splits, "error")
    assert failed.status == "fail" and failed.count == 2 and "data.checks.absent_classes: warn" in failed.action
    assert "test has no 'a', 'c' rows" in failed.detail and "val" not in failed.detail
    assert check_absent_classes(splits, "warn").status == "warn"
    splits["test"] = splits["val"]
    assert check_absent_classes(splits, "error").status == "ok"


def test_failures_raise_one_error_listing_every_failed_check_and_its_key():
    results = [
        CheckResult("empty", "ok"),
        CheckResult("leakage_exact", "fail", 2, "2 rows leak.", "set data.checks.leakage: drop ..."),
        CheckResult("conflicts", "fail", 1, "1 conflict.", "set data.checks.conflicts: drop ..."),
        CheckResult("imbalance", "warn", 2, "skewed", "kept"),
    ]
    with pytest.raises(DataCheckError) as err:
        raise_for_failures(results)
    msg = str(err.value)
    assert msg.startswith("2 data checks failed:")
    assert "set data.checks.leakage: drop" in msg and "set data.checks.conflicts: drop" in msg
    assert isinstance(err.value, DataChecksFailed) and err.value.results == results
    raise_for_failures([r for r in results if r.status != "fail"])  # no failure: no error


def test_checks_table_lists_each_result():
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(checks_table([CheckResult("empty", "ok", 0, "no [bold]empty[/] inputs"),
                                CheckResult("leakage_exact", "fixed", 3, "3 rows", "dropped 3 rows")]))
    text = console.export_text()
    assert "leakage_exact" in text and "fixed" in text and "dropped 3 rows" in text
    assert "no [bold]empty[/] inputs" in text  # user text is not read as rich markup


def test_conflicts_name_the_most_repeated_input_and_quote_labels_with_commas():
    names = ["Loss", "Loss, Theft", "Theft"]
    data = _data(["\\N", "\\N", "\\N", "x", "X"], [0, 1, 2, 0, 2], names=names)
    detail = check_conflicts(data, "error")[0].detail
    assert "2 distinct inputs (5 rows)" in detail
    assert "'\\\\N' (3 rows) -> 'Loss', 'Loss, Theft', 'Theft'" in detail


def test_rare_classes_are_dropped_or_merged_into_other():
    data = _data(["t"] * 9, [0, 0, 0, 0, 0, 1, 1, 2, 0], names=["a", "b", "c"])
    assert rare_class_map(data, 3, "error") == {}
    assert rare_class_map(data, 3, "drop") == {"b": None, "c": None}
    assert rare_class_map(data, 3, "other") == {"b": "other", "c": "other"}
    assert rare_class_map(data, 2, "other") == {"c": "other"}
    with_other = _data(["t"] * 6, [0, 0, 0, 1, 2, 2], names=["a", "b", "Other"])
    assert rare_class_map(with_other, 3, "other") == {"b": "Other"}  # an existing class takes them, any case

    results, mapping = run_class_checks(data, ChecksConfig(rare_classes="other"))
    rare = next(r for r in results if r.name == "min_per_class")
    assert (rare.status, rare.count) == ("fixed", 3) and "merged into the class 'other', now 3 examples" in rare.action
    merged = data.relabel(mapping)
    assert merged.label_names == ["a", "other"] and merged.class_counts().tolist() == [6, 3]

    results, mapping = run_class_checks(data, ChecksConfig(rare_classes="drop"))
    rare = next(r for r in results if r.name == "min_per_class")
    assert (rare.status, rare.count) == ("fixed", 3) and "dropped" in rare.action
    kept = data.relabel(mapping)
    assert kept.label_names == ["a"] and kept.ids.tolist() == [0, 1, 2, 3, 4, 8]
    single = next(r for r in results if r.name == "single_class")
    assert single.status == "fail"  # dropping the rare classes left one class: said, not trained on


def test_rare_classes_other_with_only_the_other_class_rare_says_so():
    data = _data(["t"] * 7, [0, 0, 0, 0, 1, 1, 0], names=["a", "Other", "c"])
    results, mapping = run_class_checks(data, ChecksConfig(rare_classes="other"))
    rare = next(r for r in results if r.name == "min_per_class")
    assert mapping == {} and rare.status == "fail" and "has nothing to merge them with" in rare.detail
    assert "rare_classes: drop" in rare.action and "rare_classes: other" not in rare.action


def test_rare_classes_merged_but_still_too_few_fail_with_the_fix():
    data = _data(["t"] * 7, [0, 0, 0, 1, 1, 1, 2], names=["a", "b", "c"])
    results, _ = run_class_checks(data, ChecksConfig(rare_classes="other"))
    rare = next(r for r in results if r.name == "min_per_class")
    assert rare.status == "fail" and "Merged into 'other' they still make only 1." in rare.detail
    assert "rare_classes: drop" in rare.action and "rare_classes: other" not in rare.action


def test_duplicate_groups_join_copies_but_not_blank_inputs():
    data = _data(["Tea!", "tea", "jam", "", "  ", "?!", "Jam.", "?!", "!!", "👍", "👍 "], [0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1])
    groups = duplicate_groups(data)
    assert groups[0] == groups[1] and groups[2] == groups[6] and groups[0] != groups[2]
    assert groups[3] != groups[4]  # blank: nothing to compare, each its own group
    assert groups[5] == groups[7] and groups[5] != groups[8] and groups[9] == groups[10]  # punctuation, emoji as written
    assert groups[5] not in (groups[3], groups[4])
    joined = duplicate_groups(data, np.arange(11) - np.isin(np.arange(11), [6]) * 5)  # row 6 shares row 1's group
    assert joined[0] == joined[1] == joined[6] == joined[2]
