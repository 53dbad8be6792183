"""``graft reproduce``: the tiny-model study re-runs from its logged config and split to the same metrics."""

from __future__ import annotations

import copy
import math

import pytest
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.core.errors import DataError, GraftError
from graftlab.tracking import compare_results
from graftlab.tracking.reproduce import find_run, reproduce


def test_graft_reproduce_matches_exactly(tracked, mlflow_client, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "fresh-cache"))
    run_id = tracked.rich.info["mlflow_run_id"]
    res = CliRunner().invoke(app, ["reproduce", run_id, "--tracking-uri", tracked.uri, "--output-dir", str(tmp_path / "runs")],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "every test metric matches" in res.output
    for name in tracked.rich.results["strategies"]:
        assert name in res.output
    reproduced = list((tmp_path / "runs" / "rich").iterdir())
    assert len(reproduced) == 1 and (reproduced[0] / "results.json").is_file()
    assert not (reproduced[0] / "tracking.json").exists()  # a reproduction registers nothing
    assert mlflow_client.get_run(run_id).data.tags["graft.reproduced"] == "match"
    assert len(mlflow_client.search_model_versions(f"name='{tracked.name}'")) == 3


def test_a_changed_dataset_is_refused_before_training(tracked, tmp_path):
    csv = tracked.root / "reviews.csv"
    original = csv.read_bytes()
    try:
        csv.write_bytes(original.replace(b"great", b"grate", 1))
        with pytest.raises(DataError, match=r"not the data run .* was trained on: fingerprint"):
            reproduce(tracked.rich.info["mlflow_run_id"], lambda cfg, prepared: pytest.fail("must not run"),
                      tracking_uri=tracked.uri, output_dir=tmp_path)
    finally:
        csv.write_bytes(original)


def test_runs_are_found_by_graftlab_run_id(tracked):
    run = find_run(tracked.cheap.results["run_id"], tracked.uri)
    assert run.info.run_id == tracked.cheap.info["mlflow_run_id"]
    with pytest.raises(GraftError, match="No MLflow run"):
        find_run("no-such-run", tracked.uri)


def test_compare_results_tolerance_and_missing_values(tracked):
    recorded = tracked.cheap.results
    same = compare_results(recorded, recorded)
    assert same and all(r["match"] for r in same)
    nudged = copy.deepcopy(recorded)
    nudged["strategies"]["tfidf_logreg"]["test"]["accuracy"]["value"] += 1e-9
    rows = compare_results(recorded, nudged)
    assert [(r["strategy"], r["metric"], r["field"]) for r in rows if not r["match"]] == [("tfidf_logreg", "accuracy", "value")]
    assert all(r["match"] for r in compare_results(recorded, nudged, tolerance=1e-6))
    missing = copy.deepcopy(recorded)
    del missing["strategies"]["majority"]
    assert not all(r["match"] for r in compare_results(recorded, missing))
    nan = {"strategies": {"s": {"test": {"roc_auc": {"value": math.nan}}}}}
    assert compare_results(nan, copy.deepcopy(nan))[0]["match"]
    with pytest.raises(GraftError, match="'tolerance' parameter"):
        compare_results(recorded, recorded, tolerance=-1)
