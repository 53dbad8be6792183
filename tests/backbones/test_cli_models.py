"""``graft models list`` and ``graft models show`` through typer's CliRunner."""

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graftlab.backbones import HFTextBackbone
from graftlab.backbones.catalog import latency_cache_path
from graftlab.cli import app
from graftlab.core.errors import AssetMissingError


@pytest.fixture
def two_backbones(registry, tiny_bert):
    @registry.register("tiny")
    def tiny():
        return HFTextBackbone(tiny_bert, name="tiny", license="MIT", commercial_use=True, source_package="tiny-pkg",
                              package_version="1.0")

    @registry.register("absent")
    def absent():
        raise AssetMissingError("The backbone 'absent' comes from absent-pkg. Install it with: pip install absent-pkg==2.0")

    return registry


def test_models_list_shows_installed_and_missing(two_backbones):
    res = CliRunner().invoke(app, ["models", "list", "--no-latency"])
    assert res.exit_code == 0, res.output
    assert "tiny" in res.output and "MIT" in res.output and "tiny-pkg 1.0" in res.output
    assert "absent: not installed (pip install absent-pkg==2.0)" in res.output
    assert "not measured yet" in res.output
    assert not latency_cache_path().exists()


def test_models_list_measures_latency_once_and_caches_it(two_backbones):
    res = CliRunner().invoke(app, ["models", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["tiny"]["latency_ms_b1"] > 0 and rows["tiny"]["latency_ms_b32"] > 0
    assert rows["absent"]["installed"] is False
    cached = json.loads(latency_cache_path().read_text())
    assert [v["latency_ms_b1"] for v in cached.values()] == [rows["tiny"]["latency_ms_b1"]]
    again = {r["name"]: r for r in json.loads(CliRunner().invoke(app, ["models", "list", "--json"]).output)}
    assert again["tiny"]["latency"] == rows["tiny"]["latency"]  # read back, not re-measured


def test_models_show_a_local_folder(tiny_bert):
    res = CliRunner().invoke(app, ["models", "show", tiny_bert, "--json", "--no-latency"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)
    assert row["license"] == "unknown" and row["commercial_use"] is None and row["path"] == str(Path(tiny_bert))
    assert row["weights_sha256"] == hashlib.sha256((Path(tiny_bert) / "model.safetensors").read_bytes()).hexdigest()
    table = CliRunner().invoke(app, ["models", "show", tiny_bert])
    assert table.exit_code == 0, table.output
    for field in ("weights sha256", "license (SPDX)", "commercial use", "pretraining data", "latency b=1", "ms/example"):
        assert field in table.output


def test_models_show_unknown_name_is_a_user_error(two_backbones):
    res = CliRunner().invoke(app, ["models", "show", "no-such-model"])
    assert res.exit_code == 2
    assert "no-such-model" in res.output and "tiny" in res.output
    missing = CliRunner().invoke(app, ["models", "show", "absent"])
    assert missing.exit_code == 2 and "pip install absent-pkg==2.0" in missing.output
