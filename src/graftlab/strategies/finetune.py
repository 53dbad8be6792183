"""``finetune`` (top k blocks + head), ``full`` (everything) and ``scratch`` (same architecture, random
initialisation: the yardstick that shows what pretraining bought).

Learning rates (:func:`~graftlab.strategies.base.effective_lr`): ``full`` trains at ``train.lr``, ``scratch`` at
2 x ``train.lr`` and ``finetune`` at ``train.lr`` x blocks / trainable blocks (:func:`partial_lr`); an ``lr`` in a
strategy's parameters replaces the product."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from pydantic import Field

from ..core.errors import ConfigError
from ..data.dataset import LabeledData
from .base import STRATEGIES, FitContext, FitOutcome, LearningRate, Strategy, effective_lr, format_rate
from .neural import (
    EncoderClassifier,
    NeuralPredictor,
    cached_logits,
    count_params,
    freeze_all_but_top,
    param_groups,
    training_sets,
)
from .overrides import TrainOverrides, enabled_knobs, train_config_for, trainer_for

__all__ = ["Finetune", "Full", "Scratch", "FinetuneParams", "partial_lr", "train_classifier"]

Rate = Annotated[float, Field(gt=0.0, lt=1.0)]


class FullParams(TrainOverrides):
    lr: Rate | None = Field(default=None, description="this strategy's own rate; default: train.lr x its multiplier")
    epochs: Annotated[int, Field(ge=1, le=1000)] | None = None
    layer_lr_decay: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0


class FinetuneParams(FullParams):
    lr: Rate | None = Field(default=None, description="default: train.lr x blocks / trainable_layers (partial_lr)")
    trainable_layers: Annotated[int, Field(ge=0, le=128)] = 2


def partial_lr(base: float, trainable_layers: int | None, n_blocks: int) -> float:
    """The learning rate for training the top ``trainable_layers`` of ``n_blocks`` blocks when none is given:
    ``base`` (the rate for the whole encoder) times ``n_blocks / trainable_layers`` (at least one block).

    With fewer blocks moving, the rate that suits full fine-tuning moves them too little. The rule was checked only
    on the top 2 of MiniLM-L6's 6 blocks (``bench/partial_vs_full.py``; docs/benchmarks.md#partial-fine-tuning,
    B23-B24). Full fine-tuning (every block) keeps ``base``, and so does the head alone (``trainable_layers: 0``,
    not measured); a 12-block backbone's top 2 get 6x.
    """
    if not trainable_layers or trainable_layers >= n_blocks:  # the head alone was not measured: it keeps base too
        return base
    return base * n_blocks / trainable_layers


def train_classifier(
    train: LabeledData,
    val: LabeledData,
    ctx: FitContext,
    *,
    pretrained: bool,
    trainable_layers: int | None,
    params: FullParams,
    name: str,
    lr: LearningRate,
) -> FitOutcome:
    """Build an EncoderClassifier, freeze as asked, train it with the injected trainer at ``lr``.

    The frozen prefix (blocks below the lowest trainable one) is computed once and cached when the
    training settings allow it (see :func:`~graftlab.strategies.neural.training_sets`).
    """
    bb = ctx.backbone
    cfg = train_config_for(ctx.train, params)
    n_blocks = bb.card.num_layers
    if trainable_layers and trainable_layers > n_blocks:
        raise ConfigError(
            f"The 'trainable_layers' parameter of {name} must be at most {n_blocks} for backbone "
            f"{bb.name!r} ({n_blocks} blocks). Got {trainable_layers} instead."
        )
    torch.manual_seed(ctx.seed)  # head initialisation and dropout depend on the trial's seed
    model = EncoderClassifier(bb, bb.load_encoder(pretrained=pretrained), train.n_classes, cfg.dropout)
    freeze_all_but_top(model, trainable_layers)
    groups = param_groups(model, lr.value, cfg.weight_decay, cfg.head_lr or lr.value, params.layer_lr_decay)
    train_set, val_set, cache_info = training_sets(model, train, val, cfg)
    result = trainer_for(ctx, cfg).fit(model, groups, train_set, val_set, name=name, epochs=params.epochs)
    trainable, total = count_params(model)
    info: dict[str, Any] = {"best_step": result.best_step, "stopped_early": result.stopped_early,
                            "stop_reason": result.stop_reason, "lr": lr.value, "lr_source": lr.source,
                            "layer_lr_decay": params.layer_lr_decay,
                            "loss": cfg.loss.model_dump(), "knobs": enabled_knobs(cfg, params), **cache_info}
    pred = NeuralPredictor(model, train.label_names, cfg.max_length, cfg.dropout)
    return FitOutcome(pred, history=result.history, trainable_params=trainable, total_params=total, info=info,
                      logits_for=cached_logits(pred, cfg, cache_info))


def _lr(strategy: Strategy, ctx: FitContext) -> LearningRate:
    return effective_lr(strategy, ctx.train, ctx.backbone.card.num_layers)


@STRATEGIES.register("finetune")
class Finetune(Strategy):
    name = "finetune"
    Params = FinetuneParams
    lr_multiplier = 1.0  # times blocks / trainable blocks: see lr_from_base

    def lr_from_base(self, base: float, n_blocks: int | None) -> tuple[float, str]:
        """:func:`partial_lr`: the top ``trainable_layers`` of ``n_blocks`` blocks train at ``base`` x
        ``n_blocks / trainable_layers``; every block (or the head alone) at ``base``."""
        if n_blocks is None:
            raise ConfigError("finetune's learning rate depends on the backbone's number of blocks; pass n_blocks.")
        k = self.params.trainable_layers
        rate = partial_lr(base, k, n_blocks)
        if rate == base:
            return rate, "train.lr"
        return rate, f"train.lr {format_rate(base)} × {n_blocks} blocks / {k} trainable (partial fine-tuning's rule)"

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        return train_classifier(train, val, ctx, pretrained=True, trainable_layers=self.params.trainable_layers,
                                params=self.params, name=f"finetune-{self.params.trainable_layers}", lr=_lr(self, ctx))


@STRATEGIES.register("full")
class Full(Strategy):
    name = "full"
    Params = FullParams
    lr_multiplier = 1.0

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        return train_classifier(train, val, ctx, pretrained=True, trainable_layers=None, params=self.params, name="full",
                                lr=_lr(self, ctx))


@STRATEGIES.register("scratch")
class Scratch(Strategy):
    name = "scratch"
    kind = "baseline"
    Params = FullParams
    lr_multiplier = 2.0  # random weights need a larger step than fine-tuning: 1e-4 at the default train.lr

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        return train_classifier(train, val, ctx, pretrained=False, trainable_layers=None, params=self.params, name="scratch",
                                lr=_lr(self, ctx))
