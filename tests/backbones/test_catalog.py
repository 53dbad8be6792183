"""The backbone catalog: licenses as SPDX, latency measured once per machine and cached, missing packages."""

import json
import shutil

import pytest

from graftlab.backbones import HFTextBackbone
from graftlab.backbones import catalog as cat
from graftlab.core.errors import AssetMissingError


@pytest.mark.parametrize(
    ("given", "spdx", "commercial"),
    [("apache-2.0", "Apache-2.0", True), ("MIT", "MIT", True), ("cc-by-nc-4.0", "CC-BY-NC-4.0", False),
     ("gpl-3.0", "GPL-3.0", True), ("openrail", "OpenRAIL", None), ("", "unknown", None),
     ("Some-Custom-License", "Some-Custom-License", None)],
)
def test_normalize_license(given, spdx, commercial):
    assert cat.normalize_license(given) == (spdx, commercial)


def test_local_folder_license_comes_from_its_readme(tiny_bert, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert, folder)
    assert cat.license_info(HFTextBackbone(folder)) == {"license": "unknown", "commercial_use": None,
                                                        "license_source": "none found"}
    (folder / "README.md").write_text("---\nlanguage: en\nlicense: cc-by-nc-4.0\ntags: [x]\n---\n# A model\n")
    info = cat.license_info(HFTextBackbone(folder))
    assert info == {"license": "CC-BY-NC-4.0", "commercial_use": False, "license_source": "README.md front matter"}


def test_card_license_wins_over_readme(tiny_bert, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert, folder)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    bb = HFTextBackbone(folder, license="Apache-2.0", commercial_use=True)
    assert cat.license_info(bb)["license"] == "Apache-2.0"


def test_latency_is_measured_once_then_read_from_the_cache(tiny_bert, monkeypatch):
    bb = HFTextBackbone(tiny_bert)
    first = cat.backbone_latency(bb)
    assert first["latency_ms_b1"] > 0 and first["latency_ms_b32"] > 0 and first["input_tokens"] > 10
    stored = json.loads(cat.latency_cache_path().read_text())
    key = cat.latency_key(bb)
    assert key in stored and bb.card.weights_sha256 in key and cat.machine_id() in key and "threads=" in key

    def boom(*a, **k):
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(cat, "measure_latency", boom)
    assert cat.backbone_latency(bb) == first
    assert cat.backbone_latency(bb, measure=False) == first


def test_latency_key_depends_on_threads_and_refresh_remeasures(tiny_bert, monkeypatch):
    bb = HFTextBackbone(tiny_bert)
    assert cat.latency_key(bb, threads=1) != cat.latency_key(bb, threads=3)
    assert cat.backbone_latency(bb, measure=False, threads=1) is None
    calls = []
    monkeypatch.setattr(cat, "measure_latency", lambda b, threads=None: calls.append(threads) or
                        {"latency_ms_b1": 1.0 + len(calls), "latency_ms_b32": 0.5})
    assert cat.backbone_latency(bb, threads=1)["latency_ms_b1"] == 2.0
    assert cat.backbone_latency(bb, threads=1)["latency_ms_b1"] == 2.0
    assert cat.backbone_latency(bb, threads=1, refresh=True)["latency_ms_b1"] == 3.0
    assert calls == [1, 1]


def test_a_corrupt_latency_cache_is_remeasured(tiny_bert):
    bb = HFTextBackbone(tiny_bert)
    path = cat.latency_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert cat.backbone_latency(bb)["latency_ms_b1"] > 0
    assert cat.latency_key(bb) in json.loads(path.read_text())


def test_measure_latency_restores_torch_threads(tiny_bert):
    import torch

    before = torch.get_num_threads()  # 1, set by the autouse fixture
    result = cat.measure_latency(HFTextBackbone(tiny_bert), repeats=2, threads=before + 1)
    assert result["torch_threads"] == before + 1
    assert torch.get_num_threads() == before


def test_catalog_lists_installed_and_missing_backbones(registry, tiny_bert):
    @registry.register("tiny")
    def tiny():
        return HFTextBackbone(tiny_bert, name="tiny", license="MIT", commercial_use=True, source_package="tiny-pkg",
                              package_version="1.0", pretraining_data="nothing: random weights")

    @registry.register("absent")
    def absent():
        raise AssetMissingError("The backbone 'absent' comes from absent-pkg. Install it with: pip install absent-pkg==2.0")

    rows = {r["name"]: r for r in cat.catalog(latency=False)}
    assert rows["absent"]["installed"] is False
    assert rows["absent"]["status"] == "not installed (pip install absent-pkg==2.0)"
    t = rows["tiny"]
    assert t["installed"] and t["license"] == "MIT" and t["commercial_use"] is True
    assert t["modality"] == "text" and t["hidden_size"] == 32 and t["params"] > 0 and t["max_length"] == 64
    assert t["source_package"] == "tiny-pkg" and len(t["weights_sha256"]) == 64
    assert t["latency_ms_b1"] is None  # latency=False and nothing cached: not measured


@pytest.mark.integration
def test_every_registered_backbone_either_describes_itself_or_says_how_to_install():
    """Contract over the real registry (no latency, so no model is run; mpnet-base is unpacked if installed)."""
    from graftlab.backbones import BACKBONES

    for row in cat.catalog(latency=False):
        assert row["name"] in BACKBONES
        if row["installed"]:
            assert row["license"] != "unknown" and row["commercial_use"] is not None, row["name"]
            assert row["pretraining_data"] != "unknown" and row["source_package"], row["name"]
        else:
            assert row["status"].startswith("not installed (pip install"), row
