"""Every command that takes --tracking-uri says when it cannot use the store (exit 2, before any work), and Ctrl-C
ends every command in one line and exit code 130, never a traceback."""

from __future__ import annotations

import socket

import pytest
import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import assert_user_error, synthetic_reviews

_STORE_HINT = "Check --tracking-uri (or $GRAFT_TRACKING_URI)"


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- --tracking-uri ------------------------------------------------------------------------------------
_COMMANDS = {
    "serve": ["serve", "NAME@champion", "--port", "{port}", "--log-db", "{tmp}/log.db"],
    "monitor": ["monitor", "NAME", "--log-db", "{tmp}/log.db"],
    "retrain": ["retrain", "NAME", "--force", "--log-db", "{tmp}/log.db"],
    "reproduce": ["reproduce", "0123456789abcdef"],
}
_URIS = {
    "server down": ("http://127.0.0.1:1", ["The MLflow tracking server http://127.0.0.1:1 does not answer", _STORE_HINT]),
    "unknown scheme": ("bogus://x", ["The MLflow tracking store bogus://x cannot be used", "unsupported URI",
                                     _STORE_HINT]),
    "not a database": ("sqlite:///{tmp}/reviews.csv", ["cannot be used (file is not a database)", _STORE_HINT]),
    "missing folder": ("{tmp}/no/such/dir", ["The MLflow tracking store", "no/such/dir cannot be used", _STORE_HINT]),
    "no store yet": ("sqlite:///{tmp}/no/such/mlflow.db", ["There is no MLflow store at", "Run a study first"]),
}


@pytest.mark.timeout(60)  # MLflow alone retries a server that does not answer for minutes
@pytest.mark.parametrize("uri_case", list(_URIS))
@pytest.mark.parametrize("command", list(_COMMANDS))
def test_commands_name_a_tracking_uri_they_cannot_use(tmp_path, monkeypatch, no_server, command, uri_case):
    monkeypatch.chdir(tmp_path)  # the default .graft/ folder, were anything written
    (tmp_path / "reviews.csv").write_text("review,score\nok,1\n")
    fill = {"tmp": tmp_path, "port": _free_port()}
    uri, phrases = _URIS[uri_case]
    result = _run(*[a.format(**fill) for a in _COMMANDS[command]], "--tracking-uri", uri.format(**fill))
    assert_user_error(result, *phrases)
    assert "Serving" not in result.output
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("challenger", ["--canary", "--shadow"])
def test_serve_checks_the_store_for_a_registered_challenger_too(tmp_path, no_server, challenger):
    result = _run("serve", tmp_path, challenger, "NAME:2", "--port", _free_port(), "--log-db", tmp_path / "log.db",
                  "--tracking-uri", "http://127.0.0.1:1")
    assert_user_error(result, "The MLflow tracking server http://127.0.0.1:1 does not answer", _STORE_HINT)


@pytest.mark.parametrize("command", ["serve", "monitor"])
def test_a_model_folder_needs_no_tracking_store(tmp_path, no_server, command):
    """Only a registry reference uses the store: a folder is loaded (here: refused, being empty) without asking it."""
    args = ["--port", _free_port()] if command == "serve" else []
    result = _run(command, tmp_path, "--log-db", tmp_path / "log.db", "--tracking-uri", "http://127.0.0.1:1", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "tracking" not in result.output


def test_registry_references_are_told_from_model_folders(tmp_path, monkeypatch):
    from graftlab.cli.registry import registry_store
    from graftlab.serving.resolve import is_registry_ref

    monkeypatch.chdir(tmp_path)
    (tmp_path / "champion").mkdir()
    for ref in ("NAME", "NAME@champion", "NAME:3", "models:/NAME/3"):
        assert is_registry_ref(ref), ref
    for ref in ("champion", str(tmp_path), "./missing", "runs/x/model", "..", "a\\b"):
        assert not is_registry_ref(ref), ref
    with registry_store("http://127.0.0.1:1", str(tmp_path), None):  # no registry reference: the store is not asked
        pass


# -- Ctrl-C --------------------------------------------------------------------------------------------
def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_before_the_run_folder_exists_says_nothing_was_written(tmp_path, monkeypatch):
    import graftlab.study.study as study_module

    synthetic_reviews(30, seed=0).to_csv(tmp_path / "reviews.csv", index=False)
    cfg = {"name": "tiny", "data": {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review", "label": "score"},
           "strategies": ["majority"], "tracking": {"enabled": False}, "output_dir": str(tmp_path / "runs")}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setattr(study_module, "prepare_data", _interrupt)
    result = _run("study", tmp_path / "study.yaml", "--no-progress")
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == "Interrupted before the run started; nothing was written."
    assert "Traceback" not in result.output and "Run folder" not in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("module", "name", "args"), [
    ("graftlab.packaging", "load_model", ["predict", "{tmp}", "--text", "great tea"]),
    ("graftlab.packaging", "load_model", ["explain", "{tmp}", "--text", "great tea"]),
    ("graftlab.monitoring", "run_monitor", ["monitor", "{tmp}"]),
    ("graftlab.lifecycle", "retrain", ["retrain", "NAME", "--force"]),
])
def test_ctrl_c_ends_a_command_in_one_line_and_exit_130(tmp_path, monkeypatch, module, name, args):
    import importlib

    monkeypatch.chdir(tmp_path)  # the default .graft/ folder, were anything written
    monkeypatch.setattr(importlib.import_module(module), name, _interrupt)
    result = _run(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == "Interrupted before it finished; run the command again to start over."
    assert "Traceback" not in result.output and "Aborted" not in result.output
    assert not any(tmp_path.iterdir())
