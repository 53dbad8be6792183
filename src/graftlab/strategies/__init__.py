"""Adaptation strategies. Each is one module that registers itself; importing this package registers all."""

from . import finetune, gradual_unfreeze, linear_probe, majority, peft_adapters, tfidf_logreg  # noqa: F401  (registration)
from . import contrastive  # noqa: F401  (registration)
from . import pixel_logreg  # noqa: F401  (registration)
from .base import (
    PREDICTORS,
    STRATEGIES,
    FitContext,
    FitOutcome,
    LearningRate,
    Predictor,
    Strategy,
    StrategyParams,
    effective_lr,
    load_predictor,
    make_strategy,
    save_predictor,
    trial_context,
)

__all__ = [
    "PREDICTORS",
    "STRATEGIES",
    "FitContext",
    "FitOutcome",
    "LearningRate",
    "Predictor",
    "Strategy",
    "StrategyParams",
    "effective_lr",
    "load_predictor",
    "make_strategy",
    "save_predictor",
    "trial_context",
]
