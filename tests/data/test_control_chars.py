"""NUL and other control characters in texts: read whole, reported by a check, stripped / refused / kept."""

from __future__ import annotations

import pytest

from graftlab.core.config import DataConfig
from graftlab.data import load_frame, prepare_data
from graftlab.data.checks import DataChecksFailed


def _csv_with_nul(tmp_path, reviews, sep=","):
    """reviews.csv whose rows 3 and 7 hold a NUL (and a BEL) inside their text."""
    frame = reviews.copy()
    frame.loc[3, "review"] = "great value \x00 would buy again"
    frame.loc[7, "review"] = "arrived late\x07 but works fine"
    path = tmp_path / ("reviews.csv" if sep == "," else "reviews.tsv")
    frame.to_csv(path, index=False, sep=sep)
    return path, frame


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_nul_in_a_text_does_not_truncate_it(tmp_path, reviews, sep):
    path, frame = _csv_with_nul(tmp_path, reviews, sep)
    kind = "csv" if sep == "," else "tsv"
    got = load_frame(DataConfig(source={"kind": kind, "path": str(path)}, text="review", label="score").source)
    assert got["review"].tolist() == frame["review"].tolist()


def _prepare(path, resolution=None):
    checks = {"control_chars": resolution} if resolution else {}
    return prepare_data(DataConfig(source={"kind": "csv", "path": str(path)}, text="review", label="score",
                                   checks=checks))


def test_control_characters_are_stripped_by_default_and_reported(tmp_path, reviews):
    path, _ = _csv_with_nul(tmp_path, reviews)
    data = _prepare(path)
    result = next(r for r in data.checks if r.name == "control_chars")
    assert (result.status, result.count, result.key) == ("fixed", 2, "data.checks.control_chars")
    assert "ids 3, 7" in result.detail
    texts = dict(zip(data.full.ids.tolist(), data.full.inputs))
    assert texts[3] == "great value  would buy again" and texts[7] == "arrived late but works fine"


def test_control_characters_can_be_refused_or_kept(tmp_path, reviews):
    path, _ = _csv_with_nul(tmp_path, reviews)
    with pytest.raises(DataChecksFailed, match=r"control_chars: 2 inputs hold control characters.*ids 3, 7"):
        _prepare(path, "error")
    data = _prepare(path, "keep")
    result = next(r for r in data.checks if r.name == "control_chars")
    assert (result.status, result.count) == ("warn", 2)
    assert "\x00" in dict(zip(data.full.ids.tolist(), data.full.inputs))[3]


def test_tabs_and_newlines_are_not_control_characters_here(tmp_path, reviews):
    frame = reviews.copy()
    frame.loc[3, "review"] = "line one\nline two\tand a tab\r\n"
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    result = next(r for r in _prepare(tmp_path / "reviews.csv").checks if r.name == "control_chars")
    assert result.status == "ok"


def test_a_saved_split_of_stripped_texts_is_rebuilt(tmp_path, reviews):
    path, _ = _csv_with_nul(tmp_path, reviews)
    data = _prepare(path)
    data.save_split(tmp_path / "split.json")
    cfg = DataConfig(source={"kind": "csv", "path": str(path)}, text="review", label="score")
    again = prepare_data(cfg, split_file=tmp_path / "split.json")
    assert list(again.train.inputs) == list(data.train.inputs)
    assert not any("\x00" in x for x in again.full.inputs)
