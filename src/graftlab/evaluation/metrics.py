"""Classification metrics from (labels, probabilities): the catalogue's metrics of predictions, computed.

The metrics, their names and directions are listed once, in :data:`graftlab.core.metrics.METRICS`; this module
attaches to each metric of predictions its function, keyed by the catalogue name:

* ``fn(y_true, proba) -> float``: the definition: the catalogue entry's own ``score`` (an sklearn function of the
  arg-max labels) on checked inputs, or, for the metrics of probabilities below, a call into sklearn (or
  :mod:`.calibration`).
* ``batched(y, proba, idx) -> (B,)``, optional: the same number for every bootstrap resample at once
  (``idx`` is a (B, m) matrix of row indices). sklearn has no batched API and costs 1-7 ms a
  call, so 1000 resamples x seeds x strategies would take minutes; the batched forms work from
  per-example terms, confusion counts or ranks instead. A metric without one is bootstrapped one
  resample at a time (same numbers, slower). Where both exist they must agree (the tests check it).

Macro averages follow sklearn's default label set: the classes present in ``y_true`` or in the
predictions (a class absent from both is not averaged in as a 0). ``zero_division=0`` throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import brier_score_loss, confusion_matrix, log_loss, precision_recall_fscore_support, roc_auc_score

from graftlab.core.errors import ConfigError
from graftlab.core.metrics import METRICS, Score

from ._validation import check_label_names, check_predictions
from .calibration import ece_batched, expected_calibration_error

__all__ = [
    "Metric",
    "HEADLINE_METRICS",
    "get_metric",
    "classification_metrics",
    "roc_auc",
    "log_loss_metric",
    "brier",
    "ece",
]

MetricFn = Callable[[np.ndarray, np.ndarray], float]
BatchedFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """A named metric of (y_true, proba) with its direction and an optional batched form: for a catalogue metric,
    its entry in :data:`graftlab.core.metrics.METRICS` with the function attached."""

    name: str
    fn: MetricFn
    higher_is_better: bool = True
    batched: BatchedFn | None = None

    def __call__(self, y_true: object, proba: object) -> float:
        return self.fn(y_true, proba)


# ---- definitions of the metrics of probabilities (sklearn) -----------------------------------


def roc_auc(y_true: object, proba: object) -> float:
    """ROC-AUC: binary, of class 1; multiclass, one-vs-rest macro. NaN if a class is absent from y_true."""
    y, p = check_predictions(y_true, proba)
    k = p.shape[1]
    if np.unique(y).size < k:  # undefined, not an error: sklearn would raise or warn
        return float("nan")
    if k == 2:
        return float(roc_auc_score(y, p[:, 1]))
    return float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=np.arange(k)))


def log_loss_metric(y_true: object, proba: object) -> float:
    """Mean negative log-likelihood of the true class (natural log), over all k labels."""
    y, p = check_predictions(y_true, proba)
    return float(log_loss(y, p, labels=np.arange(p.shape[1])))


def brier(y_true: object, proba: object) -> float:
    """Multiclass Brier score: mean over examples of sum_j (p_j - onehot_j)^2, in [0, 2] for every k.

    The binary convention of halving it is not applied, so binary and multiclass values compare.
    """
    y, p = check_predictions(y_true, proba)
    return float(brier_score_loss(y, p, labels=np.arange(p.shape[1]), scale_by_half=False))


def ece(y_true: object, proba: object) -> float:
    """Top-label expected calibration error with 15 equal-width bins."""
    return expected_calibration_error(y_true, proba, n_bins=15)


# ---- batched forms for the bootstrap ---------------------------------------------------------


def _per_example_batched(per_example: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> BatchedFn:
    def batched(y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return per_example(y, proba)[idx].mean(axis=1)

    return batched


def _correct(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    return (proba.argmax(axis=1) == y).astype(np.float64)


def _nll(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    # sklearn's log_loss clips to [eps, 1 - eps] with eps of the dtype; match it exactly.
    eps = np.finfo(np.float64).eps
    return -np.log(np.clip(proba[np.arange(y.size), y], eps, 1 - eps))


def _squared_error(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    onehot = np.eye(proba.shape[1])[y]
    return ((proba - onehot) ** 2).sum(axis=1)


def _counts(y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resample and class: (true positives, true count, predicted count), each (B, k)."""
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    n_rows = idx.shape[0]
    codes = (np.arange(n_rows)[:, None] * k + y[idx]) * k + pred[idx]
    cm = np.bincount(codes.ravel(), minlength=n_rows * k * k).reshape(n_rows, k, k)  # rows = true
    return np.diagonal(cm, axis1=1, axis2=2).astype(np.float64), cm.sum(axis=2), cm.sum(axis=1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _macro(per_class: np.ndarray, support: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    present = (support + predicted) > 0  # sklearn's default labels: unique(y_true) | unique(y_pred)
    return (per_class * present).sum(axis=1) / present.sum(axis=1)


def _macro_f1_batched(y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    tp, support, predicted = _counts(y, proba, idx)
    return _macro(_ratio(2 * tp, support + predicted), support, predicted)


def _macro_precision_batched(y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    tp, support, predicted = _counts(y, proba, idx)
    return _macro(_ratio(tp, predicted), support, predicted)


def _macro_recall_batched(y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    tp, support, predicted = _counts(y, proba, idx)
    return _macro(_ratio(tp, support), support, predicted)


def _weighted_f1_batched(y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    tp, support, predicted = _counts(y, proba, idx)
    return (_ratio(2 * tp, support + predicted) * support).sum(axis=1) / support.sum(axis=1)


def _binary_auc_batched(is_pos: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mann-Whitney form of ROC-AUC per row (ties count 1/2, as in sklearn); NaN if a row lacks a class."""
    ranks = rankdata(score, axis=1)  # average ranks for ties
    n_pos = is_pos.sum(axis=1).astype(np.float64)
    n_neg = is_pos.shape[1] - n_pos
    u = (ranks * is_pos).sum(axis=1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = u / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _roc_auc_batched(y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    k = proba.shape[1]
    yi = y[idx]
    if k == 2:
        return _binary_auc_batched(yi == 1, proba[:, 1][idx])
    # One-vs-rest macro: the plain mean of per-class AUCs (NaN propagates when a class is absent).
    return np.mean([_binary_auc_batched(yi == c, proba[:, c][idx]) for c in range(k)], axis=0)


def _ece_batched(y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return ece_batched(y, proba, idx, n_bins=15)


# ---- the catalogue's metrics of predictions, with their functions ---------------------------

# Catalogue metrics without a ``score`` of their own: they need every class (or the calibration code).
_OF_PROBABILITIES: dict[str, MetricFn] = {"roc_auc": roc_auc, "log_loss": log_loss_metric, "brier": brier, "ece": ece}

_BATCHED: dict[str, BatchedFn] = {
    "accuracy": _per_example_batched(_correct),
    "macro_f1": _macro_f1_batched,
    "macro_precision": _macro_precision_batched,
    "macro_recall": _macro_recall_batched,
    "weighted_f1": _weighted_f1_batched,
    "roc_auc": _roc_auc_batched,
    "log_loss": _per_example_batched(_nll),
    "brier": _per_example_batched(_squared_error),
    "ece": _ece_batched,
}


def _checked(name: str, score: Score) -> MetricFn:
    """The catalogue's ``score`` on inputs checked (and a 1-d binary ``proba`` widened) first."""

    def fn(y_true: object, proba: object) -> float:
        return float(score(*check_predictions(y_true, proba)))

    fn.__name__ = fn.__qualname__ = name
    return fn


def _computed(name: str) -> Metric:
    """The catalogue entry ``name`` with its function: the entry's own ``score``, else the one defined here (a
    KeyError when this module is imported means an entry of predictions has neither)."""
    entry = METRICS[name]
    fn = _checked(name, entry.score) if entry.score is not None else _OF_PROBABILITIES[name]
    return Metric(name, fn, entry.higher_is_better, _BATCHED.get(name))


HEADLINE_METRICS: dict[str, Metric] = {name: _computed(name) for name, m in METRICS.items() if m.measured == "predictions"}
"""Metric name -> :class:`Metric`: every metric of predictions in the catalogue, in its order, computable."""


def get_metric(metric: str | Metric | MetricFn) -> Metric:
    """Resolve a metric name, a :class:`Metric` or a plain ``fn(y_true, proba) -> float``.

    A plain callable is taken as higher-is-better and is evaluated one resample at a time.

    Raises:
        ConfigError: for an unknown name.
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        try:
            return HEADLINE_METRICS[metric]
        except KeyError:
            known = ", ".join(HEADLINE_METRICS)
            raise ConfigError(f"Unknown metric {metric!r}. Known metrics: {known}.") from None
    if callable(metric):
        return Metric(getattr(metric, "__name__", "custom"), metric, True, None)
    raise ConfigError(f"The 'metric' parameter must be a metric name or a callable. Got {metric!r} instead.")


def classification_metrics(y_true: object, proba: object, label_names: Sequence[str] | None = None) -> dict:
    """Every headline metric plus a per-class table and the confusion matrix.

    Returns:
        ``{accuracy, macro_f1, macro_precision, macro_recall, weighted_f1, roc_auc, log_loss, brier,
        ece: float, per_class: {name: {precision, recall, f1: float, support: int}},
        confusion_matrix: list[list[int]] (rows = true class, columns = predicted, in class order),
        n: int}``. ``roc_auc`` is NaN when a class is absent from ``y_true``.
    """
    y, p = check_predictions(y_true, proba)
    k = p.shape[1]
    names = check_label_names(label_names, k)
    out: dict = {name: float(m.fn(y, p)) for name, m in HEADLINE_METRICS.items()}
    pred = p.argmax(axis=1)
    labels = np.arange(k)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out["per_class"] = {
        name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(names)
    }
    out["confusion_matrix"] = confusion_matrix(y, pred, labels=labels).astype(int).tolist()
    out["n"] = int(y.size)
    return out
