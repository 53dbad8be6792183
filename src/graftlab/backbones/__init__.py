"""Pretrained backbones. Each family is one module that registers itself in :data:`BACKBONES`."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import ConfigError
from . import minilm  # noqa: F401  (registers minilm-l6)
from . import mpnet  # noqa: F401  (registers mpnet-base)
from .base import BACKBONES, REBUILDERS, Backbone, BackboneCard, EncodedSet, LayerGroup
from .hf_text import HFTextBackbone

__all__ = ["BACKBONES", "REBUILDERS", "Backbone", "BackboneCard", "EncodedSet", "LayerGroup", "HFTextBackbone", "get_backbone"]

_INSTANCES: dict[str, Backbone] = {}


def get_backbone(name_or_path: str) -> Backbone:
    """A registered backbone by name, or any local Hugging Face folder by path (one instance per process)."""
    if name_or_path in _INSTANCES:
        return _INSTANCES[name_or_path]
    if name_or_path in BACKBONES:
        bb = BACKBONES.get(name_or_path)()
    elif Path(name_or_path).expanduser().is_dir():
        bb = HFTextBackbone(Path(name_or_path).expanduser().resolve())
    else:
        known = ", ".join(BACKBONES.names())
        raise ConfigError(
            f"Unknown backbone {name_or_path!r}: it is neither a registered name ({known}) nor an existing folder."
        )
    _INSTANCES[name_or_path] = bb
    return bb
