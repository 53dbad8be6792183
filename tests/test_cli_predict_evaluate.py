"""``graft predict --file`` keeps the user's columns and reads CSV strictly, ``graft evaluate`` scores a labeled file,
every command takes a registry reference, writes with ``-o/--output`` and ``graft --version`` answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import graftlab
from graftlab.cli import app
from graftlab.testing import assert_user_error, synthetic_reviews


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A packaged tf-idf model of the synthetic reviews ('great' / 'other'), reading the column 'review'."""
    from graftlab.core.config import TrainConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.packaging import export_model
    from graftlab.strategies import FitContext, make_strategy

    frame = synthetic_reviews(80, seed=0)
    names = ["great", "other"]
    data = LabeledData(frame.review.tolist(), frame.score.map(names.index).to_numpy(), names, np.arange(len(frame)))
    fitted = make_strategy("tfidf_logreg").fit(data.subset(range(60)), data.subset(range(60, 80)),
                                               FitContext(train=TrainConfig(), seed=0, backbone=None))
    meta = {"name": "tiny-tfidf", "temperature": 1.0, "input_column": "review"}
    return export_model(fitted.predictor, tmp_path_factory.mktemp("model") / "model", meta)


@pytest.fixture
def batch(tmp_path) -> Path:
    """Inputs with an id column and a column the model never reads."""
    frame = synthetic_reviews(6, seed=3).drop(columns="score")
    frame.insert(0, "id", [f"r{i}" for i in range(6)])
    return _csv(frame, tmp_path / "batch.csv")


# -- graft predict: the user's columns, one schema --------------------------------------------------------------
def test_predict_keeps_every_input_column_and_flattens_probabilities_in_a_csv(model, batch, tmp_path):
    out = tmp_path / "scored.csv"
    result = _run("predict", model, "--file", batch, "-o", out)
    assert result.exit_code == 0, result.output
    scored, original = pd.read_csv(out), pd.read_csv(batch)
    assert list(scored.columns) == ["id", "review", "product", "label", "confidence", "p_great", "p_other"]
    pd.testing.assert_frame_equal(scored[original.columns], original)
    np.testing.assert_allclose(scored[["p_great", "p_other"]].max(axis=1), scored.confidence)
    expected = graftlab.load_model(model).predict(original.review.tolist())
    assert scored.label.tolist() == expected


def test_predict_columns_chooses_the_input_columns_kept(model, batch, tmp_path):
    out = tmp_path / "scored.parquet"
    assert _run("predict", model, "--file", batch, "--columns", "id", "-o", out).exit_code == 0
    assert list(pd.read_parquet(out).columns) == ["id", "label", "confidence", "p_great", "p_other"]
    assert_user_error(_run("predict", model, "--file", batch, "--columns", "id,nope", "-o", out),
                      "--columns names 'nope'", "not a column of", "id, review, product")


def test_predict_writes_probabilities_as_a_mapping_outside_tables(model, batch, tmp_path):
    out = tmp_path / "scored.jsonl"
    assert _run("predict", model, "--file", batch, "-o", out).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert list(rows[0]) == ["id", "review", "product", "label", "confidence", "probabilities"]
    assert set(rows[0]["probabilities"]) == {"great", "other"}
    assert rows[0]["confidence"] == max(rows[0]["probabilities"].values())
    piped = _run("predict", model, "--text", "fresh perfect snack")  # stdout is not a terminal: JSON lines
    assert piped.exit_code == 0, piped.output
    one = json.loads(piped.stdout)
    assert list(one) == ["input", "label", "confidence", "probabilities"] and one["input"] == "fresh perfect snack"


def test_predict_refuses_a_file_whose_columns_clash_with_the_predictions(model, tmp_path):
    path = _csv(synthetic_reviews(4, seed=2).rename(columns={"score": "label"}), tmp_path / "labeled.csv")
    assert_user_error(_run("predict", model, "--file", path, "-o", tmp_path / "out.csv"),
                      "already has a column 'label'", "--columns", "graft evaluate")


def test_a_malformed_csv_row_is_a_user_error_naming_its_line(model, tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text('id,review\n1,"fresh, perfect snack"\n2,stale, awful box\n3,nice taste\n')
    assert_user_error(_run("predict", model, "--file", path), "line 3", "3 fields", "the header has 2",
                      "stale, awful box", "quote")
    path.write_text("id,review\n1,fresh, perfect snack\n2,stale, awful box\n")  # pandas took 'id' as the index
    assert_user_error(_run("predict", model, "--file", path), "line 2", "3 fields", "the header has 2")
    path.write_text("id,review,note\n1,fresh perfect snack\n")  # fewer fields: the last ones are empty, as pandas reads
    assert _run("predict", model, "--file", path).exit_code == 0


def test_predict_takes_a_registry_reference(model, batch, tmp_path, monkeypatch):
    import graftlab.tracking.registry as registry

    asked = []
    monkeypatch.setattr(registry, "resolve_model", lambda ref, tracking_uri=None: asked.append(ref) or model)
    monkeypatch.setattr(registry, "show", lambda name, tracking_uri=None: {"name": name, "aliases": {"champion": 1}})
    monkeypatch.chdir(tmp_path)
    result = _run("predict", "tiny@champion", "--file", batch, "-o", tmp_path / "scored.csv")
    assert result.exit_code == 0, result.output
    assert asked == ["tiny@champion"] and len(pd.read_csv(tmp_path / "scored.csv")) == 6


# -- graft evaluate ----------------------------------------------------------------------------------------------
@pytest.fixture
def labeled(tmp_path) -> Path:
    """40 labeled reviews the model did not train on (the label column: 'score')."""
    return _csv(synthetic_reviews(40, seed=5), tmp_path / "labeled.csv")


def test_evaluate_prints_metrics_with_cis_per_class_and_calibration(model, labeled):
    result = _run("evaluate", model, labeled, "--label", "score", "--bootstrap", "200")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "40 labeled rows" in text and "95% bootstrap CI" in text
    frame = pd.read_csv(labeled)
    proba = graftlab.load_model(model).predict_proba(frame.review.tolist())
    accuracy = float((np.array(["great", "other"])[proba.argmax(1)] == frame.score).mean())
    assert f"Accuracy {accuracy:.3f} [" in text and "Macro F1" in text and "Macro precision" in text
    for column in ("class", "precision", "recall", "f1", "support"):
        assert column in text
    assert "great" in text and "other" in text and "ECE" in text


def test_evaluate_writes_a_report_folder(model, labeled, tmp_path):
    out = tmp_path / "report"
    result = _run("evaluate", model, labeled, "--label", "score", "--text", "review", "--bootstrap", "200", "-o", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "evaluation.json").read_text())
    assert report["n"] == 40 and report["labels"] == ["great", "other"]
    accuracy = report["metrics"]["accuracy"]
    assert accuracy["ci_low"] <= accuracy["value"] <= accuracy["ci_high"]
    assert set(report["per_class"]) == {"great", "other"} and report["per_class"]["great"]["support"] > 0
    assert "ece" in report["metrics"] and len(report["confusion_matrix"]) == 2 and report["reliability"]["count"]
    markdown = (out / "evaluation.md").read_text()
    assert "| Accuracy |" in markdown and "| great |" in markdown and str(labeled) in markdown


def test_evaluate_names_labels_the_model_does_not_know(model, tmp_path):
    frame = synthetic_reviews(12, seed=5)
    frame.loc[[2, 7], "score"] = ["awesome", "meh"]
    path = _csv(frame, tmp_path / "labeled.csv")
    assert_user_error(_run("evaluate", model, path, "--label", "score"), "'awesome', 'meh'",
                      "the model does not know", "great, other")


def test_evaluate_needs_a_label_column(model, labeled):
    assert_user_error(_run("evaluate", model, labeled), "has no label column 'label'", "score", "--label")
    assert_user_error(_run("evaluate", model, labeled, "--label", "score", "--text", "body"),
                      "has no column 'body'", "--text")


# -- one surface ------------------------------------------------------------------------------------------------
def test_graft_version():
    result = _run("--version")
    assert result.exit_code == 0 and result.output.strip() == f"graft {graftlab.__version__}"


@pytest.mark.parametrize("command", ["predict", "evaluate", "monitor", "reproduce", "bakeoff"])
def test_every_command_that_writes_files_takes_dash_o_output(command):
    shown = " ".join(_run(command, "--help").output.split())
    assert "-o" in shown and "--output" in shown
    assert "--out " not in shown and "--output-dir" not in shown  # the old spellings work but are not offered


def test_the_old_output_spellings_still_work(monkeypatch, tmp_path):
    import graftlab.monitoring
    import graftlab.tracking.reproduce

    seen = {}

    def stop(key):
        def record(*args, **kwargs):
            seen[key] = kwargs.get("out_dir", kwargs.get("output_dir"))
            raise graftlab.core.errors.DataError("stopped here")
        return record

    monkeypatch.setattr(graftlab.monitoring, "run_monitor", stop("monitor"))
    monkeypatch.setattr(graftlab.tracking.reproduce, "reproduce", stop("reproduce"))
    monkeypatch.chdir(tmp_path)
    assert_user_error(_run("monitor", tmp_path, "--out", tmp_path / "m"), "stopped here")
    assert_user_error(_run("reproduce", "abc", "--output-dir", tmp_path / "r"), "stopped here")
    assert Path(seen["monitor"]) == tmp_path / "m" and Path(seen["reproduce"]) == tmp_path / "r"
    assert_user_error(_run("monitor", tmp_path, "-o", tmp_path / "a", "--out", tmp_path / "b"), "-o/--output")
