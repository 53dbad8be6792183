"""Slice analysis: the metric on subgroups of the test set, flagging slices significantly below overall.

How a slice is flagged: a paired bootstrap of ``slice metric - overall metric``. Every resample
draws with replacement within each (true class, in-slice) cell, so the slice keeps its size and
class mix and the overall set is resampled jointly with it (the slice is part of the overall set;
the two are correlated and must be resampled together). A slice is flagged when the whole CI of
that difference lies on the worse side of 0 (upper bound < 0 for higher-is-better metrics, lower
bound > 0 for losses).

Many slices mean many tests: with ``correction="bonferroni"`` (the default) the flagging CI of each
of the m judged slices uses confidence ``1 - (1 - confidence) / m``, so the chance of flagging any
slice when none differs stays near ``1 - confidence``. The slice's own CI uses ``confidence``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from graftlab.core.errors import ConfigError, DataError

from ._validation import check_bootstrap_args, check_label_names, check_labels, check_predictions
from .bootstrap import MetricLike, evaluate_resamples, percentile_ci, resample_chunks
from .metrics import Metric, get_metric

__all__ = ["slice_metrics", "auto_slices"]


def _slice_row(
    y: np.ndarray,
    p: np.ndarray,
    in_slice: np.ndarray,
    m: Metric,
    n_boot: int,
    confidence: float,
    flag_confidence: float,
    seed: int,
) -> dict:
    """Bootstrap the slice metric and its difference from overall; return the numeric fields."""
    cols = np.flatnonzero(in_slice)
    strata = y * 2 + in_slice.astype(np.int64)  # (class, in-slice) cells
    slice_vals, diffs = np.empty(n_boot), np.empty(n_boot)
    start = 0
    for idx in resample_chunks(strata, n_boot, seed):
        stop = start + idx.shape[0]
        # strata[idx] == strata, so the slice's columns of idx are a resample of the slice.
        slice_vals[start:stop] = evaluate_resamples(m, y, p, idx[:, cols])
        diffs[start:stop] = slice_vals[start:stop] - evaluate_resamples(m, y, p, idx)
        start = stop
    ci_low, ci_high = percentile_ci(slice_vals, confidence)
    d_low, d_high = percentile_ci(diffs, flag_confidence)
    worse = d_high < 0 if m.higher_is_better else d_low > 0
    return {
        "ci_low": ci_low,
        "ci_high": ci_high,
        "diff_ci_low": d_low,
        "diff_ci_high": d_high,
        "flagged": bool(worse),  # NaN comparisons are False: an undefined metric is never flagged
    }


def slice_metrics(
    y_true: object,
    proba: object,
    groups: Mapping[str, object],
    metric: MetricLike = "accuracy",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_size: int = 10,
    correction: str = "bonferroni",
) -> list[dict]:
    """The metric on each slice of each grouping column, with a flag for slices below overall.

    ``accuracy`` is the default because it stays meaningful on a single-class slice (there it is the
    class's recall); macro-F1 of a slice holding one true class is not a useful number.

    Args:
        groups: column name -> (n,) array of slice values (e.g. from :func:`auto_slices`).
        min_size: slices with fewer examples are reported (value, n) but not bootstrapped or flagged.
        correction: "bonferroni" or "none" (see the module docstring).

    Returns:
        One dict per (column, slice value), columns in the given order, values sorted as strings:
        ``{"slice_column": str, "slice": str, "n": int, "metric": str, "value": float,
        "ci_low", "ci_high": float | None, "overall": float, "diff": float (value - overall),
        "diff_ci_low", "diff_ci_high": float | None, "flag_confidence": float | None,
        "flagged": bool, "too_small": bool}``. The None fields are None only for too-small slices.
    """
    check_bootstrap_args(n_boot, confidence)
    if correction not in ("bonferroni", "none"):
        raise ConfigError(f"The 'correction' parameter must be 'bonferroni' or 'none'. Got {correction!r} instead.")
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ConfigError(f"The 'min_size' parameter must be an int >= 1. Got {min_size!r} instead.")
    y, p = check_predictions(y_true, proba)
    m = get_metric(metric)
    overall = float(m.fn(y, p))

    slices = []  # (column, value label, mask)
    for column, values in groups.items():
        vals = np.asarray(values).astype(str)
        if vals.shape != y.shape:
            raise DataError(f"slice column {column!r} has {vals.size} values but there are {y.size} examples.")
        for v in sorted(set(vals.tolist())):
            slices.append((str(column), v, vals == v))
    n_judged = sum(1 for *_, mask in slices if mask.sum() >= min_size)
    flag_confidence = 1 - (1 - confidence) / max(n_judged, 1) if correction == "bonferroni" else confidence

    rows = []
    for column, label, mask in slices:
        n = int(mask.sum())
        value = float(m.fn(y[mask], p[mask]))
        row = {
            "slice_column": column,
            "slice": label,
            "n": n,
            "metric": m.name,
            "value": value,
            "ci_low": None,
            "ci_high": None,
            "overall": overall,
            "diff": value - overall,
            "diff_ci_low": None,
            "diff_ci_high": None,
            "flag_confidence": None,
            "flagged": False,
            "too_small": n < min_size,
        }
        if n >= min_size:
            row.update(_slice_row(y, p, mask, m, n_boot, confidence, flag_confidence, seed))
            row["flag_confidence"] = float(flag_confidence)
        rows.append(row)
    return rows


def auto_slices(
    inputs: Sequence[str] | None, y_true: object, label_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Default slices: input length quartiles (word count) and true class.

    Returns:
        ``{"length": (n,) str array like "len Q1 (3-20 words)", "class": (n,) str array like
        "class=great"}``; "length" is left out when ``inputs`` is None. The word ranges are the
        observed min-max within each quartile; tied lengths can leave a quartile empty (no label).
    """
    y = check_labels(y_true)
    k = int(y.max()) + 1 if label_names is None else len(label_names)
    names = check_label_names(label_names, k)
    if y.max() >= k:
        raise DataError(f"y_true holds class index {int(y.max())} but label_names has {k} names.")
    out: dict[str, np.ndarray] = {}
    if inputs is not None:
        if len(inputs) != y.size:
            raise DataError(f"inputs has {len(inputs)} items but y_true has {y.size} labels.")
        words = np.array([len(str(s).split()) for s in inputs])
        edges = np.quantile(words, [0.25, 0.5, 0.75])
        quartile = np.searchsorted(edges, words, side="left")  # words <= Q1 edge -> 0, ...
        labels = np.empty(y.size, dtype=object)
        for q in np.unique(quartile):
            member = quartile == q
            lo, hi = int(words[member].min()), int(words[member].max())
            span = f"{lo} word{'' if lo == 1 else 's'}" if lo == hi else f"{lo}-{hi} words"
            labels[member] = f"len Q{q + 1} ({span})"
        out["length"] = labels.astype(str)
    out["class"] = np.array([f"class={names[c]}" for c in y])
    return out
