"""The training loop and what it needs: batching, callbacks, checkpoints, seeds."""

from .callbacks import Callback, EarlyStopping, ProgressBar, TimeBudget
from .loop import Objective, Trainer, TrainResult, predict_logits
from .seed import available_cores, seed_everything, use_all_cores

__all__ = [
    "Callback",
    "EarlyStopping",
    "Objective",
    "ProgressBar",
    "TimeBudget",
    "Trainer",
    "TrainResult",
    "predict_logits",
    "available_cores",
    "seed_everything",
    "use_all_cores",
]
