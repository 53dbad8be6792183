"""What image backbones share: preprocessing from the card (size, mean, std) and a batchable image set.

An image backbone's encoder is an ``nn.Module`` mapping normalised pixels (batch, 3, size, size) to
pooled features (batch, hidden). Inputs are uint8 arrays as loaded by :mod:`graftlab.data.images`:
grayscale images are repeated over three channels, every image is resized (bilinear, antialiased)
to the backbone's square input size, scaled to [0, 1] and normalised with the card's mean and std.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError
from .base import Backbone, EncodedSet

__all__ = ["ImageBackbone", "ImageSet", "parse_image_size", "pixels_to_input", "to_pixels"]


def to_pixels(images: Sequence[Any], size: int) -> torch.Tensor:
    """uint8 images (h, w) or (h, w, 3), any sizes -> float pixels in [0, 1], (n, 3, size, size)."""
    if not len(images):
        return torch.zeros((0, 3, size, size))
    arrays = [np.asarray(x) for x in images]
    for a in arrays:
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
            raise ConfigError(
                f"An image backbone got an input of shape {a.shape}; it takes images as (height, width) or "
                "(height, width, 3) arrays. Is the data text? Then use a text backbone (e.g. minilm-l6)."
            )

    def prepare(batch: np.ndarray) -> torch.Tensor:
        return pixels_to_input(torch.from_numpy(np.ascontiguousarray(batch)).float(), size).contiguous()

    if len({a.shape for a in arrays}) == 1:  # the usual case: one shape, one interpolation call
        return prepare(np.stack(arrays))
    return torch.cat([prepare(a[None]) for a in arrays])


def pixels_to_input(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """Float pixel values in [0, 255], (n, h, w) or (n, h, w, 3) -> (n, 3, size, size) in [0, 1].

    Differentiable (explanations take gradients through it back to the original pixels).
    """
    x = pixels / 255.0
    x = x.unsqueeze(1).expand(-1, 3, -1, -1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # (n, 3, h, w)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


class ImageSet(EncodedSet):
    """Images (uint8 arrays) + labels; batches are resized and normalised when collated.

    Training augmentation works on :meth:`pixels` (values in [0, 1]) and hands the result to
    :meth:`to_batch`, so it never sees normalised values.
    """

    modality = "image"

    def __init__(self, items: list[Any], labels: np.ndarray | None, size: int, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        super().__init__(items, labels, np.ones(len(items), dtype=np.int64), self._collate_items)
        self.size = int(size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def pixels(self, index: Sequence[int]) -> torch.Tensor:
        """Resized images in [0, 1], (batch, 3, size, size)."""
        return to_pixels([self.items[i] for i in index], self.size)

    def to_batch(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalise pixels in [0, 1] into the backbone's input batch."""
        return {"pixel_values": (pixels - self.mean) / self.std}

    def _collate_items(self, items: list[Any]) -> dict[str, torch.Tensor]:
        return self.to_batch(to_pixels(items, self.size))


def parse_image_size(value: Any, default: int) -> int:
    """An image side in pixels (16..1024), validated with a message naming the parameter."""
    if value is None:
        return default
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = -1
    if not 16 <= size <= 1024 or (isinstance(value, float) and value != size):
        raise ConfigError(f"The 'image_size' parameter must be an integer in [16, 1024]. Got {value!r} instead.")
    return size


class ImageBackbone(Backbone):
    """Base for image backbones: preprocessing from ``image_size``, ``mean`` and ``std``; the encoder pools.

    Subclasses provide ``card``, ``hidden_size``, ``load_encoder``, ``layer_groups`` and ``export``.
    """

    modality = "image"
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def cache_tag(self) -> str:
        """Goes into embedding cache keys: the same weights at another size or normalisation give other features."""
        return f"image{self.image_size}:{tuple(self.mean)}:{tuple(self.std)}"

    def lengths(self, inputs: Sequence) -> np.ndarray:
        # images have no token length: one unit each, so the overlong check never fires
        return np.ones(len(inputs), dtype=np.int64)

    def encode(self, inputs: Sequence, labels: np.ndarray | None = None, max_length: int | None = None) -> ImageSet:
        return ImageSet(list(inputs), labels, self.image_size, self.mean, self.std)

    def pooled(self, encoder: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "pixel_values" not in batch:
            raise ConfigError(f"The image backbone {self.name!r} got a batch without pixel_values; "
                              "it cannot run on token or cached hidden-state inputs.")
        return encoder(batch["pixel_values"])  # (batch, hidden)

    # -- frozen-prefix cache (graftlab.backbones.prefix_cache) ------------------------------------------
    def feature_stages(self, encoder: nn.Module) -> tuple[Callable, list[Callable], Callable] | None:
        """``(stem, blocks, pool)`` with ``pool(blocks[-1](...blocks[0](stem(pixels))))`` equal to ``encoder(pixels)``,
        one callable per ``block*`` layer group; None when the encoder is not one this backbone can cut
        (a peft-wrapped encoder, say): then the prefix cache stays off."""
        return None

    def supports_prefix_cache(self, encoder: nn.Module) -> bool:
        """Whether :meth:`prefix_states` / :meth:`pooled_from` reproduce ``encoder``'s own forward."""
        return self.feature_stages(encoder) is not None

    def prefix_modules(self, encoder: nn.Module, stop: int) -> list[nn.Module]:
        """The modules that compute the states entering block group ``stop``: the stem and the groups below."""
        groups = self.layer_groups(encoder)
        blocks = [g for g in groups if g.name.startswith("block")]
        return [m for g in groups if not g.name.startswith("block") for m in g.modules] + [m for g in blocks[:stop] for m in g.modules]

    def prefix_states(self, encoder: nn.Module, batch: dict[str, torch.Tensor], stop: int) -> torch.Tensor:
        """Feature maps entering block group ``stop``: the stem, then groups ``[0, stop)``. (batch, channels, h, w)."""
        stem, blocks, _ = self._cut(encoder)
        x = stem(batch["pixel_values"])
        for run in blocks[:stop]:
            x = run(x)
        return x

    def pooled_from(self, encoder: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled features from cached feature maps: runs block groups ``[start_block, n)`` only. (batch, hidden)."""
        _, blocks, pool = self._cut(encoder)
        x = batch["feature_maps"]
        for run in blocks[int(batch["start_block"]) :]:
            x = run(x)
        return pool(x)

    def _cut(self, encoder: nn.Module) -> tuple[Callable, list[Callable], Callable]:
        stages = self.feature_stages(encoder)
        if stages is None:
            raise ConfigError(f"The image backbone {self.name!r} cannot run {type(encoder).__name__} from a frozen prefix.")
        return stages

    def preprocessing(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std),
                "resize": "bilinear, antialiased, to a square", "grayscale": "repeated over 3 channels"}
