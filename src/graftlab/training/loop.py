"""The one training loop: AdamW, warm-up then linear decay, clipping, periodic validation, callbacks,
and checkpoints that let a killed run resume to the same result.

Shaped like skorch: ``fit → run_epoch → train_step → batch_loss → compute_loss`` are small methods. By default it
classifies single examples; a strategy that trains for something else (contrastive: pairs of sentences) passes an
:class:`Objective` and keeps everything else: optimizer, schedule, clipping, callbacks, checkpoints and resume.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from ..backbones.base import batched_outputs
from ..core.config import TrainConfig
from ..core.errors import ConfigError
from ..core.progress import is_terminal
from ..core.schedules import warmup_linear
from .augment import augment_batch
from .image_augment import augment_images
from .batching import bucketed_batches
from .callbacks import Callback, EarlyStopping, ProgressBar, TimeBudget
from .checkpoint import load_checkpoint, save_checkpoint
from .losses import make_loss
from .sampler import balanced_batches
from .seed import use_all_cores

__all__ = ["Objective", "Trainer", "TrainResult", "predict_logits"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Objective(Protocol):
    """What the loop trains for instead of classifying single examples (e.g. pairs of sentences).

    ``len()`` is the number of training units per epoch (``cfg.batch_size`` of them per step); ``batches(rng)`` one
    epoch of unit indices (plain ints: they are checkpointed as JSON); ``loss(model, index)`` the loss of one batch;
    ``validate(model, step)`` the validation record's ``val_*`` entries, including the early-stopping metric's.
    """

    def __len__(self) -> int: ...
    def batches(self, rng: np.random.Generator) -> list[list[int]]: ...
    def loss(self, model: nn.Module, index: list[int]) -> torch.Tensor: ...
    def validate(self, model: nn.Module, step: int) -> dict[str, Any]: ...


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int = 0
    best_metric: float | None = None
    stopped_early: bool = False
    stop_reason: str = "finished all epochs"
    steps: int = 0


def predict_logits(model: nn.Module, data, batch_size: int) -> np.ndarray:
    """Logits for every example of an EncodedSet, in order."""
    model.eval()
    return batched_outputs(data, model, batch_size)


class Trainer:
    """Trains a module mapping a collated batch to logits.

    Args:
        cfg: training settings (epochs, lr schedule, validation cadence, early stopping, budget).
        seed: seeds the batch order (dropout is seeded by the caller before building the model).
        work_dir: where checkpoints go; a checkpoint found there is resumed from.
        progress: show a progress bar (in a terminal only).
        loss_fn: ``(logits, labels) -> loss``; by default built from ``cfg.loss`` and the training labels.
        callbacks: extra callbacks after the built-in ones.
    """

    def __init__(self, cfg: TrainConfig, seed: int = 0, work_dir: str | Path | None = None, progress: bool = True,
                 loss_fn: LossFn | None = None, callbacks: list[Callback] | None = None) -> None:
        self.cfg, self.seed = cfg, seed
        self.work_dir = Path(work_dir) if work_dir else None
        self.show_progress = progress
        self.user_loss_fn = loss_fn
        self.loss_fn: LossFn | None = loss_fn
        self.extra_callbacks = callbacks or []

    def with_config(self, cfg: TrainConfig, work_dir: str | Path | None = None) -> Trainer:
        """A trainer like this one with other settings (a strategy's own loss, augmentation, sampler)."""
        return Trainer(cfg, self.seed, work_dir or self.work_dir, self.show_progress, self.user_loss_fn, self.extra_callbacks)

    # -- state helpers used by callbacks -----------------------------------------------------------
    def elapsed(self) -> float:
        return self._elapsed_before + (time.perf_counter() - self._t0)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Copies of the trainable parameters and all buffers (what differs from the initial model)."""
        trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()
                if k in trainable or k not in dict(self.model.named_parameters())}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, model: nn.Module, param_groups: list[dict], train, val, *, name: str = "", epochs: int | None = None,
            objective: Objective | None = None) -> TrainResult:
        """Train ``model`` on ``train``, validating on ``val`` (without validation rows: no early stopping, the last
        weights are kept). With an ``objective``, batches, loss and validation are its own."""
        use_all_cores()
        cfg = self.cfg
        self.model, self.train_set, self.val_set, self.objective = model, train, val, objective
        self.epochs = epochs or cfg.epochs
        if objective is None:
            self._set_classification(train)
        else:  # the objective's batches are not single examples: no classification loss, no augmentation
            self.loss_fn, self.augment, self.image_augment = None, None, None
        self.steps_per_epoch = math.ceil((len(objective) if objective is not None else len(train)) / cfg.batch_size)
        self.total_steps = self.epochs * self.steps_per_epoch
        self.optimizer = torch.optim.AdamW(param_groups)
        warmup = int(cfg.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_linear(warmup, self.total_steps))
        self.rng = np.random.default_rng(self.seed)
        self.step, self.epoch, self.batch_pos, self.batch_order = 0, 0, 0, None
        self.history: list[dict[str, Any]] = []
        self.should_stop, self.stop_reason = False, "finished all epochs"
        self._elapsed_before, self._t0 = 0.0, time.perf_counter()
        self._loss_sum, self._loss_n = 0.0, 0

        self.early = EarlyStopping(cfg.early_stopping.metric, cfg.early_stopping.patience, cfg.early_stopping.min_delta) \
            if cfg.early_stopping else EarlyStopping("macro_f1", patience=None)
        self.callbacks: list[Callback] = [self.early] if len(val) else []  # nothing to compare without validation rows
        if cfg.time_budget_s:
            self.callbacks.append(TimeBudget(cfg.time_budget_s))
        if self.show_progress and is_terminal():  # in a file or a pipe a bar would only add lines; the study's lines tell
            self.callbacks.append(ProgressBar(name or "training"))
        self.callbacks += self.extra_callbacks

        if self.work_dir and (self.work_dir / "checkpoint").is_dir():
            load_checkpoint(self, self.work_dir / "checkpoint")
            self._t0 = time.perf_counter()
        for cb in self.callbacks:
            cb.on_train_start(self)
        try:
            while self.epoch < self.epochs and not self.should_stop:
                self.run_epoch()
        finally:
            for cb in self.callbacks:
                cb.on_train_end(self)
        if self.work_dir:
            _remove_checkpoint(self.work_dir / "checkpoint")
        return TrainResult(self.history, self.early.best_step, self.early.sign * self.early.best if self.early.best_state is not None else None,
                           self.should_stop and "time budget" not in self.stop_reason, self.stop_reason, self.step)

    def _set_classification(self, train) -> None:
        """The default objective's loss and augmentation, checked against the training set."""
        cfg = self.cfg
        self.loss_fn = self.user_loss_fn or make_loss(cfg.loss, train.labels)
        self.augment = cfg.augment if cfg.augmenting else None
        if self.augment is not None and not callable(getattr(train, "collate_items", None)):
            raise ConfigError(
                "The 'augment' setting needs token inputs from a text backbone, but the training set holds "
                f"{type(train).__name__} items (cached hidden states or images). Set 'augment: false' for this strategy"
                " (images are augmented by 'image_augment')."
            )
        self.image_augment = cfg.image_augment if cfg.augmenting_images else None
        if self.image_augment is not None and not callable(getattr(train, "pixels", None)):
            raise ConfigError(
                "The 'image_augment' setting needs images from an image backbone, but the training set holds "
                f"{type(train).__name__} items. Set 'image_augment: false' (text is augmented by 'augment')."
            )

    def run_epoch(self) -> None:
        cfg = self.cfg
        if self.batch_order is None:
            self.batch_order = self.make_batches()
        self.model.train()
        while self.batch_pos < len(self.batch_order) and not self.should_stop:
            loss = self.train_step(self.batch_order[self.batch_pos])
            self.batch_pos += 1
            self.step += 1
            for cb in self.callbacks:
                cb.on_step_end(self, loss)
            if cfg.eval_every_steps and self.step % cfg.eval_every_steps == 0:
                self.evaluate()
            if self.work_dir and self.step % cfg.checkpoint_every_steps == 0 and self.batch_pos < len(self.batch_order):
                save_checkpoint(self, self.work_dir / "checkpoint")
        if self.batch_pos >= len(self.batch_order):  # a full epoch (not a stop mid-epoch)
            if not cfg.eval_every_steps or self.step % cfg.eval_every_steps:
                self.evaluate()
            self.epoch += 1
            self.batch_pos, self.batch_order = 0, None
            if self.work_dir and not self.should_stop and self.epoch < self.epochs:
                save_checkpoint(self, self.work_dir / "checkpoint")

    def make_batches(self) -> list[list[int]]:
        """One epoch of batch indices: the objective's, class-balanced draws when configured, else every example once."""
        if self.objective is not None:
            return self.objective.batches(self.rng)
        data = self.train_set
        if self.cfg.balanced_sampler:
            return balanced_batches(data.labels, data.lengths, self.cfg.batch_size, self.rng)
        return bucketed_batches(data.lengths, self.cfg.batch_size, self.rng)

    def collate_train(self, index: list[int]) -> dict[str, torch.Tensor]:
        """A training batch, augmented when configured (validation batches never go through here)."""
        data = self.train_set
        if self.image_augment is not None:  # resized pixels in [0, 1] -> augmented -> normalised
            return data.to_batch(augment_images(data.pixels(index), self.rng, self.image_augment))
        if self.augment is None:
            return data.collate(index)
        items = augment_batch([data.items[i] for i in index], self.rng, self.augment, data.special_ids, data.mask_id)
        return data.collate_items(items)

    def train_step(self, index: list[int]) -> float:
        loss = self.batch_loss(index)
        loss.backward()
        if self.cfg.grad_clip:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        self._loss_sum += value
        self._loss_n += 1
        return value

    def batch_loss(self, index: list[int]) -> torch.Tensor:
        """The loss of one training batch: the objective's, else the classification loss of its examples."""
        if self.objective is not None:
            return self.objective.loss(self.model, index)
        batch = self.collate_train(index)
        labels = torch.as_tensor(self.train_set.labels[index], dtype=torch.long)
        return self.compute_loss(self.model(batch), labels)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(logits, labels)

    def validate(self) -> dict[str, Any]:
        """The ``val_*`` entries of an evaluation record: the objective's, else loss, macro-F1 and accuracy."""
        if self.objective is not None:
            return self.objective.validate(self.model, self.step)
        logits = predict_logits(self.model, self.val_set, self.cfg.eval_batch_size)
        y = self.val_set.labels
        pred = logits.argmax(1)
        return {
            "val_loss": float(F.cross_entropy(torch.from_numpy(logits), torch.as_tensor(y, dtype=torch.long))),
            "val_macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "val_accuracy": float(accuracy_score(y, pred)),
        }

    def evaluate(self) -> dict[str, Any]:
        record = {
            "step": self.step,
            "epoch": round(self.step / self.steps_per_epoch, 3),
            "train_loss": self._loss_sum / max(self._loss_n, 1),
            **(self.validate() if len(self.val_set) else {}),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "elapsed_s": round(self.elapsed(), 3),
        }
        self._loss_sum, self._loss_n = 0.0, 0
        self.history.append(record)
        for cb in self.callbacks:
            cb.on_evaluate(self, record)
        self.model.train()
        return record


def _remove_checkpoint(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
