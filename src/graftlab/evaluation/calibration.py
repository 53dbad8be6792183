"""Calibration: top-label ECE, reliability diagrams and temperature scaling (numpy/scipy only).

Binning convention (Guo et al., 2017): ``n_bins`` equal-width bins over [0, 1], bin ``b`` holds the
examples whose top-label confidence lies in ``(b/n_bins, (b+1)/n_bins]``; confidence 0 goes to bin 0.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from scipy.special import softmax as _scipy_softmax

from graftlab.core.errors import ConfigError, DataError

from ._validation import check_labels, check_predictions

__all__ = [
    "expected_calibration_error",
    "reliability_curve",
    "softmax",
    "apply_temperature",
    "fit_temperature",
    "logits_from_proba",
    "separates",
]


def _check_n_bins(n_bins: object) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError(f"The 'n_bins' parameter must be an int >= 1. Got {n_bins!r} instead.")
    return int(n_bins)


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    # (lower, upper] bins: searchsorted(side="left") on the inner edges puts x == edge in the lower bin.
    inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner, confidence, side="left")


def _top_label(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (confidence of the predicted class, 1.0 where that prediction is right)."""
    return proba.max(axis=1), (proba.argmax(axis=1) == y).astype(np.float64)


def expected_calibration_error(y_true: object, proba: object, n_bins: int = 15) -> float:
    """Top-label expected calibration error with equal-width bins.

    ECE = sum over bins of (n_b / n) * |accuracy_b - mean confidence_b|, which equals
    |sum of correctness - sum of confidence| per bin, summed and divided by n.
    """
    n_bins = _check_n_bins(n_bins)
    y, p = check_predictions(y_true, proba)
    conf, correct = _top_label(y, p)
    b = _bin_index(conf, n_bins)
    gap = np.bincount(b, weights=correct, minlength=n_bins) - np.bincount(b, weights=conf, minlength=n_bins)
    return float(np.abs(gap).sum() / y.size)


def ece_batched(y: np.ndarray, proba: np.ndarray, idx: np.ndarray, n_bins: int = 15) -> np.ndarray:
    """ECE of every bootstrap resample at once; ``idx`` is (B, m) row indices into validated inputs.

    Returns (B,). One bincount over ``row * n_bins + bin`` gives every resample's per-bin sums.
    """
    conf, correct = _top_label(y, proba)
    b = _bin_index(conf, n_bins)
    n_rows, m = idx.shape
    flat = (np.arange(n_rows)[:, None] * n_bins + b[idx]).ravel()
    size = n_rows * n_bins
    gap = np.bincount(flat, weights=correct[idx].ravel(), minlength=size) - np.bincount(
        flat, weights=conf[idx].ravel(), minlength=size
    )
    return np.abs(gap.reshape(n_rows, n_bins)).sum(axis=1) / m


def reliability_curve(y_true: object, proba: object, n_bins: int = 15) -> dict[str, list]:
    """Per-bin mean confidence and accuracy of the top label, for a reliability diagram.

    Returns:
        ``{bin_lower, bin_upper, confidence, accuracy, count}``: parallel lists (floats; ``count``
        ints) with one entry per *non-empty* bin, in increasing confidence. Empty bins are left out.
    """
    n_bins = _check_n_bins(n_bins)
    y, p = check_predictions(y_true, proba)
    conf, correct = _top_label(y, p)
    b = _bin_index(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    keep = np.flatnonzero(count)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    sum_conf = np.bincount(b, weights=conf, minlength=n_bins)
    sum_correct = np.bincount(b, weights=correct, minlength=n_bins)
    return {
        "bin_lower": [float(edges[i]) for i in keep],
        "bin_upper": [float(edges[i + 1]) for i in keep],
        "confidence": [float(sum_conf[i] / count[i]) for i in keep],
        "accuracy": [float(sum_correct[i] / count[i]) for i in keep],
        "count": [int(count[i]) for i in keep],
    }


def _check_logits(logits: object) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise DataError(f"logits must have shape (n, k) with k >= 2. Got shape {z.shape} instead.")
    if not np.all(np.isfinite(z)):
        raise DataError(
            "logits must be finite; for a model that outputs probabilities use logits_from_proba(proba), "
            "which clips zeros before taking the log."
        )
    return z


def _check_temperature(temperature: object) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)) or not (
        np.isfinite(temperature) and temperature > 0
    ):
        raise ConfigError(f"The 'temperature' parameter must be a float > 0. Got {temperature!r} instead.")
    return float(temperature)


def softmax(logits: object, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``; returns (n, k) probabilities."""
    z = _check_logits(logits)
    return _scipy_softmax(z / _check_temperature(temperature), axis=1)


def apply_temperature(logits: object, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``softmax(logits / T)`` for a fitted temperature ``T``."""
    return softmax(logits, temperature)


def logits_from_proba(proba: object, eps: float = 1e-12) -> np.ndarray:
    """Log-probabilities usable as logits (softmax(log p) == p); zeros are clipped to ``eps`` first."""
    p = np.asarray(proba, dtype=np.float64)
    return np.log(np.clip(p, eps, 1.0))


def fit_temperature(logits: object, y_true: object, bounds: tuple[float, float] = (0.01, 100.0)) -> float:
    """Fit the temperature T > 0 that minimises the NLL of ``softmax(logits / T)`` on held-out data.

    Fit it on a validation split, never the test split, or the test ECE is optimistic.

    Args:
        logits: (n, k) scores; for a probabilities-only model use ``logits_from_proba(proba)``.
        y_true: (n,) class indices.
        bounds: search interval for T. The search runs on log T, where the NLL is smooth and the
            interval is symmetric around T = 1.

    Returns:
        The fitted temperature as a float (> 1 means the model was over-confident). 1.0 when the logits
        rank every row's true class first (:func:`separates`): the NLL then keeps falling as T goes to 0,
        so the data fix no temperature and the bound would make every prediction certain.
    """
    z = _check_logits(logits)
    y = check_labels(y_true)
    if y.size != z.shape[0] or y.min() < 0 or y.max() >= z.shape[1]:
        raise DataError(f"y_true must hold {z.shape[0]} class indices in 0..{z.shape[1] - 1}, one per logits row.")
    lo, hi = bounds
    if not 0 < lo < hi:
        raise ConfigError(f"The 'bounds' parameter must satisfy 0 < low < high. Got {bounds!r} instead.")
    if separates(z, y):
        return 1.0
    rows = np.arange(y.size)

    def nll(log_t: float) -> float:
        return float(-log_softmax(z / np.exp(log_t), axis=1)[rows, y].mean())

    res = minimize_scalar(nll, bounds=(np.log(lo), np.log(hi)), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def separates(logits: object, y_true: object) -> bool:
    """Whether no row ranks a wrong class above its true class (ties with it allowed).

    Then each row's probability of its true class rises (or stays) as the temperature falls, so the held-out
    NLL has no minimum: small or easy validation sets do this, and temperature scaling must leave them alone.
    """
    z = _check_logits(logits)
    y = check_labels(y_true)
    true = z[np.arange(y.size), y]
    others = np.where(np.eye(z.shape[1], dtype=bool)[y], -np.inf, z)
    return bool(y.size) and bool(np.all(true >= others.max(axis=1)))
