"""``graft init DATA``: a commented study.yaml that names only the data, after guessing the text (or image) and label
columns and saying what it guessed; it never overwrites a file without --force, and from an empty folder holding only
a CSV, ``graft init data.csv && graft study study.yaml`` runs with no edits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.core.config import load_config
from graftlab.testing import assert_user_error, make_tiny_bert, synthetic_reviews


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _said(result) -> str:
    return " ".join(result.output.split())  # rich wraps long lines


def _uncommented(text: str) -> str:
    """The config with every commented-out option line turned on (the header's prose stays a comment)."""
    return re.sub(r"^( *)# (?=[a-z_]+: )", r"\1", text, flags=re.MULTILINE)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_guesses_text_and_label_says_so_and_writes_a_config_naming_only_the_data(folder):
    synthetic_reviews(120, seed=0).to_csv("reviews.csv", index=False)
    result = _run("init", "reviews.csv")
    assert result.exit_code == 0, result.output
    said = _said(result)
    assert "text: review" in said and "label: score" in said and "2 classes" in said
    assert "--label" in said and "--force" in said  # how to change a guess
    assert "graft study study.yaml" in said
    written = (folder / "study.yaml").read_text()
    data = yaml.safe_load(written)
    assert data == {"name": "reviews", "data": {"source": "reviews.csv", "text": "review", "label": "score"}}
    assert written.count("\n# ") + written.count("\n  # ") >= 5  # the main options, commented out
    cfg = load_config("study.yaml")
    assert "strategies" not in cfg.model_fields_set  # the study runs its measured defaults
    assert cfg.data.source.path == str(folder / "reviews.csv")


def test_every_commented_option_is_a_valid_setting(folder):
    synthetic_reviews(120, seed=0).to_csv("reviews.csv", index=False)
    assert _run("init", "reviews.csv").exit_code == 0
    Path("all.yaml").write_text(_uncommented(Path("study.yaml").read_text()))
    cfg = load_config("all.yaml")
    on = yaml.safe_load(Path("all.yaml").read_text())
    assert {"backbones", "strategies", "train", "eval"} <= set(on) and {"split", "slices"} <= set(on["data"])
    assert cfg.train.epochs == 4 and cfg.eval.seeds == 3  # the commented lines show the defaults


def test_the_label_is_a_low_cardinality_column_and_the_text_the_longest_strings(folder):
    n = 60
    frame = pd.DataFrame({
        "id": range(n),
        "title": [f"t{i}" for i in range(n)],
        "body": [f"a much longer body of text number {i} about the product" for i in range(n)],
        "verdict": ["keep", "return", "unsure"] * (n // 3),
        "price": [i + 0.5 for i in range(n)],
    })
    frame.to_csv("tickets.csv", index=False)
    result = _run("init", "tickets.csv")
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(Path("study.yaml").read_text())["data"]
    assert (data["text"], data["label"]) == ("body", "verdict")


def test_a_label_named_like_one_wins_over_another_small_column(folder):
    frame = synthetic_reviews(90, seed=0).rename(columns={"score": "category"})
    frame["channel"] = ["web", "app"] * 45  # fewer values than 'category', but not named like a label
    frame.to_csv("reviews.csv", index=False)
    assert _run("init", "reviews.csv").exit_code == 0
    assert yaml.safe_load(Path("study.yaml").read_text())["data"]["label"] == "category"


def test_a_column_of_image_paths_makes_an_image_study(folder):
    frame = pd.DataFrame({"file": [f"photos/{i}.png" for i in range(40)], "caption": [f"photo {i}" for i in range(40)],
                          "class": ["cat", "dog"] * 20})
    frame.to_csv("photos.csv", index=False)
    result = _run("init", "photos.csv")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(Path("study.yaml").read_text())
    assert written["data"]["image"] == "file" and written["data"]["label"] == "class" and "text" not in written["data"]
    assert written["backbones"] == ["efficientnet-lite0"]  # the default backbone reads text
    assert "image: file" in _said(result)


def test_given_columns_and_backbone_are_written_as_given(folder, tmp_path):
    synthetic_reviews(60, seed=0).to_csv("reviews.csv", index=False)
    Path("configs").mkdir()
    result = _run("init", "reviews.csv", "-o", "configs/first.yaml", "--label", "product", "--text", "review",
                  "--backbone", "hf:acme/tiny", "--name", "first-try")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(Path("configs/first.yaml").read_text())
    assert written["name"] == "first-try" and written["backbones"] == ["hf:acme/tiny"]
    assert written["data"] == {"source": "../reviews.csv", "text": "review", "label": "product"}
    assert load_config("configs/first.yaml").data.source.path == str(folder / "configs" / ".." / "reviews.csv")


def test_init_refuses_to_overwrite_without_force(folder):
    synthetic_reviews(60, seed=0).to_csv("reviews.csv", index=False)
    Path("study.yaml").write_text("name: mine\n")
    assert_user_error(_run("init", "reviews.csv"), "study.yaml already exists", "--force", "-o")
    assert Path("study.yaml").read_text() == "name: mine\n"
    assert _run("init", "reviews.csv", "--force").exit_code == 0
    assert yaml.safe_load(Path("study.yaml").read_text())["data"]["label"] == "score"


@pytest.mark.parametrize(("option", "column", "phrase"), [
    ("--label", "scroe", "did you mean 'score'?"),
    ("--text", "revew", "did you mean 'review'?"),
])
def test_a_given_column_that_is_not_in_the_file_is_named(folder, option, column, phrase):
    synthetic_reviews(60, seed=0).to_csv("reviews.csv", index=False)
    assert_user_error(_run("init", "reviews.csv", option, column), f"{option} {column!r} is not a column of reviews.csv",
                      phrase)
    assert not Path("study.yaml").exists()


def test_no_label_column_to_guess_says_what_to_pass(folder):
    pd.DataFrame({"text": [f"unique text {i}" for i in range(30)], "id": range(30)}).to_csv("texts.csv", index=False)
    assert_user_error(_run("init", "texts.csv"), "No column of texts.csv looks like a label", "--label COLUMN")
    assert not Path("study.yaml").exists()


def test_no_text_column_to_guess_says_what_to_pass(folder):
    pd.DataFrame({"x": range(30), "label": ["a", "b"] * 15}).to_csv("numbers.csv", index=False)
    assert_user_error(_run("init", "numbers.csv"), "No column of numbers.csv holds text", "--text COLUMN")


def test_a_missing_data_file_is_a_user_error(folder):
    assert_user_error(_run("init", "nope.csv"), "nope.csv does not exist")


@pytest.mark.timeout(600)
def test_from_an_empty_folder_init_then_study_runs_with_no_edits(folder, tmp_path_factory):
    """The newcomer's path, end to end, as the ``graft`` command: a CSV alone, `graft init`, `graft study` (the tiny
    BERT instead of the bundled MiniLM, given on the command line so the written file is not edited)."""
    tiny = make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
    synthetic_reviews(160, seed=0).to_csv("data.csv", index=False)
    assert sorted(p.name for p in folder.iterdir()) == ["data.csv"]
    graft = [sys.executable, "-m", "graftlab.cli"]
    init = subprocess.run([*graft, "init", "data.csv"], capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    written = Path("study.yaml").read_text()
    study = subprocess.run([*graft, "study", "study.yaml", "--no-progress", "--set", f"backbones=[{tiny}]"],
                           capture_output=True, text=True, timeout=540)
    assert study.returncode == 0, study.stdout + study.stderr
    assert Path("study.yaml").read_text() == written
    [run_dir] = (folder / "runs" / "data").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["winner"] in results["strategies"] and (run_dir / "model").is_dir()
    assert "Winner:" in study.stdout
