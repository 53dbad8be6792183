"""A stored config with a source of kind ``python`` runs code: ``graft reproduce`` and ``graft retrain`` name it
and refuse without ``--trust-code``; ``graft study`` on the user's own config runs it and says so in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.core.config import StudyConfig
from graftlab.core.trust import UntrustedCodeError, code_sources, require_trusted

NAME = "code-rows"
ROWS = '''
from pathlib import Path

import pandas as pd

from graftlab.testing import synthetic_reviews


def rows(n=120):
    calls = Path(__file__).with_name("calls.txt")
    calls.write_text(str(int(calls.read_text()) + 1 if calls.exists() else 1))
    return synthetic_reviews(n, seed=0)
'''


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _config(root: Path) -> dict:
    return {"name": NAME,
            "data": {"source": {"kind": "python", "path": str(root / "rows.py"), "function": "rows"},
                     "text": "review", "label": "score"},
            "strategies": ["majority", "tfidf_logreg"],
            "eval": {"seeds": 1, "bootstrap": 100, "latency": False, "robustness": False}}


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A study whose data come from a Python function, logged and registered (champion) in a fresh store."""
    from graftlab.study import Study

    root = tmp_path_factory.mktemp("trust").resolve()
    (root / "rows.py").write_text(ROWS)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("GRAFT_CACHE_DIR", str(root / "cache"))
        mp.delenv("GRAFT_TRACKING_URI", raising=False)
        res = Study(StudyConfig.from_dict(_config(root)), progress=False).run()
        run_id = json.loads((res.run_dir / "tracking.json").read_text())["mlflow_run_id"]
    return {"root": root, "run_id": run_id, "uri": f"sqlite:///{root / '.graft' / 'mlflow.db'}"}


@pytest.fixture
def here(logged, monkeypatch):
    monkeypatch.chdir(logged["root"])
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(logged["root"] / "cache"))
    monkeypatch.delenv("GRAFT_TRACKING_URI", raising=False)
    return logged


def calls(root: Path) -> int:
    return int((root / "calls.txt").read_text())


def test_code_sources_name_every_python_source(tmp_path):
    cfg = StudyConfig.from_dict({**_config(tmp_path), "data": {
        **_config(tmp_path)["data"], "test_source": {"kind": "python", "function": "mypkg.rows:test"}}})
    assert code_sources(cfg) == [f"data.source calls 'rows' in {tmp_path / 'rows.py'}",
                                 "data.test_source calls 'mypkg.rows:test'"]
    csv = StudyConfig.from_dict({**_config(tmp_path), "data": {"source": "r.csv", "text": "review", "label": "score"}})
    assert code_sources(csv) == []
    require_trusted(csv, False, what="the config", command="x")  # no code: nothing to trust
    with pytest.raises(UntrustedCodeError, match="--trust-code"):
        require_trusted(cfg, False, what="the config", command="graft x --trust-code")


def test_reproduce_refuses_code_without_trust_code_and_runs_it_with(here):
    before = calls(here["root"])
    res = run_cli("reproduce", here["run_id"], "--tracking-uri", here["uri"], "-o", here["root"] / "again")
    assert res.exit_code == 2, res.output
    assert "runs Python code" in res.output and "'rows'" in res.output and "rows.py" in res.output
    assert f"graft reproduce {here['run_id']} --trust-code" in res.output.replace("\n", "")
    assert "Traceback" not in res.output and calls(here["root"]) == before  # refused before the code ran
    res = run_cli("reproduce", here["run_id"], "--trust-code", "--tracking-uri", here["uri"], "-o", here["root"] / "again")
    assert res.exit_code == 0, res.output
    assert "every test metric matches" in res.output and calls(here["root"]) > before


def test_retrain_refuses_code_without_trust_code_and_goes_on_with(here, tmp_path):
    quiet = tmp_path / "quiet.json"  # a monitor report without alerts: with trust, retrain goes on and skips
    quiet.write_text(json.dumps({"model": {"version": "1"}, "alerts": [], "created": "earlier"}))
    before = calls(here["root"])
    res = run_cli("retrain", NAME, "--monitor-report", quiet, "--tracking-uri", here["uri"])
    assert res.exit_code == 2, res.output
    assert "runs Python code" in res.output and "'rows'" in res.output
    assert f"graft retrain {NAME} --trust-code" in res.output.replace("\n", "")
    assert "Traceback" not in res.output and calls(here["root"]) == before
    assert not Path(".graft/retrain", NAME).exists()  # refused before anything was recorded
    res = run_cli("retrain", NAME, "--trust-code", "--monitor-report", quiet, "--tracking-uri", here["uri"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "no alert" in res.output


def test_validate_notes_that_the_config_runs_code(tmp_path):
    (tmp_path / "rows.py").write_text(ROWS)
    (tmp_path / "study.yaml").write_text(json.dumps(_config(tmp_path)))
    res = run_cli("validate", tmp_path / "study.yaml")
    assert res.exit_code == 0, res.output
    assert "runs Python code" in res.output and "'rows'" in res.output


def test_study_runs_the_users_own_code_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAFT_TRACKING_URI", raising=False)
    (tmp_path / "rows.py").write_text(ROWS)
    cfg = {**_config(tmp_path), "strategies": ["majority"], "tracking": {"enabled": False}}
    (tmp_path / "study.yaml").write_text(json.dumps(cfg))
    res = run_cli("study", tmp_path / "study.yaml", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "runs Python code" in res.output and calls(tmp_path) >= 1
