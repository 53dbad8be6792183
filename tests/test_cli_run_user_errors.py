"""User mistakes around a finished run: resuming it, predicting to a file, serving it, retraining and the registry.

Each ends in one readable message and exit code 2 (130 for Ctrl-C), with nothing lost or half written.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import assert_user_error, synthetic_reviews

FAST_EVAL = {"seeds": 1, "bootstrap": 100, "robustness": False, "explain": "off", "latency": False, "ablation": False}


def _run(*args, **kw):
    return CliRunner().invoke(app, [str(a) for a in args], **kw)


@pytest.fixture(scope="module")
def study_yaml(tmp_path_factory) -> Path:
    """A fast study (majority and TF-IDF, one seed, no tracking) with its runs under the same folder."""
    root = tmp_path_factory.mktemp("run-errors")
    synthetic_reviews(60, seed=0).to_csv(root / "reviews.csv", index=False)
    data = {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review", "label": "score"}
    cfg = {"name": "tiny", "data": data, "strategies": ["majority", "tfidf_logreg"], "eval": FAST_EVAL,
           "tracking": {"enabled": False}, "output_dir": str(root / "runs")}
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def run_dir(study_yaml) -> Path:
    result = _run("study", study_yaml, "--no-progress")
    assert result.exit_code == 0, result.output
    return next((study_yaml.parent / "runs" / "tiny").iterdir())


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- graft study: an output_dir it cannot write ----------------------------------------------------
@pytest.mark.parametrize("where", ["a file", "/proc/self", "/sys"])
def test_an_output_dir_that_cannot_be_written_is_a_user_error(study_yaml, tmp_path, where):
    if where == "a file":
        output = tmp_path / "runs.txt"
        output.write_text("not a folder")
    else:
        output = Path(where) / "graft-runs"
    cfg = yaml.safe_load(study_yaml.read_text())
    cfg["data"]["source"]["path"] = str(study_yaml.parent / "reviews.csv")
    cfg["output_dir"] = str(output)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert_user_error(_run("study", path, "--no-progress"), f"Cannot write the run folder {output}/tiny/",
                      "output_dir")


def test_a_full_disk_while_the_study_writes_is_a_user_error(study_yaml, tmp_path, monkeypatch):
    import errno

    import graftlab.study.study as study_module

    def full(results, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(study_module, "save_results", full)
    cfg = yaml.safe_load(study_yaml.read_text())
    cfg["data"]["source"]["path"] = str(study_yaml.parent / "reviews.csv")
    cfg["output_dir"] = str(tmp_path / "runs")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert_user_error(_run("study", path, "--no-progress"), "No space left on device", "results.json", "output_dir")


# -- graft study --resume -----------------------------------------------------------------------------
def test_resume_refuses_set_and_a_config_file_before_writing_anything(run_dir, study_yaml):
    before = _files(run_dir)
    assert_user_error(_run("study", "--resume", run_dir, "--set", "strategies=[majority]"),
                "--set cannot be used with --resume", "config it recorded", "start a new study")
    assert_user_error(_run("study", study_yaml, "--resume", run_dir), "not both", f"{study_yaml} would be ignored")
    assert _files(run_dir) == before


@pytest.mark.parametrize("how", ["dot", "symlink"])
def test_resume_records_the_real_run_id_and_leaves_the_model_as_it_was(run_dir, tmp_path, monkeypatch, how):
    copy = tmp_path / "copies" / run_dir.name  # same name: the folder's name is the run id
    shutil.copytree(run_dir, copy)
    model_before = _files(copy / "model")
    if how == "dot":
        monkeypatch.chdir(copy)
        target = Path(".")
    else:
        target = tmp_path / "latest"
        target.symlink_to(copy)
    result = _run("study", "--resume", target, "--no-progress")
    assert result.exit_code == 0, result.output
    for name in ("results.json", "decision.json", "model/model.json"):
        assert json.loads((copy / name).read_text())["run_id"] == run_dir.name, name
    assert _files(copy / "model") == model_before


def test_resuming_a_logged_run_keeps_its_model_card_and_its_record(study_yaml, tmp_path):
    """A finished run logged to MLflow, resumed: the re-exported model gets its card back, so its files (and the
    version identity they hash to) are as before, and results.json keeps the tracking record."""
    cfg = yaml.safe_load(study_yaml.read_text())
    cfg["tracking"] = {"enabled": True, "uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "artifacts": str(tmp_path / "art")}
    cfg["data"]["source"]["path"] = str(study_yaml.parent / "reviews.csv")
    cfg["output_dir"] = str(tmp_path / "runs")
    logged_yaml = tmp_path / "logged.yaml"
    logged_yaml.write_text(yaml.safe_dump(cfg))
    assert _run("study", logged_yaml, "--no-progress").exit_code == 0
    run = next((tmp_path / "runs" / "tiny").iterdir())
    model_before, tracking = _files(run / "model"), json.loads((run / "results.json").read_text())["tracking"]
    assert "model_card.json" in model_before and tracking["mlflow_run_id"]
    result = _run("study", "--resume", run, "--no-progress")
    assert result.exit_code == 0, result.output
    assert _files(run / "model") == model_before
    assert json.loads((run / "results.json").read_text())["tracking"] == tracking


def test_ctrl_c_says_how_to_continue_and_the_resume_finishes(study_yaml, monkeypatch):
    import graftlab.study.study as study_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study_module, "run_trial", interrupted)
    result = _run("study", study_yaml, "--no-progress")
    assert result.exit_code == 130, result.output
    folder = result.stdout.split("Run folder: ", 1)[1].split()[0]
    assert "Interrupted; continue with: graft study --resume " + folder in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    monkeypatch.undo()
    resumed = _run("study", "--resume", folder, "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((Path(folder) / "results.json").read_text())["run_id"] == Path(folder).name


# -- graft predict -o ---------------------------------------------------------------------------------
@pytest.fixture
def inputs_csv(tmp_path) -> Path:
    path = tmp_path / "inputs.csv"
    synthetic_reviews(10, seed=1).to_csv(path, index=False)
    return path


def test_predict_refuses_to_overwrite_its_input_file(run_dir, inputs_csv):
    before = inputs_csv.read_bytes()
    for out in (inputs_csv, inputs_csv.parent / "." / inputs_csv.name):
        assert_user_error(_run("predict", run_dir / "model", "--file", inputs_csv, "-o", out),
                    "is the input file", "inputs.predictions.csv")
    assert inputs_csv.read_bytes() == before


@pytest.mark.parametrize(("ending", "read"), [
    (".csv", pd.read_csv), (".tsv", lambda p: pd.read_csv(p, sep="\t")),
    (".jsonl", lambda p: pd.read_json(p, lines=True)), (".parquet", pd.read_parquet), (".xlsx", pd.read_excel),
])
def test_predict_writes_the_format_its_output_ending_names(run_dir, inputs_csv, tmp_path, ending, read):
    out = tmp_path / f"predictions{ending}"
    result = _run("predict", run_dir / "model", "--file", inputs_csv, "-o", out)
    assert result.exit_code == 0, result.output
    frame = read(out)
    assert len(frame) == 10 and list(frame.columns[:5]) == ["review", "score", "product", "label", "confidence"]


@pytest.mark.parametrize(("output", "phrases"), [
    ("out.xyz", ["cannot tell the file format from the ending '.xyz'", ".csv, .tsv, .jsonl, .parquet or .xlsx"]),
    ("predictions", ["a name without an ending"]),
    ("missing/out.csv", ["the folder", "missing does not exist"]),
    ("a-folder", ["is a folder; pass a file name"]),
])
def test_predict_refuses_an_output_it_cannot_write_before_predicting(run_dir, inputs_csv, tmp_path, output, phrases):
    (tmp_path / "a-folder").mkdir()
    assert_user_error(_run("predict", run_dir / "model", "--file", inputs_csv, "-o", tmp_path / output), *phrases)
    assert not (tmp_path / "out.xyz").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_predict_says_when_the_output_cannot_be_written(run_dir, tmp_path):
    assert_user_error(_run("predict", run_dir / "model", "--text", "great tea", "-o", "/proc/x.csv"),
                "Cannot write --output /proc/x.csv", "Pass a path in a folder you can write to")
    out = tmp_path / "scored.xlsx"  # Excel cells cannot hold control characters: said, and no half-written file
    assert_user_error(_run("predict", run_dir / "model", "--text", "great\x01tea", "-o", out),
                      f"Cannot write --output {out} as excel", "Write .csv, .jsonl or .parquet instead")
    assert not out.exists()


# -- graft serve ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "phrases"), [
    (["--port", "99999"], ["Invalid value for '--port'", "65535"]),
    (["--log-level", "loud"], ["Invalid value for '--log-level'",
                               "'critical', 'error', 'warning', 'info', 'debug', 'trace'"]),
    (["--canary", "x:2", "--shadow", "x:2"], ["--canary and --shadow cannot be used together; choose one."]),
])
def test_serve_checks_its_options(run_dir, no_server, tmp_path, args, phrases):
    assert_user_error(_run("serve", run_dir / "model", "--log-db", tmp_path / "log.db", *args), *phrases)


def test_serve_refuses_a_port_in_use_before_announcing_it(run_dir, no_server, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("serve", run_dir / "model", "--port", port, "--log-db", tmp_path / "log.db")
    assert_user_error(result, f"port {port} is in use", "pass --port")
    assert "Serving" not in result.output


def test_serve_refuses_a_log_that_is_not_a_database_or_cannot_be_created(run_dir, no_server, tmp_path):
    data = tmp_path / "reviews.csv"
    synthetic_reviews(3, seed=2).to_csv(data, index=False)
    before = data.read_bytes()
    assert_user_error(_run("serve", run_dir / "model", "--log-db", data),
                f"The prediction log {data} is not a SQLite database")
    assert data.read_bytes() == before
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_user_error(_run("serve", run_dir / "model", "--log-db", blocker / "log.db"),
                f"Cannot create the prediction log {blocker / 'log.db'}", "Pass --log-db a path")
    assert_user_error(_run("serve", run_dir / "model", "--log-db", tmp_path),
                      f"Cannot open or create the prediction log {tmp_path}", "Pass --log-db a file name")


def test_serve_refuses_another_applications_database_and_leaves_it_as_it_was(run_dir, no_server, tmp_path):
    import sqlite3

    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    assert_user_error(_run("serve", run_dir / "model", "--log-db", other),
                      f"{other} is another application's SQLite database", "(users)",
                      "Pass --log-db a new file name (it is created) or graftlab's own prediction log")
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_serve_accepts_every_log_level_it_offers(run_dir, monkeypatch, tmp_path):
    import uvicorn

    reached = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: reached.append(kw["log_level"]))
    with socket.socket() as probe:  # a port free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _run("serve", run_dir / "model", "--log-db", tmp_path / "log.db", "--log-level", "trace", "--port", port)
    assert result.exit_code == 0, result.output
    assert reached == ["trace"]


# -- graft retrain --data, graft registry --tracking-uri ----------------------------------------------
@pytest.mark.parametrize(("make", "phrases"), [
    (lambda d: d / "nope.csv", ["--data", "nope.csv does not exist"]),
    (lambda d: d, ["is a folder; pass a table file"]),
    (lambda d: d / "gen.py", ["must end in .csv, .tsv, .jsonl, .parquet or .xlsx"]),
    (lambda d: d / "gen.csv", ["Cannot read", "gen.csv as csv"]),
])
def test_retrain_reads_data_as_the_study_does(tmp_path, make, phrases):
    (tmp_path / "gen.py").write_text("def load():\n    return {'a': [1]}\n")
    (tmp_path / "gen.csv").write_text('a,b\n1,2\n"x\n3,4,5,6,7\n')
    result = _run("retrain", "anything", "--force", "--log-db", tmp_path / "log.db", "--data", make(tmp_path),
                  "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert_user_error(result, *phrases)


@pytest.mark.parametrize(("uri", "phrases"), [
    ("http://127.0.0.1:1", ["The MLflow tracking server http://127.0.0.1:1 does not answer", "--tracking-uri"]),
    ("{tmp}/no/such/dir", ["The MLflow tracking store", "cannot be used", "sqlite:///PATH/mlflow.db"]),
    ("sqlite:///{tmp}/reviews.csv", ["cannot be used (file is not a database)"]),
])
def test_registry_names_a_tracking_uri_it_cannot_use(tmp_path, uri, phrases):
    (tmp_path / "reviews.csv").write_text("review,score\nok,1\n")
    assert_user_error(_run("registry", "list", "--tracking-uri", uri.format(tmp=tmp_path)), *phrases)
