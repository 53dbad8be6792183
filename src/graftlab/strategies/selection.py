"""Choosing a logistic regression's C on the validation split (shared by the linear baselines)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss

from ..core.config import TrainConfig

__all__ = ["select_logreg", "val_score"]


def val_score(metric: str, y: np.ndarray, proba: np.ndarray) -> float:
    """Validation score where higher is better (loss metrics are negated)."""
    if metric == "accuracy":
        return float(accuracy_score(y, proba.argmax(1)))
    if metric in ("log_loss", "loss"):
        return -float(log_loss(y, proba, labels=np.arange(proba.shape[1])))
    return float(f1_score(y, proba.argmax(1), average="macro", zero_division=0))


def select_logreg(x_train, y_train, x_val, y_val, grid: list[float], seed: int, train_cfg: TrainConfig,
                  class_weight: Any = None) -> tuple[LogisticRegression, dict[str, Any]]:
    """Fit one model per C, keep the best on validation (ties: the stronger regularisation)."""
    metric = train_cfg.early_stopping.metric if train_cfg.early_stopping else "macro_f1"
    best, best_score, scores = None, -np.inf, {}
    for c in sorted(grid):
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight=class_weight)
        model.fit(x_train, y_train)
        score = val_score(metric, y_val, model.predict_proba(x_val))
        scores[str(c)] = score
        if score > best_score + 1e-12:
            best, best_score = model, score
    return best, {"C": float(best.C), "val_scores": scores, "selection_metric": metric}
