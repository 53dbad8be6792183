"""``gradual_unfreeze``: ULMFiT-style stages (Howard & Ruder 2018).

Stage 0 trains the head only; each later stage unfreezes one more layer group from the top (the top
block, then the next, ..., finally the embeddings), with discriminative learning rates: group g
(0 = top) at ``lr * layer_lr_decay**g``. Each stage is a fresh run of the trainer (its own optimizer,
warm-up and schedule, ``epochs_per_stage`` epochs, early stopping and best-weights restore inside
the stage). After each stage the best validation score is compared with the best so far: the best
state is kept, and the stages stop as soon as one makes validation worse.

With a ``trainer_factory`` each stage checkpoints into ``<work_dir>/stage-<s>``; a resumed trial
re-runs the finished stages (same seed, same result) and resumes the interrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field

from ..data.dataset import LabeledData
from .base import STRATEGIES, FitContext, FitOutcome, Strategy, effective_lr
from .neural import (
    EncoderClassifier,
    NeuralPredictor,
    count_params,
    param_groups,
    set_trainable_groups,
    training_sets,
)
from .overrides import TrainOverrides, enabled_knobs, train_config_for, trainer_for

__all__ = ["GradualParams", "GradualUnfreeze"]


class GradualParams(TrainOverrides):
    lr: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(default=None, description="this strategy's own rate; default: train.lr")
    epochs_per_stage: Annotated[int, Field(ge=1, le=100)] = 1
    max_stages: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="stop after this many stages (stage 0 is the head alone); default: until all is unfrozen"
    )
    layer_lr_decay: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    min_delta: Annotated[float, Field(ge=0.0)] = Field(default=0.0, description="gain a stage needs to become the best")


@STRATEGIES.register("gradual_unfreeze")
class GradualUnfreeze(Strategy):
    name = "gradual_unfreeze"
    Params = GradualParams
    lr_multiplier = 1.0  # the top group's rate; lower groups decay from it (layer_lr_decay)

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        p, bb = self.params, ctx.backbone
        cfg = train_config_for(ctx.train, p)
        rate = effective_lr(self, cfg, bb.card.num_layers)
        lr = rate.value
        metric = cfg.early_stopping.metric if cfg.early_stopping else "macro_f1"
        sign = -1.0 if metric in ("loss", "log_loss") else 1.0
        torch.manual_seed(ctx.seed)
        model = EncoderClassifier(bb, bb.load_encoder(pretrained=True), train.n_classes, cfg.dropout)
        groups = [g for g in model.layer_groups() if g.name != "pooler"]  # bottom to top
        n_stages = min(len(groups) + 1, p.max_stages or len(groups) + 1)

        history: list[dict[str, Any]] = []
        stages: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        steps_before, stop_reason = 0, f"all {n_stages} stages ran"
        for s in range(n_stages):
            chosen = set_trainable_groups(model, groups[len(groups) - s :] if s else [])
            opt_groups = param_groups(model, lr, cfg.weight_decay, cfg.head_lr or lr, p.layer_lr_decay)
            train_set, val_set, cache_info = training_sets(model, train, val, cfg)
            result = self._stage_trainer(ctx, cfg, s).fit(model, opt_groups, train_set, val_set,
                                                           name=f"{self.name} stage {s}", epochs=p.epochs_per_stage)
            score = sign * result.best_metric if result.best_metric is not None else float("-inf")
            history += [{**rec, "stage": s, "stage_step": rec["step"], "step": rec["step"] + steps_before}
                        for rec in result.history]
            steps_before += result.steps
            trainable = count_params(model)[0]
            stages.append({"stage": s, "unfrozen": [g.name for g in chosen], f"val_{metric}": result.best_metric,
                           "steps": result.steps, "trainable_params": trainable,
                           "lrs": {g["name"]: g["lr"] for g in opt_groups}, **cache_info})
            if best is None or score > best["score"] + p.min_delta:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = {"score": score, "stage": s, "state": state, "trainable": trainable}
            elif score < best["score"]:
                stop_reason = f"stage {s} made val_{metric} worse than stage {best['stage']}"
                break

        model.load_state_dict(best["state"])
        model.eval()
        info = {"stages": stages, "best_stage": best["stage"], "stop_reason": stop_reason, "lr": lr, "lr_source": rate.source,
                "layer_lr_decay": p.layer_lr_decay, "selection_metric": metric, "loss": cfg.loss.model_dump(),
                "knobs": enabled_knobs(cfg, p)}
        pred = NeuralPredictor(model, train.label_names, cfg.max_length, cfg.dropout)
        return FitOutcome(pred, history=history, trainable_params=best["trainable"], total_params=count_params(model)[1],
                          info=info)

    @staticmethod
    def _stage_trainer(ctx: FitContext, cfg, stage: int):
        """A trainer per stage: its own checkpoint folder when the trial has one."""
        work_dir = Path(ctx.work_dir) / f"stage-{stage}" if ctx.work_dir is not None else None
        return trainer_for(ctx, cfg, work_dir=work_dir)
