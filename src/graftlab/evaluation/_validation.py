"""Input checks shared by the evaluation modules: labels and probabilities in one canonical form."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graftlab.core.errors import ConfigError, DataError

__all__ = ["check_labels", "check_predictions", "check_label_names", "check_seed_probas", "check_bootstrap_args"]

# Models often emit float32 softmax; rows then sum to 1 only up to ~1e-6. Anything further off
# is a bug upstream (logits passed as probabilities, an unnormalised score), so we refuse it.
_ROW_SUM_TOL = 1e-3


def check_labels(y_true: object, name: str = "y_true") -> np.ndarray:
    """Return ``y_true`` as a 1-D int array; raise DataError if it is not integer class indices."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of class indices. Got shape {y.shape} instead.")
    if y.size == 0:
        raise DataError(f"{name} is empty; there is nothing to evaluate.")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub":
        raise DataError(
            f"{name} must hold integer class indices 0..k-1. Got dtype {y.dtype} instead; "
            "map label names to indices first."
        )
    return y.astype(np.int64, copy=False)


def check_predictions(y_true: object, proba: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and probabilities; return ``(y (n,), proba (n, k) float64)``.

    A 1-D ``proba`` is read as the positive-class probability of a binary task. Rows are
    renormalised to sum to exactly 1 after the check, because sklearn re-checks that sum strictly.
    """
    y = check_labels(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] < 2:
        raise DataError(f"proba must have shape (n, k) with k >= 2. Got shape {p.shape} instead.")
    if p.shape[0] != y.shape[0]:
        raise DataError(
            f"proba has {p.shape[0]} rows but y_true has {y.shape[0]} labels; pass one probability row per example."
        )
    if not np.all(np.isfinite(p)) or p.min() < -1e-9 or p.max() > 1 + 1e-9:
        raise DataError("proba must hold finite probabilities in [0, 1]; pass softmax outputs, not logits.")
    sums = p.sum(axis=1)
    if np.max(np.abs(sums - 1.0)) > _ROW_SUM_TOL:
        worst = float(sums[np.argmax(np.abs(sums - 1.0))])
        raise DataError(f"each proba row must sum to 1 (a row sums to {worst:.4g}); apply softmax first.")
    k = p.shape[1]
    bad = y[(y < 0) | (y >= k)]
    if bad.size:
        raise DataError(f"y_true holds class index {int(bad[0])} but proba has k={k} columns (indices 0..{k - 1}).")
    p = np.clip(p, 0.0, 1.0)
    return y, p / p.sum(axis=1, keepdims=True)


def check_label_names(label_names: Sequence[str] | None, k: int) -> list[str]:
    """Return label names as strings, defaulting to '0'..'k-1'; raise DataError on a length mismatch."""
    if label_names is None:
        return [str(i) for i in range(k)]
    names = [str(n) for n in label_names]
    if len(names) != k:
        raise DataError(f"label_names has {len(names)} names but proba has k={k} columns; pass one name per class.")
    return names


def check_seed_probas(y: np.ndarray, probas: object, name: str = "probas") -> list[np.ndarray]:
    """Return a list of validated (n, k) arrays from one array, a list of arrays or an (s, n, k) array."""
    if isinstance(probas, np.ndarray) and probas.ndim == 3:
        items = list(probas)
    elif isinstance(probas, (list, tuple)):
        items = list(probas)
    else:
        items = [probas]
    if not items:
        raise DataError(f"{name} is empty; pass at least one seed's predictions.")
    out = [check_predictions(y, p)[1] for p in items]
    if len({p.shape[1] for p in out}) != 1:
        raise DataError(f"every seed in {name} must have the same number of classes.")
    return out


def check_bootstrap_args(n_boot: object, confidence: object) -> None:
    """Raise ConfigError (sklearn style) for a bad ``n_boot`` or ``confidence``."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfigError(f"The 'n_boot' parameter must be an int >= 1. Got {n_boot!r} instead.")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError(f"The 'confidence' parameter must be a float in (0, 1). Got {confidence!r} instead.")
