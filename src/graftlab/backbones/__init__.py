"""Pretrained backbones. Each family is one module that registers itself in :data:`BACKBONES`."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import ConfigError
from . import minilm  # noqa: F401  (registers minilm-l6)
from . import mpnet  # noqa: F401  (registers mpnet-base)
from . import efficientnet  # noqa: F401  (registers efficientnet-lite0)
from . import hub  # noqa: F401  (registers the hf: references)
from .base import BACKBONES, REBUILDERS, REFERENCE_SCHEMES, Backbone, BackboneCard, EncodedSet, LayerGroup
from .hf_text import HFTextBackbone
from .image import ImageBackbone
from .small_cnn import CNN_SPEC_FILE, SmallCNNBackbone

__all__ = ["BACKBONES", "REBUILDERS", "REFERENCE_SCHEMES", "Backbone", "BackboneCard", "EncodedSet", "LayerGroup",
           "HFTextBackbone", "ImageBackbone", "SmallCNNBackbone", "get_backbone"]

_INSTANCES: dict[str, Backbone] = {}


def get_backbone(name_or_path: str) -> Backbone:
    """A registered backbone by name, a reference of a registered scheme (``hf:org/name``: a Hugging Face Hub id in the
    local cache), or any local Hugging Face or small-CNN folder by path (one instance per process).

    An image backbone takes its input size after ``@``: ``efficientnet-lite0@112`` (default: the card's size).
    """
    if name_or_path in _INSTANCES:
        return _INSTANCES[name_or_path]
    base, _, size = name_or_path.rpartition("@") if "@" in name_or_path else (name_or_path, "", "")
    scheme, colon, rest = name_or_path.partition(":")
    if colon and scheme in REFERENCE_SCHEMES:
        bb = REFERENCE_SCHEMES.get(scheme)(rest)
    elif name_or_path in BACKBONES:
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
            f"Unknown backbone {name_or_path!r}: it is neither a registered name ({known}), a Hugging Face Hub id in the "
            "local cache ('hf:org/name') nor an existing folder."
        )
    _INSTANCES[name_or_path] = bb
    return bb
