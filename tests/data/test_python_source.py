"""``source: {kind: python, ...}``: rows from the user's own function, with a clear error for every way it can go wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from graftlab.core.config import DataConfig, load_config
from graftlab.core.errors import ConfigError, DataError
from graftlab.data.prepare import prepare_data

MODULE = '''
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd


@dataclass
class Settings:  # a dataclass with a ClassVar under postponed annotations needs the module in sys.modules
    words: ClassVar[tuple[str, ...]] = ("good", "bad")

def reviews(n=40, flip=False):
    words = ["good", "bad"]
    return pd.DataFrame({"text": [f"{words[i % 2]} item number {i}" for i in range(n)],
                         "label": [("neg" if flip else "pos") if i % 2 == 0 else ("pos" if flip else "neg")
                                   for i in range(n)]})

def ragged():
    return {"text": ["a", "b"], "label": ["x"]}

def crashes():
    table = {}
    return table["rows"]
'''


def _module(folder: Path, name: str = "my_rows") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(MODULE)
    return path


def _cfg(**source) -> DataConfig:
    return DataConfig(source={"kind": "python", **source}, split={"train": 0.5, "val": 0.25, "test": 0.25})


def test_a_function_in_a_file_with_arguments(tmp_path):
    data = prepare_data(_cfg(path=str(_module(tmp_path)), function="reviews", args={"n": 60}))
    assert len(data.full) == 60 and data.label_names == ["neg", "pos"]
    assert data.full.inputs[0].startswith("good item")


def test_an_importable_module_from_the_working_folder_leaves_sys_path_as_it_was(tmp_path, monkeypatch):
    _module(tmp_path, "rows_beside_me")
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    data = prepare_data(_cfg(function="rows_beside_me:reviews", args={"flip": True}))
    assert len(data.full) == 40 and sys.path == before
    sys.modules.pop("rows_beside_me", None)


def test_the_file_is_found_relative_to_the_config(tmp_path, monkeypatch):
    _module(tmp_path / "project" / "data")
    (tmp_path / "project" / "study.yaml").write_text(
        "name: py\ndata:\n  source: {kind: python, path: data/my_rows.py, function: reviews}\n"
        "  split: {train: 0.5, val: 0.25, test: 0.25}\n")
    monkeypatch.chdir(tmp_path)  # not the config's folder
    cfg = load_config(tmp_path / "project" / "study.yaml")
    assert len(prepare_data(cfg.data).full) == 40


@pytest.mark.parametrize(("source", "says"), [
    ({"function": "reviews", "path": "nowhere.py"}, "does not exist"),
    ({"function": "ragged"}, "Cannot make a table"),
    ({"function": "crashes"}, "raised: KeyError: 'rows' at my_rows.py:"),
    ({"function": "reviw"}, "did you mean 'reviews'"),
    ({"function": "reviews", "args": {"size": 3}}, "cannot be called with 'data.source.args'"),
])
def test_what_goes_wrong_in_the_users_function_is_named(tmp_path, source, says):
    path = str(_module(tmp_path))
    with pytest.raises(DataError) as err:
        prepare_data(_cfg(**{"path": path, **source}))
    assert says in str(err.value), err.value


def test_a_module_that_cannot_be_imported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="module 'no_such_rows' cannot be imported"):
        prepare_data(_cfg(function="no_such_rows:reviews"))
    (tmp_path / "not_python.txt").write_text("x")
    with pytest.raises(DataError, match="is not a .py file"):
        prepare_data(_cfg(path=str(tmp_path / "not_python.txt"), function="f"))


@pytest.mark.parametrize(("source", "says"), [
    ({"kind": "python"}, "needs 'function'"),
    ({"kind": "python", "function": "reviews"}, "needs the module before a colon"),
    ({"kind": "python", "path": "x.py", "function": "m:reviews"}, "without 'module:'"),
    ({"kind": "csv", "path": "x.csv", "function": "reviews"}, "belong to a source of kind 'python'"),
])
def test_config_mistakes_are_caught_before_anything_runs(source, says):
    from graftlab.core.config import StudyConfig

    with pytest.raises(ConfigError) as err:
        StudyConfig.from_dict({"name": "x", "data": {"source": source}})
    assert says in str(err.value), err.value
