"""``lora`` and ``ia3``: parameter-efficient adapters through peft, merged into a plain model for serving.

peft is applied to the encoder only. Our classifier head is :attr:`EncoderClassifier.head`, outside
the peft model, so it trains as an ordinary parameter and is saved beside the adapter: this avoids
the well-known pitfall of a head missing from peft's ``modules_to_save`` (trained, then silently
dropped on save). After training:

* the adapter (``adapter_model.safetensors`` + ``adapter_config.json``) and the head
  (``head.safetensors`` + ``adapter.json``) are written to ``<work_dir>/adapter`` when the context
  has a work folder; :func:`load_adapter` rebuilds the unmerged model from them and the pretrained backbone;
* the adapter is merged into the encoder (``merge_and_unload``) and the predictor is a plain
  :class:`~graftlab.strategies.neural.NeuralPredictor`, so serving needs no peft.

Adapters need a larger step than fine-tuning: ``lora`` trains at 10 x ``train.lr`` and ``ia3`` at 60 x (5e-4 and 3e-3
at the default 5e-5), unless their parameters set ``lr`` (:func:`~graftlab.strategies.base.effective_lr`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from ..backbones.hf_text import find_blocks
from ..core.artifacts import load_json, save_json
from ..core.errors import ArtifactError, ConfigError
from ..data.dataset import LabeledData
from .base import STRATEGIES, FitContext, FitOutcome, Strategy, effective_lr
from .neural import (
    EncoderClassifier,
    NeuralPredictor,
    count_params,
    param_groups,
    training_sets,
)
from .overrides import TrainOverrides, enabled_knobs, train_config_for, trainer_for

__all__ = ["IA3", "IA3Params", "Lora", "LoraParams", "auto_target_modules", "load_adapter", "save_adapter"]

Rate = Annotated[float, Field(gt=0.0, lt=1.0)]
Targets = list[Annotated[str, Field(min_length=1)]] | Literal["auto"]

# (query-like, value-like) and (key-like, value-like) leaf names across BERT, DistilBERT, MPNet, LLaMA-style models
_QV = (("query", "value"), ("q_lin", "v_lin"), ("q_proj", "v_proj"), ("q", "v"))
_KV = (("key", "value"), ("k_lin", "v_lin"), ("k_proj", "v_proj"), ("k", "v"))


class PeftParams(TrainOverrides):
    lr: Rate | None = Field(default=None, description="this strategy's own rate; default: train.lr x its multiplier")
    epochs: Annotated[int, Field(ge=1, le=1000)] | None = None
    layer_lr_decay: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    target_modules: Targets = Field(
        default="auto", description="'auto' detects the attention projections by name; or module names (suffixes) for peft"
    )


class LoraParams(PeftParams):
    r: Annotated[int, Field(ge=1, le=1024)] = 8
    alpha: Annotated[float, Field(gt=0.0)] = 16.0
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1


class IA3Params(PeftParams):
    feedforward_modules: list[str] | None = Field(
        default=None, description="targets whose input (not output) is scaled; auto with target_modules='auto'"
    )


def _linear_names(encoder: nn.Module) -> dict[str, nn.Linear]:
    """Full names (relative to ``encoder``) of the Linear layers inside its transformer blocks."""
    names = {id(m): n for n, m in encoder.named_modules()}
    out: dict[str, nn.Linear] = {}
    for block in find_blocks(encoder):
        for name, module in block.named_modules():
            if isinstance(module, nn.Linear):
                out[f"{names[id(block)]}.{name}"] = module
    return out


def auto_target_modules(encoder: nn.Module, method: str) -> tuple[list[str], list[str]]:
    """(target_modules, feedforward_modules) detected from the encoder's Linear layers by name.

    LoRA: the attention query and value projections (as in the LoRA paper). IA3: keys, values and the
    feed-forward down-projection (the Linear whose input is wider than the hidden size), whose input
    is scaled. Full module names are returned so that, e.g., BERT's attention output is not matched.
    """
    linears = _linear_names(encoder)
    leaves = {n.rsplit(".", 1)[-1] for n in linears}
    pairs = _QV if method == "lora" else _KV
    pair = next((p for p in pairs if set(p) <= leaves), None)
    if pair is None:
        raise ConfigError(
            f"Cannot find the attention projections of {type(encoder).__name__} for {method}: its block layers are "
            f"{sorted(leaves)}. Set the 'target_modules' parameter to a list of their names."
        )
    targets = sorted(n for n in linears if n.rsplit(".", 1)[-1] in pair)
    if method == "lora":
        return targets, []
    hidden = int(getattr(getattr(encoder, "config", None), "hidden_size", 0)) or max(m.out_features for m in linears.values())
    feedforward = sorted(n for n, m in linears.items() if m.in_features > hidden and m.out_features == hidden)
    return targets + feedforward, feedforward


def _peft_config(method: str, params: PeftParams, encoder: nn.Module, backbone=None):
    from peft import IA3Config, LoraConfig

    if params.target_modules == "auto":
        # a backbone may name its own targets (image backbones: convolutions); else attention projections
        own = getattr(backbone, "adapter_targets", None)
        targets, feedforward = own(encoder, method) if own is not None else auto_target_modules(encoder, method)
    else:
        targets = params.target_modules
        feedforward = getattr(params, "feedforward_modules", None) or []
    if method == "lora":
        return LoraConfig(r=params.r, lora_alpha=params.alpha, lora_dropout=params.dropout, target_modules=targets, bias="none")
    return IA3Config(target_modules=targets, feedforward_modules=feedforward)


def _wrap(encoder: nn.Module, config) -> nn.Module:
    from peft import get_peft_model

    with warnings.catch_warnings():  # peft calls a transformers method deprecated in 5.x
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(encoder, config)


def save_adapter(model: EncoderClassifier, folder: str | Path, meta: dict[str, Any]) -> Path:
    """Write the (unmerged) adapter, the head and a JSON record of how to rebuild them."""
    from safetensors.torch import save_file

    folder = Path(folder)
    model.encoder.save_pretrained(str(folder), safe_serialization=True)
    (folder / "README.md").unlink(missing_ok=True)  # peft's model-card stub: not an artifact of ours
    save_file({k: v.detach().contiguous() for k, v in model.head.state_dict().items()}, str(folder / "head.safetensors"))
    save_json({**meta, "n_classes": model.head.out_features}, folder / "adapter.json")
    return folder


def load_adapter(folder: str | Path, backbone) -> EncoderClassifier:
    """The unmerged adapter model saved by :func:`save_adapter`, on ``backbone``'s pretrained weights."""
    from peft import PeftModel
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "adapter.json").is_file() or not (folder / "adapter_model.safetensors").is_file():
        raise ArtifactError(f"{folder} holds no saved adapter (adapter.json and adapter_model.safetensors).")
    meta = load_json(folder / "adapter.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        encoder = PeftModel.from_pretrained(backbone.load_encoder(pretrained=True), str(folder))
    model = EncoderClassifier(backbone, encoder, meta["n_classes"], meta.get("dropout", 0.0))
    model.head.load_state_dict(load_file(str(folder / "head.safetensors")))
    return model.eval()


class _PeftStrategy(Strategy):
    method: ClassVar[str]
    Params = PeftParams

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        p, bb = self.params, ctx.backbone
        cfg = train_config_for(ctx.train, p)
        torch.manual_seed(ctx.seed)  # head and adapter initialisation depend on the trial's seed
        model = EncoderClassifier(bb, bb.load_encoder(pretrained=True), train.n_classes, cfg.dropout)
        config = _peft_config(self.method, p, model.encoder, bb)
        model.encoder = _wrap(model.encoder, config)  # base weights frozen by peft, adapters trainable
        model.frozen = []  # the base model runs in train mode (dropout), as in ordinary fine-tuning
        lr = effective_lr(self, cfg, bb.card.num_layers)
        groups = param_groups(model, lr.value, cfg.weight_decay, cfg.head_lr or lr.value, p.layer_lr_decay)
        train_set, val_set, cache_info = training_sets(model, train, val, cfg)
        result = trainer_for(ctx, cfg).fit(model, groups, train_set, val_set, name=self.name, epochs=p.epochs)
        trainable, total = count_params(model)
        info: dict[str, Any] = {
            "best_step": result.best_step, "stopped_early": result.stopped_early, "stop_reason": result.stop_reason,
            "lr": lr.value, "lr_source": lr.source, "layer_lr_decay": p.layer_lr_decay, "target_modules": sorted({str(t).rsplit(".", 1)[-1] for t in config.target_modules}),
            "n_target_modules": len(config.target_modules),
            "adapter_params": trainable - sum(t.numel() for t in model.head.parameters()),
            "loss": cfg.loss.model_dump(), "knobs": enabled_knobs(cfg, p), **cache_info,
        }
        if ctx.work_dir is not None:
            meta = {"method": self.method, "params": p.model_dump(mode="json"), "dropout": cfg.dropout}
            info["adapter_dir"] = str(save_adapter(model, Path(ctx.work_dir) / "adapter", meta))
        model.encoder = model.encoder.merge_and_unload()  # a plain encoder: serving needs no peft
        model.eval()
        pred = NeuralPredictor(model, train.label_names, cfg.max_length, cfg.dropout)
        return FitOutcome(pred, history=result.history, trainable_params=trainable, total_params=total, info=info)


@STRATEGIES.register("lora")
class Lora(_PeftStrategy):
    """Low-rank adapters on the attention projections (Hu et al. 2021), merged after training."""

    name = "lora"
    method = "lora"
    Params = LoraParams
    lr_multiplier = 10.0


@STRATEGIES.register("ia3")
class IA3(_PeftStrategy):
    """Learned rescaling of keys, values and feed-forward activations (Liu et al. 2022), merged after training."""

    name = "ia3"
    method = "ia3"
    Params = IA3Params
    lr_multiplier = 60.0
