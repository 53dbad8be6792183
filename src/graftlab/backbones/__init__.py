"""Pretrained backbones. Each family is one module that registers itself in :data:`BACKBONES`."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import ConfigError
from . import minilm  # noqa: F401  (registers minilm-l6)
from . import mpnet  # noqa: F401  (registers mpnet-base)
from . import efficientnet  # noqa: F401  (registers efficientnet-lite0)
from .base import BACKBONES, REBUILDERS, Backbone, BackboneCard, EncodedSet, LayerGroup
from .hf_text import HFTextBackbone
from .image import ImageBackbone
from .small_cnn import CNN_SPEC_FILE, SmallCNNBackbone

__all__ = ["BACKBONES", "REBUILDERS", "Backbone", "BackboneCard", "EncodedSet", "LayerGroup", "HFTextBackbone", "ImageBackbone",
           "SmallCNNBackbone", "get_backbone"]

_INSTANCES: dict[str, Backbone] = {}


def get_backbone(name_or_path: str) -> Backbone:
    """A registered backbone by name, or any local Hugging Face or small-CNN folder by path (one instance per process).

    An image backbone takes its input size after ``@``: ``efficientnet-lite0@112`` (default: the card's size).
    """
    if name_or_path in _INSTANCES:
        return _INSTANCES[name_or_path]
    base, _, size = name_or_path.rpartition("@") if "@" in name_or_path else (name_or_path, "", "")
    if name_or_path in BACKBONES:
        bb = BACKBONES.get(name_or_path)()
    elif size and base in BACKBONES:
        try:
            bb = BACKBONES.get(base)(image_size=int(size) if size.isdigit() else size)
        except TypeError:
            raise ConfigError(f"The backbone {base!r} takes no input size: use {base!r} without '@{size}'.") from None
    elif Path(name_or_path).expanduser().is_dir() and (Path(name_or_path).expanduser() / CNN_SPEC_FILE).is_file():
        bb = SmallCNNBackbone(Path(name_or_path).expanduser().resolve())
    elif Path(name_or_path).expanduser().is_dir():
        bb = HFTextBackbone(Path(name_or_path).expanduser().resolve())
    else:
        known = ", ".join(BACKBONES.names())
        raise ConfigError(
            f"Unknown backbone {name_or_path!r}: it is neither a registered name ({known}) nor an existing folder."
        )
    _INSTANCES[name_or_path] = bb
    return bb
