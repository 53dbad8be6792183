"""Learning curves and cost-sensitive evaluation, from trial logits."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.config import StudyConfig
from ..data.dataset import LabeledData
from ..evaluation import HEADLINE_METRICS, learning_curve_reading, seed_averaged, softmax
from .trials import TrialRecord

__all__ = ["size_label", "subsample_train", "learning_curve", "cost_report"]


def size_label(size: float) -> str:
    return f"{int(size)}" if size > 1 else f"{size:g}"


def subsample_train(train: LabeledData, size: float, seed: int) -> LabeledData:
    """``size`` > 1: that many examples per class (all of a smaller class); <= 1: that fraction, stratified.

    Each seed draws its own subsample, so the spread over seeds includes which examples were labeled.
    """
    rng = np.random.default_rng(seed + 7919)  # decoupled from the training seed's other uses
    keep = []
    for c in range(train.n_classes):
        idx = np.flatnonzero(train.labels == c)
        n = min(len(idx), int(size)) if size > 1 else max(1, int(round(size * len(idx))))
        keep.append(rng.choice(idx, size=n, replace=False))
    return train.subset(np.sort(np.concatenate(keep)))


def learning_curve(trials_by_size: dict[str, dict[str, list[TrialRecord]]], test: LabeledData, cfg: StudyConfig,
                   sizes: list[str], n_train: dict[str, int]) -> dict[str, Any]:
    """Seed-averaged test metric with CI per strategy and size, plus a one-line reading."""
    metric = cfg.eval.metric
    points: dict[str, list[dict[str, Any]]] = {}
    for size in sizes:
        for name, recs in trials_by_size.get(size, {}).items():
            s = seed_averaged(test.labels, [softmax(t.test_logits) for t in recs], metric,
                              n_boot=cfg.eval.bootstrap, confidence=cfg.eval.confidence, seed=cfg.seed)
            points.setdefault(name, []).append({"size": size, "n_train": n_train[size], "mean": s["mean"], "std": s["std"],
                                                "ci_low": s["ci_low"], "ci_high": s["ci_high"]})
    numeric = {name: [(float(p["n_train"]) / max(1, len(test.label_names)), p["mean"]) for p in pts] for name, pts in points.items()}
    reading = learning_curve_reading(numeric, higher_is_better=HEADLINE_METRICS[metric].higher_is_better) if numeric else ""
    return {"metric": metric, "sizes": sizes, "points": points, "reading": reading,
            "size_note": "sizes > 1 are examples per class; <= 1 are fractions of the training split"}


def cost_report(costs: list[list[float]], strategies: dict[str, list[TrialRecord]], val: LabeledData,
                test: LabeledData) -> dict[str, Any]:
    """Expected cost per decision on test for each strategy (argmax decisions, and for binary tasks the
    cost-optimal threshold on P(class 1) chosen on validation)."""
    c = np.asarray(costs, dtype=float)
    if c.shape != (test.n_classes, test.n_classes):
        from ..core.errors import ConfigError

        raise ConfigError(f"The 'eval.costs' matrix must be {test.n_classes}x{test.n_classes} (one row/column per "
                          f"class: {', '.join(test.label_names)}). Got {c.shape[0]}x{c.shape[1]} instead.")
    out: dict[str, Any] = {"matrix": costs, "labels": test.label_names, "strategies": {}}
    for name, recs in strategies.items():
        p_test = np.mean([softmax(t.test_logits) for t in recs], axis=0)
        entry = {"expected_cost_argmax": float(c[test.labels, p_test.argmax(1)].mean())}
        # Bayes decision: pick the class with the lowest expected cost under the model's probabilities
        entry["expected_cost_bayes"] = float(c[test.labels, (p_test @ c).argmin(1)].mean())
        if test.n_classes == 2:
            p_val = np.mean([softmax(t.val_logits) for t in recs], axis=0)[:, 1]
            grid = np.unique(np.concatenate([[0.0, 1.0], p_val]))
            val_costs = [c[val.labels, (p_val >= th).astype(int)].mean() for th in grid]
            th = float(grid[int(np.argmin(val_costs))])
            entry["threshold"] = th
            entry["expected_cost_threshold"] = float(c[test.labels, (p_test[:, 1] >= th).astype(int)].mean())
        out["strategies"][name] = entry
    return out
