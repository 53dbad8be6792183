"""Small callbacks for the training loop: each hook is optional, each keeps a resumable state."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from ..core.metrics import EARLY_STOPPING_METRICS, METRICS, check_metric

if TYPE_CHECKING:
    from .loop import Trainer

__all__ = ["Callback", "EarlyStopping", "TimeBudget", "ProgressBar", "higher_is_better"]


def higher_is_better(metric: str) -> bool:
    """The direction of an early-stopping metric (``val_`` prefix allowed), from the metric catalogue.

    Raises:
        ConfigError: for a metric the training loop does not measure.
    """
    name = check_metric(metric.removeprefix("val_"), EARLY_STOPPING_METRICS, "early stopping")
    return name != "loss" and METRICS[name].higher_is_better  # 'loss' is the training loop's name for log_loss


class Callback:
    """Hooks called by :class:`Trainer`; set ``trainer.should_stop`` / ``stop_reason`` to end training."""

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, loss: float) -> None: ...
    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EarlyStopping(Callback):
    """Keep the best weights by a validation metric; stop after ``patience`` evaluations without gain."""

    def __init__(self, metric: str = "macro_f1", patience: int | None = 3, min_delta: float = 0.0) -> None:
        self.key = "val_loss" if metric in ("loss", "log_loss") else f"val_{metric}"
        self.sign = 1.0 if higher_is_better(metric) else -1.0
        self.patience, self.min_delta = patience, min_delta
        self.best = -math.inf
        self.best_step = 0
        self.bad = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        score = self.sign * record[self.key]
        if score > self.best + self.min_delta:
            self.best, self.best_step, self.bad = score, record["step"], 0
            self.best_state = trainer.trainable_state()
        else:
            self.bad += 1
            if self.patience is not None and self.bad >= self.patience:
                trainer.should_stop, trainer.stop_reason = True, f"no {self.key} gain in {self.bad} evaluations"

    def on_train_end(self, trainer: Trainer) -> None:
        if self.best_state is not None:
            trainer.model.load_state_dict(self.best_state, strict=False)  # restore the best checkpoint

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step, self.bad = state["best"], state["best_step"], state["bad"]


class TimeBudget(Callback):
    """Stop when the wall-clock budget is spent (the best weights so far are kept)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        if trainer.elapsed() > self.seconds:
            trainer.should_stop, trainer.stop_reason = True, f"time budget of {self.seconds:g}s spent"


class ProgressBar(Callback):
    """A rich progress bar: step, loss, last validation metric."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.progress = None
        self.task = None
        self.last = ""

    def on_train_start(self, trainer: Trainer) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=trainer.total_steps, completed=trainer.step, info="")

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        self.progress.update(self.task, completed=trainer.step, info=f"loss {loss:.3f} {self.last}")

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        key = next((k for k in ("val_macro_f1", "val_accuracy") if k in record), None)
        self.last = f"{key} {record[key]:.3f}" if key else ""

    def on_train_end(self, trainer: Trainer) -> None:
        if self.progress is not None:
            self.progress.stop()


def now() -> float:
    return time.perf_counter()
