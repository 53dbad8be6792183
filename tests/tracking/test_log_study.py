"""log_study against a real sqlite MLflow store: metrics with CIs, params, tags, dataset input, artifacts."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from graftlab.tracking import git_commit, log_study, resolve_tracking_uri
from graftlab.tracking.mlflow_log import flatten, study_metrics
from graftlab.tracking.store import artifact_root, safe_key


def test_run_records_every_strategy_metric_with_ci(tracked, mlflow_client):
    r = tracked.rich.results
    run = mlflow_client.get_run(tracked.rich.info["mlflow_run_id"])
    metrics = run.data.metrics
    assert set(r["strategies"]) == {"majority", "tfidf_logreg", "full"}
    for name, s in r["strategies"].items():
        for m, v in s["test"].items():
            for part, suffix in (("value", ""), ("ci_low", ".ci_low"), ("ci_high", ".ci_high")):
                if not math.isnan(v[part]):
                    assert metrics[f"{name}.test.{m}{suffix}"] == pytest.approx(v[part], abs=0, rel=1e-12)
    w = r["strategies"][r["winner"]]["test"]
    assert metrics["macro_f1"] == w["macro_f1"]["value"]
    assert metrics["macro_f1.ci_low"] == w["macro_f1"]["ci_low"]
    assert metrics["gates.passed"] == 1.0


def test_run_params_and_tags(tracked, mlflow_client):
    r, cfg = tracked.rich.results, tracked.rich.config
    run = mlflow_client.get_run(tracked.rich.info["mlflow_run_id"])
    params, tags = run.data.params, run.data.tags
    assert params["train.lr"] == str(cfg.train.lr)
    assert params["eval.bootstrap"] == "200"
    assert json.loads(params["seeds"]) == r["seeds"]
    assert params["env.cpu"] == r["environment"]["cpu"]
    assert params["env.pkg.torch"] == r["environment"]["packages"]["torch"]
    assert tags["gates"] == "passed"
    assert tags["winner"] == r["winner"]
    assert tags["data_fingerprint"] == r["data"]["fingerprint"]
    assert tags["graft.run_id"] == r["run_id"]
    assert run.info.run_name == r["run_id"]
    assert "git.commit" not in tags  # the temporary project is not a git work tree


def test_training_curves_are_step_metrics(tracked, mlflow_client):
    history = tracked.rich.results["strategies"]["full"]["history"][0]
    assert history, "the full fine-tune should record validation steps"
    logged = mlflow_client.get_metric_history(tracked.rich.info["mlflow_run_id"], "full.seed0.val_loss")
    assert [m.step for m in logged] == [h["step"] for h in history]
    assert [m.value for m in logged] == pytest.approx([h["val_loss"] for h in history])


def test_dataset_input_carries_the_fingerprint(tracked, mlflow_client):
    fp = tracked.rich.results["data"]["fingerprint"]
    run = mlflow_client.get_run(tracked.rich.info["mlflow_run_id"])
    inputs = {next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"study", "train", "val", "test"}
    full = inputs["study"]
    assert full.digest == fp[:36]  # MLflow caps digests at 36 characters; the source holds all of it
    assert json.loads(full.source)["tags"]["fingerprint"] == fp
    assert full.name == "reviews.csv"
    split = json.loads((tracked.rich.run_dir / "split.json").read_text())
    assert inputs["test"].digest == split["split_fingerprints"]["test"][:36]


def test_artifacts_are_logged_as_plain_files(tracked, mlflow_client, tmp_path):
    run_id = tracked.rich.info["mlflow_run_id"]
    top = {a.path for a in mlflow_client.list_artifacts(run_id)}
    for f in ("config.yaml", "split.json", "results.json", "report.html", "decision.md", "model_card.md",
              "model_card.json", "environment.json", "model", "predictions"):
        assert f in top, f
    model = {Path(a.path).name for a in mlflow_client.list_artifacts(run_id, "model")}
    assert {"manifest.json", "model.json", "model_card.md"} <= model
    assert "MLmodel" not in model  # no MLflow flavour, no pickled model
    got = Path(mlflow_client.download_artifacts(run_id, "config.yaml", str(tmp_path)))
    assert got.read_text() == (tracked.rich.run_dir / "config.yaml").read_text()
    env = json.loads(Path(mlflow_client.download_artifacts(run_id, "environment.json", str(tmp_path))).read_text())
    assert env == tracked.rich.results["environment"]


def test_default_store_lives_under_dot_graft_and_no_mlruns(tracked, mlflow_client):
    assert tracked.rich.info["tracking_uri"] == tracked.uri
    assert (tracked.root / ".graft" / "mlflow.db").is_file()
    assert not (tracked.root / "mlruns").exists()
    assert not list(tracked.root.rglob("mlruns"))
    run = mlflow_client.get_run(tracked.rich.info["mlflow_run_id"])
    assert run.info.artifact_uri.startswith((tracked.root / ".graft" / "artifacts").as_uri())
    assert json.loads((tracked.rich.run_dir / "tracking.json").read_text())["mlflow_run_id"] == run.info.run_id


def test_each_study_is_one_run_in_its_experiment(tracked, mlflow_client):
    exp = mlflow_client.get_experiment_by_name("rich")
    runs = mlflow_client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [tracked.rich.info["mlflow_run_id"]]
    assert runs[0].info.status == "FINISHED"


def test_disabled_tracking_does_nothing(tracked, mlflow_client):
    cfg = tracked.cheap.config.model_copy(deep=True)
    cfg.tracking.enabled = False
    exp = mlflow_client.get_experiment_by_name("cheap")
    before = len(mlflow_client.search_runs([exp.experiment_id]))
    info = log_study(tracked.cheap.results, tracked.cheap.run_dir, cfg)
    assert info["mlflow_run_id"] is None and info["registered"] is None
    assert len(mlflow_client.search_runs([exp.experiment_id])) == before


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRAFT_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path.resolve() / '.graft' / 'mlflow.db'}"
    monkeypatch.setenv("GRAFT_TRACKING_URI", "http://tracking.example:5000")
    assert resolve_tracking_uri() == "http://tracking.example:5000"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"
    assert artifact_root() == tmp_path.resolve() / ".graft" / "artifacts"
    assert artifact_root("store") == tmp_path.resolve() / "store"


def test_metric_names_are_valid_for_mlflow():
    assert safe_key("finetune[trainable_layers=2].test.macro_f1") == "finetune_trainable_layers_2_.test.macro_f1"
    results = {"study": "s", "run_id": "r",
               "strategies": {"lora[r=8]": {"kind": "transfer",
                                            "test": {"accuracy": {"value": 0.5, "ci_low": 0.4, "ci_high": float("nan")}}}},
               "winner": "lora[r=8]", "exit": {"gates_passed": False}}
    m = study_metrics(results)
    assert set(m) == {"lora_r_8_.test.accuracy", "lora_r_8_.test.accuracy.ci_low", "lora_r_8_.test.accuracy.ci_high",
                      "accuracy", "accuracy.ci_low", "accuracy.ci_high", "gates.passed"}
    assert (m["lora_r_8_.test.accuracy"], m["accuracy.ci_low"], m["gates.passed"]) == (0.5, 0.4, 0.0)
    assert math.isnan(m["accuracy.ci_high"])  # an undefined value is logged as NaN, not dropped
    assert flatten({"a": {"b": [1, 2], "c": None}}) == {"a.b": "[1, 2]", "a.c": "None"}


def test_git_commit_of_a_work_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@e", *args],
                       check=True, capture_output=True)

    assert git_commit(tmp_path) is None
    git("init", "-q")
    (tmp_path / "study.yaml").write_text("name: x\n")
    git("add", "study.yaml")
    git("commit", "-q", "-m", "init")
    info = git_commit(tmp_path)
    assert len(info["commit"]) == 40 and info["dirty"] is False
    (tmp_path / "study.yaml").write_text("name: y\n")
    assert git_commit(tmp_path)["dirty"] is True
