"""Admin endpoints: bearer-token auth, promotion (moving the registry alias) and rollback."""

import sys
import types

import pytest

from graftlab.core.errors import GraftError

TOKEN = "s3cret-token"


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def test_admin_needs_the_token_from_the_environment(make_client, packaged, monkeypatch):
    monkeypatch.delenv("GRAFT_ADMIN_TOKEN", raising=False)
    client = make_client(shadow=str(packaged["flipped"]))
    for path in ("/admin/promote", "/admin/rollback", "/admin/reload"):
        r = client.post(path, headers=auth())
        assert r.status_code == 403 and "GRAFT_ADMIN_TOKEN" in r.json()["detail"]
    monkeypatch.setenv("GRAFT_ADMIN_TOKEN", TOKEN)
    for path in ("/admin/promote", "/admin/rollback", "/admin/reload"):
        assert client.post(path).status_code == 401
        assert client.post(path, headers={"Authorization": "Basic abc"}).status_code == 401
        assert client.post(path, headers=auth("wrong")).status_code == 403
    assert client.get("/admin/status", headers=auth()).json()["challenger_active"] is True  # nothing happened
    r = client.post("/admin/rollback", headers=auth(), json={"reason": "testing"})
    assert r.status_code == 200 and r.json()["event"]["kind"] == "rollback"
    assert r.json()["health"]["challenger_active"] is False
    assert 'graft_rollbacks_total{trigger="manual"} 1.0' in client.get("/metrics").text


def test_promote_a_folder_challenger_then_roll_back(make_client, packaged, monkeypatch, texts):
    monkeypatch.setenv("GRAFT_ADMIN_TOKEN", TOKEN)
    client = make_client(canary=str(packaged["flipped"]), canary_percent=0.0)
    before = client.post("/v1/predict", json={"text": texts[0]}).json()
    assert before["model_version"].startswith("tiny-reviews#")
    r = client.post("/admin/promote", headers=auth(), json={"reason": "better"})
    assert r.status_code == 200, r.text
    after = client.post("/v1/predict", json={"text": texts[0]}).json()
    assert after["model_version"].startswith("tiny-flipped#") and after["route"] == "champion"
    assert after["label"] != before["label"]
    assert client.post("/admin/promote", headers=auth()).status_code == 409  # no challenger left
    r = client.post("/admin/rollback", headers=auth())
    assert r.status_code == 200
    assert client.post("/v1/predict", json={"text": texts[0]}).json()["model_version"] == before["model_version"]
    assert client.post("/admin/rollback", headers=auth()).status_code == 409  # nothing left to roll back
    r = client.post("/admin/reload", headers=auth())
    assert r.status_code == 200 and r.json()["event"]["kind"] == "reload"
    assert client.post("/v1/predict", json={"text": texts[1]}).status_code == 200


@pytest.fixture
def fake_registry(packaged, monkeypatch):
    """A stand-in for graftlab.tracking.registry: tiny@champion is version 1, tiny:2 the flipped model."""
    calls = []
    reg = types.ModuleType("graftlab.tracking.registry")
    folders = {"1": packaged["champion"], "2": packaged["flipped"]}
    aliases = {"champion": "1", "challenger": "2"}

    def parse_ref(ref):
        if "@" in ref:
            name, alias = ref.split("@")
            return name, "alias", alias
        name, _, version = ref.partition(":")
        return (name, "version", version) if version else (name, "alias", "champion")

    def resolve_model(ref, tracking_uri=None):
        _, kind, value = parse_ref(ref)
        return folders[aliases[value] if kind == "alias" else value]

    def show(name, tracking_uri=None):
        return {"name": name, "aliases": {k: int(v) for k, v in aliases.items()}}

    def promote(name, version, force=False, reason=None, tracking_uri=None):
        calls.append(("promote", name, str(version), force, reason))
        if reason == "gates failed":
            raise GraftError(f"Version {version} of {name!r} failed its gates")
        aliases["champion"] = str(version)
        return {"name": name, "version": int(version)}

    def rollback(name, reason=None, tracking_uri=None):
        calls.append(("rollback", name, reason))
        aliases["champion"] = "1"
        return {"name": name, "from": 2, "to": 1}

    for fn in (parse_ref, resolve_model, show, promote, rollback):
        setattr(reg, fn.__name__, fn)
    monkeypatch.setitem(sys.modules, "graftlab.tracking.registry", reg)
    return calls


def test_promotion_of_a_registry_challenger_moves_the_alias(make_client, fake_registry, monkeypatch, texts):
    monkeypatch.setenv("GRAFT_ADMIN_TOKEN", TOKEN)
    client = make_client(model="tiny@champion", shadow="tiny@challenger")
    health = client.get("/health").json()
    assert health["champion"]["version"] == "tiny:1" and health["challenger"]["version"] == "tiny:2"
    assert client.post("/v1/predict", json={"text": texts[0]}).json()["model_version"] == "tiny:1"

    refused = client.post("/admin/promote", headers=auth(), json={"reason": "gates failed"})
    assert refused.status_code == 409 and "failed its gates" in refused.json()["detail"]
    assert client.get("/health").json()["champion"]["version"] == "tiny:1"  # unchanged

    r = client.post("/admin/promote", headers=auth(), json={"force": True, "reason": "checked by hand"})
    assert r.status_code == 200, r.text
    assert fake_registry[-1] == ("promote", "tiny", "2", True, "checked by hand")
    assert client.post("/v1/predict", json={"text": texts[0]}).json()["model_version"] == "tiny:2"

    assert client.post("/admin/rollback", headers=auth(), json={"reason": "oops"}).status_code == 200
    assert fake_registry[-1] == ("rollback", "tiny", "oops")
    assert client.post("/v1/predict", json={"text": texts[0]}).json()["model_version"] == "tiny:1"


def test_registry_reference_without_tracking_is_a_clear_error(packaged, monkeypatch, tmp_path):
    from graftlab.core.errors import ArtifactError
    from graftlab.serving import ServeConfig, Service

    monkeypatch.setitem(sys.modules, "graftlab.tracking.registry", None)  # import fails
    with pytest.raises(GraftError, match="tracking"):
        Service(ServeConfig(model="tiny@champion", log_db=tmp_path / "x.db")).load()
    with pytest.raises(ArtifactError, match="does not exist"):
        Service(ServeConfig(model=str(tmp_path / "missing" / "model"), log_db=tmp_path / "x.db")).load()
