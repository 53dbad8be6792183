"""The messages of data errors say where the problem is and what to do, whoever called the reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graftlab.core.config import ChecksConfig, DataConfig, SourceConfig
from graftlab.core.errors import DataError
from graftlab.data import load_frame, load_frame_like, prepare_data, to_labeled
from graftlab.data.checks import DataChecksFailed, check_split_rows, run_class_checks, run_row_checks
from graftlab.data.dataset import LabeledData


def _cfg(**kw) -> DataConfig:
    return DataConfig(text="review", label="score", **kw)


def _write_jsonl(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return SourceConfig(kind="jsonl", path=str(path))


def test_a_broken_jsonl_line_is_named_with_what_it_holds(tmp_path, reviews):
    lines = reviews.head(15).to_json(orient="records", lines=True).splitlines()
    lines[11] = '{"review": "oops", "score":'
    with pytest.raises(DataError) as err:
        load_frame(_write_jsonl(tmp_path / "broken.jsonl", lines))
    msg = str(err.value)
    assert "line 12 is not a valid JSON object" in msg and '{"review": "oops", "score":' in msg
    assert "fix or remove that line" in msg and "set 'data.source.kind'" not in msg  # the kind is right


def test_a_jsonl_line_that_is_json_but_not_an_object_is_named(tmp_path):
    source = _write_jsonl(tmp_path / "list.jsonl", ['{"review": "a", "score": "x"}', "", "[1, 2]"])
    with pytest.raises(DataError, match=r"line 3 is not a valid JSON object \(it holds a JSON array"):
        load_frame(source)
    with pytest.raises(DataError, match=r"--file with this ending expects one complete JSON object per line"):
        load_frame(source, "--file")


def test_a_file_that_is_not_jsonl_at_all_still_suggests_the_kind(tmp_path):
    (tmp_path / "data.jsonl").write_text("review,score\ngood,great\n")
    with pytest.raises(DataError, match=r"line 1 is not a JSON object.*set 'data.source.kind' to its real format"):
        load_frame(SourceConfig(kind="jsonl", path=str(tmp_path / "data.jsonl")))


def test_a_header_only_file_says_what_to_fix_for_its_caller(tmp_path):
    (tmp_path / "hdr.csv").write_text("review,score\n")
    source = SourceConfig(kind="csv", path=str(tmp_path / "hdr.csv"))
    with pytest.raises(DataError, match=r"data.source \(hdr.csv\) has no rows. Add rows under the header of .*hdr.csv, "
                                        r"or point 'data.source.path' at a file that has some"):
        load_frame(source)
    with pytest.raises(DataError, match=r"--file \(hdr.csv\) has no rows. Give --file a file with at least one row "
                                        "under the header") as err:
        load_frame(source, "--file")
    assert "config" not in str(err.value)
    frame = pd.read_csv(tmp_path / "hdr.csv")  # as graft retrain --data and a Python caller pass it
    with pytest.raises(DataError, match="the data passed in has no rows. Give data with at least one row") as err:
        prepare_data(_cfg(), frame=frame)
    assert "config" not in str(err.value)
    with pytest.raises(DataError, match="has no rows"):
        load_frame_like(frame)


def test_a_missing_label_is_placed_by_its_line_in_a_csv_file(tmp_path, reviews):
    df = reviews.head(10).copy()
    df.loc[3, "score"] = None
    df.loc[6, "score"] = None
    df.to_csv(tmp_path / "labels.csv", index=False)
    frame = load_frame(SourceConfig(kind="csv", path=str(tmp_path / "labels.csv")))
    with pytest.raises(DataError, match=r"2 rows of labels.csv have no 'score' label \(first at line 5 of the file\)"):
        to_labeled(frame, _cfg(), name="labels.csv")


def test_the_line_counts_blank_lines_and_quoted_line_breaks(tmp_path):
    (tmp_path / "labels.csv").write_text('review,score\n\ngood tea,great\n"two\nlines",other\nstale,\n')
    frame = load_frame(SourceConfig(kind="csv", path=str(tmp_path / "labels.csv")))
    with pytest.raises(DataError, match=r"1 row of labels.csv has no 'score' label \(first at line 6 of the file\)"):
        to_labeled(frame, _cfg(), name="labels.csv")


def test_without_a_file_a_missing_label_is_a_data_row_counted_from_1():
    df = pd.DataFrame({"review": ["a", "b", "c", "d"], "score": ["x", "y", None, None]})
    with pytest.raises(DataError, match=r"2 rows of the data have no 'score' label \(first at data row 3 \(counting "
                                        r"from 1\)\)"):
        to_labeled(df, _cfg())


@pytest.mark.parametrize("image", [False, True])
def test_the_label_cannot_be_the_input_column(reviews, image):
    cfg = DataConfig(image="review", label="review") if image else DataConfig(text="review", label="review")
    key = "data.image" if image else "data.text"
    with pytest.raises(DataError, match=rf"'{key}' and 'data.label' both name the column 'review'.*Set 'data.label' "
                                        r"to the column that holds the labels \(the other columns of the data: score, "
                                        r"product, kind\)"):
        to_labeled(reviews, cfg)


def test_checks_that_drop_every_row_are_named_as_the_cause(reviews):
    blank = reviews.assign(review="   ")
    with pytest.raises(DataChecksFailed) as err:
        prepare_data(_cfg(checks={"empty": "drop"}), frame=blank)
    msg = str(err.value)
    assert ("single_class: the data needs at least 2 classes, but the checks' drops left none of the 60 rows: the "
            "empty check (data.checks.empty: drop) removed 60 rows, so there is nothing to train on.") in msg
    assert "data.checks.empty: warn" in msg and "data.text names the column" in msg
    assert "n_samples" not in msg and "split could not be made" not in msg


def test_checks_that_drop_a_whole_class_are_named_as_the_cause(reviews):
    half = reviews.copy()
    half.loc[half.score == "other", "review"] = ""
    with pytest.raises(DataChecksFailed, match=r"drops left only the class 'great' \(30 of the 60 rows\): the empty "
                                               r"check \(data.checks.empty: drop\) removed 30 rows\."):
        prepare_data(_cfg(checks={"empty": "drop"}), frame=half)


def test_a_single_class_not_caused_by_drops_keeps_its_message():
    data = LabeledData(["a", "b", "", "d"], np.array([0, 0, 0, 0]), ["x", "y"], np.arange(4))
    results, drop = run_row_checks(data, ChecksConfig(empty="drop"))
    kept = data.subset(np.flatnonzero(~np.isin(data.ids, drop)))
    single = run_class_checks(kept, ChecksConfig(), before=data, row_results=results)[0][0]
    assert single.status == "fail" and single.detail == "the data needs at least 2 classes; found only 'x'."


def test_split_checks_that_empty_a_split_are_named_as_the_cause():
    names = ["x", "y"]
    train = LabeledData(["a", "b"], np.array([0, 1]), names, np.array([0, 1]))
    val = LabeledData(["a", "b"], np.array([0, 1]), names, np.array([2, 3]))
    test = LabeledData(["c"], np.array([0]), names, np.array([4]))
    before = {"train": train, "val": val, "test": test}
    after = {**before, "val": val.subset([])}
    results, _ = run_row_checks(val, ChecksConfig())  # no drops: nothing to blame
    assert check_split_rows(before, after, results) is None
    from graftlab.data.checks import check_leakage

    leak, _ = check_leakage(before, "drop")
    result = check_split_rows(before, after, [leak])
    assert result.status == "fail" and result.name == "split_rows"
    assert ("removed every row of val (2 rows): the leakage_exact check (data.checks.leakage) dropped 2 rows from "
            "val/test, so there is nothing to validate on.") in result.detail
    assert "data.checks.leakage: warn" in result.action  # warn keeps the rows; group cannot for a fixed test set


def test_a_leakage_drop_that_empties_val_and_test_fails_the_checks(reviews):
    copies = pd.concat([reviews.iloc[[0, 1, 2, 30, 31, 32]]] * 10, ignore_index=True)  # 3 inputs of each class
    with pytest.raises(DataChecksFailed, match=r"split_rows: the checks' drops removed every row of val .* and test"):
        prepare_data(_cfg(checks={"leakage": "drop", "conflicts": "warn"}), frame=copies)


def test_a_single_class_left_by_rare_classes_drop_is_not_blamed_on_the_row_checks():
    from graftlab.core.config import ChecksConfig
    from graftlab.data.checks import CheckResult, run_class_checks
    from graftlab.data.dataset import LabeledData

    labels = np.array([0] * 21 + [1, 2])
    before = LabeledData([f"text {i}" for i in range(23)], labels, ["a", "b", "c"], np.arange(23))
    after = before.subset(range(1, 23))  # the empty check dropped one row of class a
    empty = CheckResult("empty", "fixed", 1, "1 input is empty", "dropped", "data.checks.empty")
    results, _ = run_class_checks(after, ChecksConfig(empty="drop", rare_classes="drop"), before=before,
                                  row_results=[empty])
    single = next(r for r in results if r.name == "single_class")
    assert single.status == "fail" and "empty check" not in single.detail
