"""Backbones named by Hugging Face Hub id (``hf:org/name``) come from the local Hugging Face cache only: a tiny model
written into a hand-made cache layout resolves, takes its license from its README, and a model that is not cached
is a user error naming the id and how to put it in the cache. Nothing is downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from graftlab.backbones import get_backbone
from graftlab.cli import app
from graftlab.core.errors import AssetMissingError, ConfigError
from graftlab.testing import assert_user_error, synthetic_reviews

REVISION = "0123456789abcdef0123456789abcdef01234567"


def cache_model(hub: Path, repo_id: str, source: str, readme: str | None = None) -> Path:
    """Put the model folder ``source`` into ``hub`` as huggingface_hub lays out a download: models--org--name with
    refs/main naming a snapshot folder that holds the files."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    shutil.copytree(source, snapshot)
    if readme is not None:
        (snapshot / "README.md").write_text(readme)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache that HF_HUB_CACHE points at, and a fresh backbone instance cache."""
    from graftlab import backbones

    monkeypatch.setattr(backbones, "_INSTANCES", {})
    folder = tmp_path / "hf-cache"
    folder.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    return folder


def test_a_cached_hub_model_resolves_to_its_snapshot_with_the_license_of_its_readme(hub, tiny_bert):
    snapshot = cache_model(hub, "acme/tiny-bert", tiny_bert, readme="---\nlicense: apache-2.0\ntags: [x]\n---\n# Tiny\n")
    bb = get_backbone("hf:acme/tiny-bert")
    assert bb.path == snapshot.resolve()
    card = bb.card
    assert card.name == "hf:acme/tiny-bert"
    assert (card.license, card.commercial_use) == ("Apache-2.0", True)
    assert card.source_package == "hf:acme/tiny-bert" and card.package_version == REVISION
    assert bb.load_encoder().config.hidden_size == 32
    assert get_backbone("hf:acme/tiny-bert") is bb  # one instance per process, as for every backbone


def test_a_hub_model_without_a_license_in_its_card_is_unknown(hub, tiny_bert):
    from graftlab.backbones.catalog import license_info

    cache_model(hub, "acme/nolicense", tiny_bert)
    bb = get_backbone("hf:acme/nolicense")
    assert (bb.card.license, bb.card.commercial_use) == ("unknown", None)
    assert license_info(bb) == {"license": "unknown", "commercial_use": None, "license_source": "none found"}


def test_hf_home_is_read_when_hf_hub_cache_is_not_set(tmp_path, monkeypatch, tiny_bert):
    from graftlab import backbones

    monkeypatch.setattr(backbones, "_INSTANCES", {})
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    snapshot = cache_model(tmp_path / "home" / "hub", "acme/tiny-bert", tiny_bert)
    assert get_backbone("hf:acme/tiny-bert").path == snapshot.resolve()


def test_a_model_that_is_not_cached_names_the_id_and_how_to_cache_it(hub, monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        pytest.fail("graftlab reached for the network")

    monkeypatch.setattr(huggingface_hub.file_download, "get_hf_file_metadata", no_network)
    with pytest.raises(AssetMissingError) as err:
        get_backbone("hf:acme/missing")
    msg = str(err.value)
    assert "'hf:acme/missing'" in msg and "not in the local Hugging Face cache" in msg and str(hub) in msg
    assert "hf download acme/missing" in msg and "HF_HUB_CACHE" in msg and "never downloads" in msg


def test_a_cached_repository_without_a_model_is_named(hub, tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "README.md").write_text("# only the card\n")
    cache_model(hub, "acme/half", tmp_path / "half")
    with pytest.raises(AssetMissingError, match=r"hf:acme/half.*no config\.json"):
        get_backbone("hf:acme/half")


@pytest.mark.parametrize("ref", ["hf:", "hf:acme//x", "hf:a/b/c", "hf:acme/bad name"])
def test_a_malformed_hub_id_is_a_config_error(hub, ref):
    with pytest.raises(ConfigError, match="Hugging Face Hub id"):
        get_backbone(ref)


def test_a_study_validates_with_a_hub_backbone_and_a_missing_one_is_exit_2(hub, tiny_bert, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache_model(hub, "acme/tiny-bert", tiny_bert)
    synthetic_reviews(120, seed=0).to_csv(tmp_path / "reviews.csv", index=False)
    cfg = {"name": "hub", "data": {"source": "reviews.csv", "text": "review", "label": "score"},
           "backbones": ["hf:acme/tiny-bert"], "strategies": ["majority", "linear_probe"]}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    ok = CliRunner().invoke(app, ["validate", "study.yaml"])
    assert ok.exit_code == 0, ok.output
    missing = CliRunner().invoke(app, ["validate", "study.yaml", "--set", "backbones=[hf:acme/other]"])
    assert_user_error(missing, "'hf:acme/other' is not in the local Hugging Face cache", "hf download acme/other")


def test_graft_models_show_takes_a_hub_id(hub, tiny_bert):
    cache_model(hub, "acme/tiny-bert", tiny_bert, readme="---\nlicense: mit\n---\n")
    result = CliRunner().invoke(app, ["models", "show", "hf:acme/tiny-bert", "--no-latency"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "hf:acme/tiny-bert" in text and "MIT" in text and REVISION in text
