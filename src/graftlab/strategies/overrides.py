"""Per-strategy training overrides, the "knobs" a strategy has enabled, and the variants that ablate them.

A study can set a loss, augmentation (text or image) or sampler for one strategy only:
``{finetune: {trainable_layers: 2, loss: focal, label: finetune-2-focal}}``. The strategy merges
these into the study's ``train`` settings (:func:`train_config_for`) and asks for a trainer with them
(:func:`trainer_for`). :func:`enabled_knobs` says which settings differ from the default recipe and
:func:`ablation_variants` gives, for each, the same strategy with that one knob turned back to default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.config import AugmentConfig, ImageAugmentConfig, LossConfig, TrainConfig
from ..core.errors import ConfigError
from .base import FitContext, StrategyParams, TrainerLike

__all__ = ["KNOBS", "TrainOverrides", "ablation_variants", "enabled_knobs", "train_config_for", "trainer_for"]

#: knob name -> what turning it off means (for reports)
KNOBS = {
    "focal": "cross-entropy instead of focal loss",
    "label_smoothing": "no label smoothing",
    "class_weights": "no class weights",
    "augment": "no text augmentation",
    "image_augment": "no image augmentation",
    "balanced_sampler": "length-bucketed batches instead of class-balanced ones",
    "layer_lr_decay": "the strategy's default layer-wise learning-rate decay",
}
_OVERRIDES = ("loss", "augment", "image_augment", "balanced_sampler", "cache_frozen")


class TrainOverrides(StrategyParams):
    """Training settings a strategy may set for itself; None keeps the study's ``train`` value."""

    loss: LossConfig | None = None
    augment: AugmentConfig | None = None
    image_augment: ImageAugmentConfig | None = None
    balanced_sampler: bool | None = None
    cache_frozen: bool | None = None


def train_config_for(cfg: TrainConfig, params: StrategyParams) -> TrainConfig:
    """The study's training settings with this strategy's overrides applied."""
    update = {k: getattr(params, k) for k in _OVERRIDES if getattr(params, k, None) is not None}
    return cfg.model_copy(update=update) if update else cfg


def trainer_for(ctx: FitContext, cfg: TrainConfig, work_dir: Path | None = None) -> TrainerLike:
    """A trainer for ``cfg``: the context's own when nothing changed, else one from its factory."""
    if cfg == ctx.train and work_dir is None and ctx.trainer is not None:
        return ctx.trainer
    if ctx.trainer_factory is not None:
        return ctx.trainer_factory(work_dir=work_dir or ctx.work_dir, train_cfg=cfg)
    with_config = getattr(ctx.trainer, "with_config", None)
    if with_config is None:
        raise ConfigError(
            "This strategy needs a trainer for its own training settings, but the fit context has neither a "
            "'trainer_factory' nor a trainer with 'with_config'. Pass FitContext(trainer_factory=...)."
        )
    return with_config(cfg, work_dir=work_dir)


def enabled_knobs(cfg: TrainConfig, params: StrategyParams) -> dict[str, Any]:
    """Settings that differ from the default recipe (plain cross-entropy, no augmentation, bucketed batches,
    the strategy's default ``layer_lr_decay``), with their values: what an ablation removes one at a time."""
    knobs: dict[str, Any] = {}
    loss = cfg.loss
    if loss.kind == "focal":
        knobs["focal"] = {"gamma": loss.gamma, "alpha": loss.alpha}
    if loss.label_smoothing > 0:
        knobs["label_smoothing"] = loss.label_smoothing
    if loss.class_weights is not None:
        knobs["class_weights"] = loss.class_weights
    if cfg.augmenting:
        knobs["augment"] = cfg.augment.model_dump()
    if cfg.augmenting_images:
        knobs["image_augment"] = cfg.image_augment.model_dump()
    if cfg.balanced_sampler:
        knobs["balanced_sampler"] = True
    field = type(params).model_fields.get("layer_lr_decay")
    if field is not None and params.layer_lr_decay != field.default:
        knobs["layer_lr_decay"] = params.layer_lr_decay
    return knobs


def ablation_variants(strategy: str, params: dict[str, Any], train: TrainConfig) -> dict[str, dict[str, Any]]:
    """For each enabled knob, the strategy's parameters with only that knob back at its default.

    Args:
        strategy: a registered strategy name.
        params: its parameters as written in the study (a ``label`` is not a parameter).
        train: the study's training settings (knobs set there count too).

    Returns:
        knob -> parameters to run as ``{strategy: {**variant, label: ...}}``; compare each with the
        original strategy on the same seeds (paired) to measure what the knob adds.
    """
    from .base import make_strategy

    s = make_strategy(strategy, params)
    cfg = train_config_for(train, s.params)
    variants: dict[str, dict[str, Any]] = {}
    for knob in enabled_knobs(cfg, s.params):
        p = dict(params)
        if knob in ("focal", "label_smoothing", "class_weights"):
            off = {"focal": {"kind": "ce"}, "label_smoothing": {"label_smoothing": 0.0}, "class_weights": {"class_weights": None}}
            p["loss"] = {**cfg.loss.model_dump(), **off[knob]}
        elif knob in ("augment", "image_augment"):
            p[knob] = False
        elif knob == "balanced_sampler":
            p["balanced_sampler"] = False
        elif knob == "layer_lr_decay":
            p["layer_lr_decay"] = type(s.params).model_fields["layer_lr_decay"].default
        make_strategy(strategy, p)  # validated here, not in the middle of a study
        variants[knob] = p
    return variants
