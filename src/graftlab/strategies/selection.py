"""Choosing a logistic regression's C on the validation split (shared by the linear baselines), and the logistic
head on pooled embeddings that linear_probe and contrastive fit.

Without validation rows (a strategy refitted on every labeled example after k-fold selection, ``Study``), there is
nothing to choose C on: :func:`select_logreg` fits scikit-learn's default C = 1, and :func:`embedding_head` fits
C = :data:`REFIT_C` on L2-normalised embeddings, the head ``bench/fewshot_heads.py`` compared with the alternatives
(docs/benchmarks.md#few-shot, B18; docs/fewshot.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss

from ..core.config import TrainConfig

__all__ = ["REFIT_C", "embedding_head", "select_logreg", "val_score"]

#: C of the head on L2-normalised embeddings when there are no validation rows (bench/fewshot_heads.py)
REFIT_C = 10.0


def val_score(metric: str, y: np.ndarray, proba: np.ndarray) -> float:
    """Validation score where higher is better (loss metrics are negated)."""
    if metric == "accuracy":
        return float(accuracy_score(y, proba.argmax(1)))
    if metric in ("log_loss", "loss"):
        return -float(log_loss(y, proba, labels=np.arange(proba.shape[1])))
    return float(f1_score(y, proba.argmax(1), average="macro", zero_division=0))


def select_logreg(x_train, y_train, x_val, y_val, grid: list[float], seed: int, train_cfg: TrainConfig,
                  class_weight: Any = None) -> tuple[LogisticRegression, dict[str, Any]]:
    """Fit one model per C, keep the best on validation (ties: the stronger regularisation); without validation
    rows, one model with C = 1."""
    metric = train_cfg.early_stopping.metric if train_cfg.early_stopping else "macro_f1"
    if len(y_val) == 0:
        model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed, class_weight=class_weight).fit(x_train, y_train)
        return model, {"C": 1.0, "val_scores": {}, "selection_metric": None}
    best, best_score, scores = None, -np.inf, {}
    for c in sorted(grid):
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight=class_weight)
        model.fit(x_train, y_train)
        score = val_score(metric, y_val, model.predict_proba(x_val))
        scores[str(c)] = score
        if score > best_score + 1e-12:
            best, best_score = model, score
    return best, {"C": float(best.C), "val_scores": scores, "selection_metric": metric}


def embedding_head(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_classes: int,
                   grid: list[float], seed: int, train_cfg: TrainConfig) -> dict[str, Any]:
    """A logistic head on pooled embeddings, as the weights of a linear layer on the raw features.

    With validation rows: features standardised (constant ones left out), C from ``grid`` chosen on val, the scaler
    folded into the weights. Without: L2-normalised features (the model normalises too: ``normalize`` is True),
    C = :data:`REFIT_C`.

    Returns:
        ``{"w": (k, hidden), "b": (k,), "normalize", "C", "val_scores", "selection_metric", "score" (the chosen C's
        validation score; None without val), "val_proba" (its (n_val, k) validation probabilities; None without val),
        "constant_features_dropped"}``.
    """
    from sklearn.preprocessing import StandardScaler, normalize

    from .tfidf_logreg import as_multiclass

    if len(y_val) == 0:
        model = LogisticRegression(C=REFIT_C, max_iter=2000, random_state=seed).fit(normalize(x_train), y_train)
        w, b = as_multiclass(model, n_classes)
        return {"w": w, "b": b, "normalize": True, "C": REFIT_C, "val_scores": {}, "selection_metric": None,
                "score": None, "val_proba": None, "constant_features_dropped": 0}
    scaler = StandardScaler().fit(x_train)
    # Features that are (numerically) constant on train carry no signal; standardising them would divide rounding
    # noise by ~0 and, folded into the head, give weights of 1e30. Leave them out.
    keep = scaler.scale_ > 1e-6
    z_val = scaler.transform(x_val)[:, keep]
    model, info = select_logreg(scaler.transform(x_train)[:, keep], y_train, z_val, y_val, grid, seed, train_cfg)
    coef_kept, intercept = as_multiclass(model, n_classes)
    coef = np.zeros((coef_kept.shape[0], x_train.shape[1]))
    coef[:, keep] = coef_kept
    scale = np.where(keep, scaler.scale_, 1.0)
    # fold the scaler: w·(x-μ)/σ + b = (w/σ)·x + (b - Σ w μ/σ)
    return {"w": coef / scale, "b": intercept - (coef * scaler.mean_ / scale).sum(1), "normalize": False,
            "score": info["val_scores"][str(info["C"])], "val_proba": model.predict_proba(z_val),
            "constant_features_dropped": int((~keep).sum()), **info}
