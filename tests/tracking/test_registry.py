"""The model registry on a real sqlite MLflow store: versions, aliases, promote, rollback, resolve, CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.core.errors import ArtifactError, GraftError
from graftlab.packaging import load_model
from graftlab.tracking import (
    list_models,
    parse_ref,
    promote,
    resolve_model,
    rollback,
    show,
)
from graftlab.tracking.registry import register_version

CLI = CliRunner()


def _champion(mlflow_client, name):
    value = mlflow_client.get_registered_model(name).aliases.get("champion")
    return None if value is None else str(value)


def _invoke(*args):
    return CLI.invoke(app, list(args), env={"COLUMNS": "200", "GRAFT_TRACKING_URI": ""})


def test_each_study_registers_a_version_with_gates_and_fingerprint(tracked, mlflow_client):
    assert tracked.rich.info["registered"] == {"name": tracked.name, "version": 1, "aliases": ["challenger", "champion"]}
    assert tracked.cheap.info["registered"] == {"name": tracked.name, "version": 2, "aliases": ["challenger"]}
    assert tracked.failing.info["registered"] == {"name": tracked.name, "version": 3, "aliases": ["challenger"]}
    gates = {}
    for logged, version in ((tracked.rich, "1"), (tracked.cheap, "2"), (tracked.failing, "3")):
        mv = mlflow_client.get_model_version(tracked.name, version)
        assert mv.tags["data_fingerprint"] == logged.results["data"]["fingerprint"]
        assert mv.run_id == logged.info["mlflow_run_id"]
        assert mv.source.endswith("/model")
        gates[version] = mv.tags["gates"]
    assert gates == {"1": "passed", "2": "passed", "3": "failed"}
    assert tracked.failing.results["exit"]["gates_passed"] is False


def test_list_and_show(tracked):
    (model,) = [m for m in list_models(tracked.uri) if m["name"] == tracked.name]
    assert [v["version"] for v in model["versions"]] == [1, 2, 3]
    assert model["versions"][0]["aliases"] == ["champion"]
    assert [v["gates"] for v in model["versions"]] == ["passed", "passed", "failed"]
    info = show(tracked.name, tracked.uri)
    v1 = info["versions"][0]
    winner = tracked.rich.results["strategies"][tracked.rich.results["winner"]]["test"]
    assert v1["metrics"]["macro_f1"] == pytest.approx(winner["macro_f1"])
    assert v1["strategy"] == tracked.rich.results["winner"]


def test_promote_then_rollback(tracked, mlflow_client):
    name, uri = tracked.name, tracked.uri
    assert _champion(mlflow_client, name) == "1"
    res = promote(name, 2, tracking_uri=uri)
    assert res == {"name": name, "version": 2, "previous_champion": 1, "changed": True}
    assert _champion(mlflow_client, name) == "2"
    assert mlflow_client.get_model_version(name, "2").tags["previous_champion"] == "1"
    assert promote(name, 2, tracking_uri=uri)["changed"] is False
    assert rollback(name, tracking_uri=uri) == {"name": name, "from": 2, "to": 1}
    assert _champion(mlflow_client, name) == "1"
    assert mlflow_client.get_model_version(name, "2").tags["rolled_back_to"] == "1"
    with pytest.raises(GraftError, match="nothing to roll back to"):
        rollback(name, tracking_uri=uri)  # version 1 was the first champion


def test_promoting_a_failed_version_needs_force_and_reason(tracked, mlflow_client):
    name, uri = tracked.name, tracked.uri
    with pytest.raises(GraftError, match=r"failed its gates.*--force --reason"):
        promote(name, 3, tracking_uri=uri)
    with pytest.raises(GraftError, match="needs a reason"):
        promote(name, 3, force=True, tracking_uri=uri)
    assert _champion(mlflow_client, name) == "1"
    promote(name, 3, force=True, reason="hotfix for an outage", tracking_uri=uri)
    tags = mlflow_client.get_model_version(name, "3").tags
    assert _champion(mlflow_client, name) == "3"
    assert tags["promotion_reason"] == "hotfix for an outage" and tags["promotion_forced"] == "true"
    assert rollback(name, tracking_uri=uri)["to"] == 1
    assert _champion(mlflow_client, name) == "1"


def test_unknown_names_and_versions_are_clear_errors(tracked):
    with pytest.raises(GraftError, match=r"no registered model 'nope'.*reviews-clf"):
        show("nope", tracked.uri)
    with pytest.raises(GraftError, match=r"no version 9 \(versions: 1, 2, 3\)"):
        promote(tracked.name, 9, tracking_uri=tracked.uri)
    with pytest.raises(GraftError, match="no alias 'canary'"):
        resolve_model(f"{tracked.name}@canary", tracked.uri)


def test_parse_ref():
    assert parse_ref("m") == ("m", "alias", "champion")
    assert parse_ref("m@challenger") == ("m", "alias", "challenger")
    assert parse_ref("m:3") == ("m", "version", "3")
    assert parse_ref("models:/m/4") == ("m", "version", "4")
    assert parse_ref("models:/m@champion") == ("m", "alias", "champion")


def test_resolve_model_loads_the_champion(tracked):
    folder = resolve_model(f"{tracked.name}@champion", tracked.uri)
    model = load_model(folder)
    assert model.meta["run_id"] == tracked.rich.results["run_id"]
    proba = model.predict_proba(["great tasty excellent coffee", "awful stale broken box"])
    assert proba.shape == (2, 2) and proba.sum(1) == pytest.approx([1.0, 1.0])
    assert resolve_model(tracked.name, tracked.uri) == folder  # the alias defaults to champion
    assert load_model(resolve_model(f"{tracked.name}:2", tracked.uri)).meta["run_id"] == tracked.cheap.results["run_id"]
    assert resolve_model(tracked.rich.run_dir) == tracked.rich.run_dir / "model"
    with pytest.raises(ArtifactError, match="not a packaged model"):
        resolve_model(tracked.root)


def test_resolve_model_downloads_a_remote_source_into_the_cache(tracked, monkeypatch):
    monkeypatch.chdir(tracked.root)
    run_id = tracked.cheap.info["mlflow_run_id"]
    reg = register_version("remote-copy", f"runs:/{run_id}/model", run_id, {"data_fingerprint": "x"}, True,
                           tracking_uri=tracked.uri)
    assert reg["aliases"] == ["challenger", "champion"]
    folder = resolve_model("remote-copy@champion", tracked.uri)
    assert folder == tracked.root / ".graft" / "models" / "remote-copy" / "1"
    assert load_model(folder).meta["run_id"] == tracked.cheap.results["run_id"]
    assert resolve_model("remote-copy:1", tracked.uri) == folder  # served from the verified cache


def test_cli_registry_list_show_promote_rollback(tracked, mlflow_client):
    res = _invoke("registry", "list", "--tracking-uri", tracked.uri)
    assert res.exit_code == 0, res.output
    rows = [line for line in res.output.splitlines() if tracked.name in line]
    assert len(rows) == 3
    assert any("@champion" in r and " 1 " in r and "passed" in r for r in rows)
    assert any(" 3 " in r and "failed" in r for r in rows)

    res = _invoke("registry", "show", tracked.name, "--tracking-uri", tracked.uri)
    assert res.exit_code == 0 and "macro_f1" in res.output

    res = _invoke("registry", "promote", tracked.name, "3", "--tracking-uri", tracked.uri)
    assert res.exit_code == 2 and "--force --reason" in res.output
    res = _invoke("registry", "promote", tracked.name, "2", "--tracking-uri", tracked.uri)
    assert res.exit_code == 0, res.output
    assert _champion(mlflow_client, tracked.name) == "2"
    res = _invoke("registry", "rollback", tracked.name, "--tracking-uri", tracked.uri)
    assert res.exit_code == 0 and "version 2 → version 1" in res.output
    assert _champion(mlflow_client, tracked.name) == "1"


def test_cli_uses_the_default_store_of_the_working_directory(tracked, monkeypatch, tmp_path):
    monkeypatch.chdir(tracked.root)
    res = _invoke("registry", "list")
    assert res.exit_code == 0 and tracked.name in res.output
    monkeypatch.chdir(tmp_path)
    res = _invoke("registry", "list")
    assert res.exit_code == 2 and "no MLflow store" in res.output
    assert not (tmp_path / ".graft").exists()  # a read-only command does not create an empty store
