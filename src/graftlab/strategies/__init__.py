"""Adaptation strategies. Each is one module that registers itself; importing this package registers all."""

from . import finetune, linear_probe, majority, tfidf_logreg  # noqa: F401  (registration)
from .base import (
    PREDICTORS,
    STRATEGIES,
    FitContext,
    FitOutcome,
    Predictor,
    Strategy,
    StrategyParams,
    load_predictor,
    make_strategy,
    save_predictor,
)

__all__ = [
    "PREDICTORS",
    "STRATEGIES",
    "FitContext",
    "FitOutcome",
    "Predictor",
    "Strategy",
    "StrategyParams",
    "load_predictor",
    "make_strategy",
    "save_predictor",
]
