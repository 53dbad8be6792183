"""A small plain CNN stored in a local folder (``cnn.json`` + ``model.safetensors``): any folder by path.

Used by the tests (a tiny random one from :func:`graftlab.testing.make_tiny_cnn` goes through every
strategy in seconds) and usable for a home-grown image model. Each stage is conv 3x3 (stride 2) ->
BatchNorm -> ReLU; the head is a 1x1 conv -> BatchNorm -> ReLU, average-pooled to ``hidden`` features.
Layer groups: ``stem``, ``block0`` .. ``block{n-1}`` (the stages) and the head as the top block.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.artifacts import load_json, save_json, sha256_file
from ..core.errors import AssetMissingError
from .base import REBUILDERS, BackboneCard, LayerGroup
from .image import ImageBackbone, parse_image_size

__all__ = ["SmallCNN", "SmallCNNBackbone", "CNN_SPEC_FILE", "save_small_cnn"]

CNN_SPEC_FILE = "cnn.json"


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class SmallCNN(nn.Module):
    """pixels (batch, 3, s, s) -> pooled features (batch, hidden)."""

    def __init__(self, channels: Sequence[int] = (8, 16, 32), hidden: int = 32) -> None:
        super().__init__()
        channels = list(channels)
        self.stem = _conv_bn(3, channels[0], 3, 2)
        self.blocks = nn.ModuleList(_conv_bn(a, b, 3, 2) for a, b in zip(channels[:-1], channels[1:], strict=True))
        self.head = _conv_bn(channels[-1], hidden, 1, 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.stem(pixel_values)
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))  # (batch, hidden, h, w) -> (batch, hidden)


def save_small_cnn(folder: str | Path, model: SmallCNN | None, spec: dict[str, Any]) -> Path:
    """Write ``cnn.json`` (architecture + preprocessing) and, when given, the weights as safetensors."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_json({"kind": "small_cnn", **spec}, folder / CNN_SPEC_FILE)
    if model is not None:
        save_model(model, str(folder / "model.safetensors"))
    return folder


class SmallCNNBackbone(ImageBackbone):
    """A :class:`SmallCNN` from a folder; ``pretrained`` weights are the folder's ``model.safetensors``."""

    def __init__(self, folder: str | Path, image_size: int | None = None) -> None:
        self.folder = Path(folder)
        if not (self.folder / CNN_SPEC_FILE).is_file():
            raise AssetMissingError(f"{self.folder} holds no {CNN_SPEC_FILE}: it is not a saved small CNN.")
        self.spec = load_json(self.folder / CNN_SPEC_FILE)
        self.image_size = parse_image_size(image_size, int(self.spec.get("image_size", 32)))
        self.mean = tuple(self.spec.get("mean", (0.5, 0.5, 0.5)))
        self.std = tuple(self.spec.get("std", (0.25, 0.25, 0.25)))
        self.name = self.spec.get("name") or self.folder.name

    @property
    def hidden_size(self) -> int:
        return int(self.spec["hidden"])

    def load_encoder(self, pretrained: bool = True) -> nn.Module:
        model = SmallCNN(self.spec["channels"], self.spec["hidden"])
        weights = self.folder / "model.safetensors"
        if pretrained:
            if not weights.is_file():
                raise AssetMissingError(f"{self.folder} holds no model.safetensors: the CNN has no pretrained weights.")
            from safetensors.torch import load_model

            load_model(model, str(weights), strict=True)
        return model

    def layer_groups(self, encoder: nn.Module) -> list[LayerGroup]:
        groups = [LayerGroup("stem", [encoder.stem])]
        groups += [LayerGroup(f"block{i}", [b]) for i, b in enumerate(encoder.blocks)]
        groups.append(LayerGroup(f"block{len(encoder.blocks)}", [encoder.head]))
        return groups

    def feature_stages(self, encoder: nn.Module):
        if not isinstance(encoder, SmallCNN):
            return None
        return encoder.stem, [*encoder.blocks, encoder.head], lambda x: x.mean(dim=(2, 3))

    def adapter_targets(self, encoder: nn.Module, method: str) -> tuple[list[str], list[str]]:
        """LoRA / IA3 targets: the stage convolutions."""
        names = [n for n, m in encoder.named_modules() if isinstance(m, nn.Conv2d) and n.startswith("blocks.")]
        return names, []

    @cached_property
    def card(self) -> BackboneCard:
        weights = self.folder / "model.safetensors"
        params = sum(p.numel() for p in SmallCNN(self.spec["channels"], self.spec["hidden"]).parameters())
        return BackboneCard(
            name=self.name, modality="image", architecture="SmallCNN", source_package=None, package_version=None,
            weights_sha256=sha256_file(weights) if weights.is_file() else None, license=self.spec.get("license", "unknown"),
            commercial_use=None, params=int(params), hidden_size=self.hidden_size, num_layers=len(self.spec["channels"]),
            max_length=self.image_size, path=str(self.folder), extra={"preprocessing": self.preprocessing()},
        )

    def export(self, folder) -> dict[str, Any]:
        spec = {k: v for k, v in self.spec.items() if k != "kind"}
        spec.update(image_size=self.image_size, mean=list(self.mean), std=list(self.std), name=self.name)
        save_small_cnn(folder, None, spec)
        return {"kind": "small_cnn", **spec}


@REBUILDERS.register("small_cnn")
def _rebuild(folder, spec: dict[str, Any]) -> SmallCNNBackbone:
    return SmallCNNBackbone(folder)
