"""Encoder + pooling + linear head, its predictor, and the freezing / learning-rate helpers that the
neural strategies share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones.base import REBUILDERS, Backbone, EncodedSet, LayerGroup, batched_outputs
from .base import PREDICTORS, Predictor

__all__ = [
    "EncoderClassifier",
    "NeuralPredictor",
    "freeze_all_but_top",
    "set_trainable_groups",
    "param_groups",
    "count_params",
    "frozen_boundary",
    "training_sets",
    "cached_logits",
]


class EncoderClassifier(nn.Module):
    """logits = head(dropout(pool(encoder(inputs)))), the pooled features L2-normalised first when ``normalize``
    (a logistic head fitted on unit-length embeddings). Frozen sub-modules stay in eval mode while training
    (no dropout noise in a frozen prefix; BatchNorm statistics of frozen groups never change)."""

    def __init__(self, backbone: Backbone, encoder: nn.Module, n_classes: int, dropout: float = 0.1,
                 normalize: bool = False) -> None:
        super().__init__()
        self.backbone = backbone  # not a Module: supplies pooling and preprocessing
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.hidden_size, n_classes)
        self.normalize = normalize
        self.frozen: list[nn.Module] = []

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "start_block" in batch:  # cached frozen prefix: only the blocks above it run
            return self.backbone.pooled_from(self.encoder, batch)  # (batch, hidden)
        return self.backbone.pooled(self.encoder, batch)  # (batch, hidden)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head_of(self.features(batch))  # (batch, n_classes)

    def head_of(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, hidden) pooled features -> (batch, n_classes) logits."""
        if self.normalize:
            features = nn.functional.normalize(features, dim=-1)
        return self.head(self.dropout(features))

    def train(self, mode: bool = True) -> EncoderClassifier:
        super().train(mode)
        for m in self.frozen:
            m.eval()
        return self

    def layer_groups(self) -> list[LayerGroup]:
        return self.backbone.layer_groups(self.encoder)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(trainable), int(total)


def freeze_all_but_top(model: EncoderClassifier, trainable_layers: int | None) -> list[LayerGroup]:
    """Freeze the encoder except its top ``trainable_layers`` blocks (None: everything trains).

    The head always trains. The pooler group (unused by mean/CLS-hidden pooling) stays frozen.
    Returns the trainable groups, bottom to top.
    """
    groups = [g for g in model.layer_groups() if g.name != "pooler"]
    if trainable_layers is None:
        chosen = groups
    else:
        blocks = [g for g in groups if g.name.startswith("block")]
        chosen = blocks[len(blocks) - trainable_layers :] if trainable_layers > 0 else []
    return set_trainable_groups(model, chosen)


def set_trainable_groups(model: EncoderClassifier, chosen: list[LayerGroup]) -> list[LayerGroup]:
    """Train exactly the ``chosen`` encoder groups (and the head); every other group is frozen and kept
    in eval mode. Returns ``chosen``."""
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    for g in chosen:
        for p in g.parameters():
            p.requires_grad_(True)
    chosen_ids = {id(m) for g in chosen for m in g.modules}
    model.frozen = [m for g in model.layer_groups() for m in g.modules if id(m) not in chosen_ids]
    return chosen


def _no_decay(name: str) -> bool:
    # IA3 vectors scale activations around 1: decaying them towards 0 would switch the layer off
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name or ".norm" in name or ".ia3_" in name


def frozen_boundary(model: EncoderClassifier) -> int:
    """Index of the lowest block with a trainable parameter (number of blocks if none trains; 0 when
    the embeddings train): everything below it is a frozen prefix that can be computed once."""
    groups = [g for g in model.layer_groups() if g.name != "pooler"]
    blocks = [g for g in groups if g.name.startswith("block")]
    if any(p.requires_grad for g in groups if not g.name.startswith("block") for p in g.parameters()):
        return 0
    for i, g in enumerate(blocks):
        if any(p.requires_grad for p in g.parameters()):
            return i
    return len(blocks)


def cached_logits(predictor: NeuralPredictor, cfg, cache_info: dict[str, Any]):
    """``FitOutcome.logits_for`` of a model trained on a cached frozen prefix: inputs go through the same cache
    (val is there already; test is computed once and then shared by every seed), then only the blocks above it.
    None when training did not use the cache."""
    from ..backbones import prefix_cache

    info = cache_info.get("prefix_cache", {})
    if not info.get("used"):
        return None
    model, bb = predictor.model, predictor.backbone

    def logits_for(inputs: Sequence) -> np.ndarray:
        data = bb.encode(inputs, max_length=cfg.max_length)
        if prefix_cache.states_bytes(bb, model.encoder, data, info["start_block"]) > prefix_cache.MEMORY_BYTES // 4:
            return predictor.logits_of_set(data, cfg.eval_batch_size)  # a large test file: batch by batch, nothing kept
        states = prefix_cache.cached_prefix(bb, model.encoder, data, info["start_block"], cfg.max_length, cfg.eval_batch_size)
        return predictor.logits_of_set(states, cfg.eval_batch_size)

    return logits_for


def training_sets(model: EncoderClassifier, train, val, cfg) -> tuple[Any, Any, dict[str, Any]]:
    """Encoded train and val sets for ``model``: hidden states at the freeze boundary when the prefix
    cache applies (``cfg.cache_frozen``, no augmentation, at least one frozen block, a supported encoder),
    token ids otherwise. Returns (train set, val set, info about the cache for the outcome)."""
    from ..backbones.prefix_cache import STATS, cached_prefix, memory_budget, states_bytes, supports_prefix

    bb = model.backbone
    train_set = bb.encode(train.inputs, train.labels, max_length=cfg.max_length)
    val_set = bb.encode(val.inputs, val.labels, max_length=cfg.max_length)
    boundary = frozen_boundary(model)
    reason = None
    if not cfg.cache_frozen:
        reason = "cache_frozen is off"
    elif cfg.augmenting or cfg.augmenting_images:
        reason = "augmentation changes the inputs every epoch"
    elif boundary < 1:
        reason = "no frozen block"
    elif not supports_prefix(bb, model.encoder):
        reason = f"{type(model.encoder).__name__} is not supported by the prefix cache"
    else:
        need = states_bytes(bb, model.encoder, train_set, boundary) + states_bytes(bb, model.encoder, val_set, boundary)
        if need > memory_budget():
            reason = (f"the states at the freeze boundary would take {need / 2**30:.1f} GiB, more than "
                      f"{memory_budget() / 2**30:.1f} GiB (a quarter of this machine's memory)")
    if reason is not None:
        return train_set, val_set, {"prefix_cache": {"used": False, "reason": reason}}
    seconds = STATS["seconds"]
    train_set = cached_prefix(bb, model.encoder, train_set, boundary, cfg.max_length, cfg.eval_batch_size)
    val_set = cached_prefix(bb, model.encoder, val_set, boundary, cfg.max_length, cfg.eval_batch_size)
    info = {"used": True, "start_block": boundary, "compute_seconds": round(STATS["seconds"] - seconds, 3)}
    return train_set, val_set, {"prefix_cache": info}


def param_groups(
    model: EncoderClassifier,
    lr: float,
    weight_decay: float,
    head_lr: float | None = None,
    layer_lr_decay: float = 1.0,
) -> list[dict[str, Any]]:
    """AdamW parameter groups: the head at ``head_lr``; encoder group g (0 = top) at lr * decay**g.

    Biases and norm weights get no weight decay. Only parameters with ``requires_grad`` are included.
    Each group carries a ``name`` so tests and reports can inspect it.
    """
    groups: list[dict[str, Any]] = []
    named = dict(model.named_parameters())
    id_to_name = {id(p): n for n, p in named.items()}

    def add(name: str, params: list[nn.Parameter], group_lr: float) -> None:
        params = [p for p in params if p.requires_grad]
        decay = [p for p in params if not _no_decay(id_to_name[id(p)])]
        nodecay = [p for p in params if _no_decay(id_to_name[id(p)])]
        if decay:
            groups.append({"name": name, "params": decay, "lr": group_lr, "weight_decay": weight_decay})
        if nodecay:
            groups.append({"name": f"{name}.no_decay", "params": nodecay, "lr": group_lr, "weight_decay": 0.0})

    add("head", list(model.head.parameters()), head_lr or lr)
    encoder_groups = [g for g in model.layer_groups() if g.name != "pooler"]
    for depth, g in enumerate(reversed(encoder_groups)):
        add(g.name, g.parameters(), lr * layer_lr_decay**depth)
    return groups


@PREDICTORS.register("encoder_classifier")
class NeuralPredictor(Predictor):
    """A trained :class:`EncoderClassifier` with its preprocessing."""

    kind = "encoder_classifier"

    def __init__(self, model: EncoderClassifier, label_names: Sequence[str], max_length: int | None, dropout: float = 0.1) -> None:
        super().__init__(label_names)
        self.model = model
        self.max_length = max_length
        self.dropout = dropout

    @property
    def backbone(self) -> Backbone:
        return self.model.backbone

    @property
    def modality(self) -> str | None:  # type: ignore[override]  (the backbone's)
        return getattr(self.backbone, "modality", None)

    def predict_logits(self, inputs: Sequence, batch_size: int = 64) -> np.ndarray:
        return self.logits_of_set(self.backbone.encode(inputs, max_length=self.max_length), batch_size)

    def logits_of_set(self, data: EncodedSet, batch_size: int = 64) -> np.ndarray:
        """Logits for an encoded set: token ids, or hidden states at a cached freeze boundary."""
        self.model.eval()
        return batched_outputs(data, self.model, batch_size, len(self.label_names))

    def model_view(self, inputs: Sequence) -> list | None:
        if self.modality != "text":
            return None  # images: every perturbation changes pixels; encoding them twice would only cost time
        return list(self.backbone.encode(inputs, max_length=self.max_length).items)

    def n_parameters(self) -> int:
        return count_params(self.model)[1]

    def save_files(self, folder: Path) -> dict[str, Any]:
        from safetensors.torch import save_model

        spec = self.backbone.export(folder / "backbone")
        save_model(self.model, str(folder / "model.safetensors"))
        return {"backbone": spec, "max_length": self.max_length, "dropout": self.dropout, "n_classes": len(self.label_names),
                "normalize": bool(self.model.normalize)}

    @classmethod
    def load_files(cls, folder: Path, spec: dict[str, Any]) -> NeuralPredictor:
        from safetensors.torch import load_model

        backbone = REBUILDERS.get(spec["backbone"]["kind"])(folder / "backbone", spec["backbone"])
        model = EncoderClassifier(backbone, backbone.load_encoder(pretrained=False), spec["n_classes"], spec["dropout"],
                                  normalize=bool(spec.get("normalize", False)))  # models saved before it: False
        load_model(model, str(folder / "model.safetensors"), strict=True)
        model.eval()
        return cls(model, [str(i) for i in range(spec["n_classes"])], spec["max_length"], spec["dropout"])
