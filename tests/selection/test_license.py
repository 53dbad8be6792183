"""The license gate refuses non-compliant backbones with a clear message, before any compute."""

import shutil

import pytest

from graftlab.backbones import HFTextBackbone
from graftlab.backbones.embedding_cache import STATS
from graftlab.core.config import StudyConfig
from graftlab.core.errors import ConfigError
from graftlab.selection import check_license, license_verdict, run_bakeoff


def config(backbones, **require):
    return StudyConfig.from_dict({"name": "t", "data": {}, "backbones": backbones, "require": require})


@pytest.fixture
def licensed(tiny_berts, tmp_path):
    """Copies of the two tiny BERTs whose README.md declare MIT and CC-BY-NC-4.0."""
    out = []
    for src, lic in zip(tiny_berts, ("mit", "cc-by-nc-4.0"), strict=True):
        folder = tmp_path / lic
        shutil.copytree(src, folder)
        (folder / "README.md").write_text(f"---\nlicense: {lic}\n---\n")
        out.append(str(folder))
    return out


@pytest.fixture
def no_compute(monkeypatch):
    def refuse(self, pretrained=True):
        raise AssertionError("an encoder was loaded: the gate must run before any compute")

    monkeypatch.setattr(HFTextBackbone, "load_encoder", refuse)


def test_commercial_use_refuses_unknown_and_non_commercial(tiny_berts, licensed, no_compute):
    mit, nc = licensed
    check_license(config([mit], commercial_use=True), [mit])  # MIT: fine
    with pytest.raises(ConfigError) as err:
        check_license(config([nc], commercial_use=True), [nc])
    msg = str(err.value)
    assert "'cc-by-nc-4.0'" in msg and "CC-BY-NC-4.0" in msg and "forbids commercial use" in msg
    assert "require.commercial_use" in msg
    with pytest.raises(ConfigError, match="does not say whether commercial use is allowed"):
        check_license(config([tiny_berts[0]], commercial_use=True), [tiny_berts[0]])


def test_allow_list_names_backbone_license_and_list(licensed, no_compute):
    mit, nc = licensed
    cfg = config([mit, nc], licenses=["Apache-2.0", "mit"])
    assert license_verdict(mit, cfg.require).allowed  # SPDX ids compare case-insensitively
    with pytest.raises(ConfigError) as err:
        check_license(cfg, [mit, nc])
    msg = str(err.value)
    assert "backbone 'cc-by-nc-4.0' is refused" in msg and "require.licenses [Apache-2.0, mit]" in msg
    assert "compliant backbones (mit)" in msg
    check_license(cfg, [mit, nc], require_all=False)  # a bake-off only excludes it


def test_no_requirement_allows_everything(tiny_berts):
    check_license(config(list(tiny_berts)), list(tiny_berts))


def test_bakeoff_with_no_compliant_candidate_fails_before_any_compute(licensed, splits, no_compute):
    train, val = splits
    before = dict(STATS)
    with pytest.raises(ConfigError, match="License gate"):
        run_bakeoff(config(licensed, licenses=["Apache-2.0"]), train, val, progress=False)
    assert STATS == before


@pytest.mark.parametrize("bad", [[], ["Apache 2.0"], ["MIT", "not/spdx"]])
def test_require_licenses_is_validated(bad):
    with pytest.raises(ConfigError, match="require.licenses"):
        config(["minilm-l6"], licenses=bad)
