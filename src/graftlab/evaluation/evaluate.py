"""A model's evidence on labeled rows it has not seen: the metrics with bootstrap CIs, the per-class table, the
confusion matrix and the reliability curve, as one typed :class:`Evaluation`.

``StudyResult.evaluate`` and ``graft evaluate`` score a packaged model on a new labeled file with it; both hand it
the true class indices and the model's calibrated probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

from graftlab.core.metrics import REPORTED_METRICS
from graftlab.core.results import ClassScores, Interval, Record

from .bootstrap import metrics_with_ci
from .calibration import reliability_curve
from .metrics import classification_metrics

__all__ = ["Evaluation", "evaluate_predictions"]


class Evaluation(Record):
    """A model's scores on ``n`` labeled rows.

    Attributes:
        n: the number of rows scored.
        label_names: the classes, in the model's order.
        metrics: metric name -> value with its bootstrap CI (``confidence``, ``n_boot`` resamples).
        per_class: class -> precision, recall, F1 and support.
        confusion_matrix: counts, rows = true class, columns = predicted, in ``label_names`` order.
        reliability: per-bin mean confidence and accuracy of the top label (empty bins left out).
    """

    n: int
    label_names: list[str]
    metrics: dict[str, Interval]
    per_class: dict[str, ClassScores]
    confusion_matrix: list[list[int]]
    reliability: dict[str, list[int | float]]
    confidence: float = 0.95
    n_boot: int = 1000


def evaluate_predictions(y_true: object, proba: object, label_names: Sequence[str],
                         metrics: Sequence[str] = REPORTED_METRICS, *, n_boot: int = 1000, confidence: float = 0.95,
                         seed: int = 0) -> Evaluation:
    """Score predictions on labeled rows: ``metrics`` (catalogue names) with bootstrap CIs, and the per-class table.

    Args:
        y_true: (n,) true class indices into ``label_names``.
        proba: (n, k) probabilities, as the model ships them (calibrated).
        label_names: the k class names.
        metrics: what to score, in this order (default: what every study reports).
        n_boot, confidence, seed: the bootstrap's resamples, CI level and seed.

    Raises:
        DataError: predictions and labels that do not fit together.
    """
    scores = metrics_with_ci(y_true, proba, list(metrics), n_boot=n_boot, confidence=confidence, seed=seed)
    table = classification_metrics(y_true, proba, label_names)
    return Evaluation(n=table["n"], label_names=list(label_names), metrics=scores, per_class=table["per_class"],
                      confusion_matrix=table["confusion_matrix"], reliability=reliability_curve(y_true, proba),
                      confidence=confidence, n_boot=n_boot)
