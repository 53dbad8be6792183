"""Bootstrap confidence intervals, seed averaging and paired model comparisons over test examples.

Resampling is *stratified by true class*: each bootstrap test set keeps exactly the class counts of
the real one, drawing with replacement within each class. On small test sets a plain bootstrap
sometimes drops a rare class, which makes macro-F1 jump and ROC-AUC undefined; stratifying removes
that artificial variance (the class mix of the test set is a design choice, not a random outcome).

Intervals are percentile intervals. A resample on which a metric is undefined (NaN) is skipped;
when every resample is, the interval is NaN. All models in one call see the *same* resamples, so
paired differences cancel the shared difficulty of the examples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.stats import binomtest, chi2

from graftlab.core.errors import DataError

from ._validation import check_bootstrap_args, check_labels, check_predictions, check_seed_probas
from .metrics import HEADLINE_METRICS, Metric, MetricFn, get_metric

__all__ = [
    "bootstrap_ci",
    "metrics_with_ci",
    "seed_averaged",
    "paired_bootstrap",
    "mcnemar",
    "resample_chunks",
    "evaluate_resamples",
    "percentile_ci",
]

MetricLike = str | Metric | MetricFn

# Index entries per chunk: caps the (rows, n) index matrix and its gathered values at ~16 MB each,
# so a 50k-example test set does not allocate gigabytes for 1000 resamples.
_MAX_CELLS = 2_000_000


def resample_chunks(strata: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Yield stratified bootstrap index matrices, (rows, n) each, n_boot rows in all.

    Column ``j`` of every matrix is drawn with replacement from the examples in ``strata[j]``'s
    stratum, so ``strata[idx] == strata`` row by row: a column block keeps its meaning (callers
    use that to take a slice's sub-matrix). The draws depend only on (strata, n_boot, seed).
    """
    strata = np.asarray(strata)
    n = strata.size
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    rng = np.random.default_rng(seed)
    rows = max(1, _MAX_CELLS // max(n, 1))
    for start in range(0, n_boot, rows):
        b = min(rows, n_boot - start)
        idx = np.empty((b, n), dtype=np.intp)
        for members in groups:
            idx[:, members] = members[rng.integers(0, members.size, size=(b, members.size))]
        yield idx


def evaluate_resamples(metric: Metric, y: np.ndarray, proba: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Metric value on each row of ``idx`` (B, m) over validated inputs; NaN where undefined."""
    if metric.batched is not None:
        return np.asarray(metric.batched(y, proba, idx), dtype=np.float64)
    out = np.empty(idx.shape[0])
    for r, rows in enumerate(idx):
        try:
            out[r] = metric.fn(y[rows], proba[rows])
        except ValueError:  # sklearn's way of saying "undefined on this sample": skip the resample
            out[r] = np.nan
    return out


def percentile_ci(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the finite values of ``dist``; (nan, nan) if there are none."""
    finite = dist[np.isfinite(dist)]
    if finite.size == 0:
        return float("nan"), float("nan")
    alpha = 1.0 - confidence
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _distributions(
    y: np.ndarray, probas: list[np.ndarray], metrics: list[Metric], n_boot: int, seed: int
) -> np.ndarray:
    """(len(metrics), len(probas), n_boot) bootstrap values, every cell on the same resamples."""
    out = np.empty((len(metrics), len(probas), n_boot))
    start = 0
    for idx in resample_chunks(y, n_boot, seed):
        stop = start + idx.shape[0]
        for i, m in enumerate(metrics):
            for j, p in enumerate(probas):
                out[i, j, start:stop] = evaluate_resamples(m, y, p, idx)
        start = stop
    return out


def metrics_with_ci(
    y_true: object,
    proba: object,
    metrics: Sequence[MetricLike] = tuple(HEADLINE_METRICS),
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Point value and bootstrap CI of several metrics (default: all headline metrics), one set of resamples.

    ECE is biased upwards on finite samples and more so on resamples, so its interval tends to sit
    above the point value; read it as a rough range.

    Returns:
        ``{metric_name: {"value", "ci_low", "ci_high"}}`` (floats; NaN where undefined).
    """
    check_bootstrap_args(n_boot, confidence)
    y, p = check_predictions(y_true, proba)
    resolved = [get_metric(m) for m in metrics]
    dist = _distributions(y, [p], resolved, n_boot, seed)
    out = {}
    for i, m in enumerate(resolved):
        lo, hi = percentile_ci(dist[i, 0], confidence)
        out[m.name] = {"value": float(m.fn(y, p)), "ci_low": lo, "ci_high": hi}
    return out


def bootstrap_ci(
    y_true: object,
    proba: object,
    metric: MetricLike = "macro_f1",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Point value and stratified percentile-bootstrap CI of one metric.

    Returns:
        ``{"value", "ci_low", "ci_high"}`` (floats).
    """
    m = get_metric(metric)
    return metrics_with_ci(y_true, proba, (m,), n_boot, confidence, seed)[m.name]


def seed_averaged(
    y_true: object,
    probas: object,
    metric: MetricLike = "macro_f1",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """A metric averaged over training seeds, with a CI over test examples of that average.

    In each resample the metric is computed for every seed on the same examples and averaged, so
    the CI reflects test-set sampling of the seed-averaged model; ``std`` shows seed-to-seed spread.

    Args:
        probas: a list of (n, k) arrays (one per seed), an (s, n, k) array, or one (n, k) array.

    Returns:
        ``{"metric": str, "value": float (= mean), "mean": float, "std": float (across seeds,
        ddof=1; NaN for a single seed), "values": list[float] (per seed), "ci_low", "ci_high": float,
        "n_seeds": int}``.
    """
    check_bootstrap_args(n_boot, confidence)
    y = check_labels(y_true)
    ps = check_seed_probas(y, probas)
    m = get_metric(metric)
    values = np.array([m.fn(y, p) for p in ps], dtype=np.float64)
    dist = _distributions(y, ps, [m], n_boot, seed)[0].mean(axis=0)  # NaN if any seed is undefined
    lo, hi = percentile_ci(dist, confidence)
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
    return {
        "metric": m.name,
        "value": mean,
        "mean": mean,
        "std": std,
        "values": [float(v) for v in values],
        "ci_low": lo,
        "ci_high": hi,
        "n_seeds": int(values.size),
    }


def _bootstrap_p_value(diff: np.ndarray) -> float:
    """Two-sided p: twice the smaller share of resampled differences at or beyond 0 on each side.

    It is the dual of the percentile CI (p < 1 - confidence roughly iff the CI excludes 0). The +1
    in numerator and denominator keeps a finite bootstrap from claiming p = 0.
    """
    finite = diff[np.isfinite(diff)]
    if finite.size == 0:
        return float("nan")
    tail = min(np.count_nonzero(finite <= 0), np.count_nonzero(finite >= 0))
    return float(min(1.0, 2.0 * (tail + 1) / (finite.size + 1)))


def paired_bootstrap(
    y_true: object,
    proba_a: object,
    proba_b: object,
    metric: MetricLike = "macro_f1",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Compare model A with model B on the same test examples (paired, stratified bootstrap).

    ``diff`` is oriented so that **positive means A is better**: ``metric(A) - metric(B)`` for
    higher-is-better metrics, ``metric(B) - metric(A)`` for losses (log_loss, brier, ece).

    Args:
        proba_a, proba_b: one (n, k) array each, or a list of (n, k) arrays / an (s, n, k) array
            per model for several training seeds; each model's metric is then averaged over its seeds
            in every resample (seeds of A and B need not match in number).

    Returns:
        ``{"metric": str, "higher_is_better": bool, "value_a": float, "value_b": float (seed means),
        "diff": float, "ci_low": float, "ci_high": float, "p_value": float (two-sided; 1.0 for
        identical predictions)}``.
    """
    check_bootstrap_args(n_boot, confidence)
    y = check_labels(y_true)
    pa = check_seed_probas(y, proba_a, "proba_a")
    pb = check_seed_probas(y, proba_b, "proba_b")
    if pa[0].shape[1] != pb[0].shape[1]:
        raise DataError(
            f"proba_a has {pa[0].shape[1]} classes but proba_b has {pb[0].shape[1]}; compare models of one task."
        )
    m = get_metric(metric)
    sign = 1.0 if m.higher_is_better else -1.0
    value_a = float(np.mean([m.fn(y, p) for p in pa]))
    value_b = float(np.mean([m.fn(y, p) for p in pb]))
    dist = _distributions(y, pa + pb, [m], n_boot, seed)[0]
    diff_dist = sign * (dist[: len(pa)].mean(axis=0) - dist[len(pa) :].mean(axis=0))
    lo, hi = percentile_ci(diff_dist, confidence)
    return {
        "metric": m.name,
        "higher_is_better": m.higher_is_better,
        "value_a": value_a,
        "value_b": value_b,
        "diff": float(sign * (value_a - value_b)),
        "ci_low": lo,
        "ci_high": hi,
        "p_value": _bootstrap_p_value(diff_dist),
    }


def _as_predictions(pred: object, n: int, name: str) -> np.ndarray:
    arr = np.asarray(pred)
    if arr.ndim == 2:  # probabilities: take the arg-max class
        arr = arr.argmax(axis=1)
    arr = check_labels(arr, name)
    if arr.size != n:
        raise DataError(f"{name} has {arr.size} predictions but y_true has {n} labels.")
    return arr


def mcnemar(y_true: object, pred_a: object, pred_b: object) -> dict:
    """McNemar's test of whether two classifiers make errors on different examples at equal rates.

    ``b`` = examples A gets right and B wrong, ``c`` = the reverse. With ``b + c < 25`` the exact
    two-sided binomial test on b ~ Bin(b + c, 1/2) is used; otherwise chi-square (1 df) with
    continuity correction, ``max(|b - c| - 1, 0)^2 / (b + c)`` (clamped so b == c gives p = 1).

    Args:
        pred_a, pred_b: (n,) predicted class indices, or (n, k) probabilities (arg-max is taken).

    Returns:
        ``{"b": int, "c": int, "statistic": float, "p_value": float, "method": "exact" | "chi2"}``;
        ``statistic`` is ``b`` for the exact test. No disagreements give p = 1.0.
    """
    y = check_labels(y_true)
    a_right = _as_predictions(pred_a, y.size, "pred_a") == y
    b_right = _as_predictions(pred_b, y.size, "pred_b") == y
    b = int(np.count_nonzero(a_right & ~b_right))
    c = int(np.count_nonzero(~a_right & b_right))
    if b + c == 0:
        return {"b": b, "c": c, "statistic": 0.0, "p_value": 1.0, "method": "exact"}
    if b + c < 25:
        p = binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
        return {"b": b, "c": c, "statistic": float(b), "p_value": float(min(1.0, p)), "method": "exact"}
    stat = max(abs(b - c) - 1, 0) ** 2 / (b + c)
    return {"b": b, "c": c, "statistic": float(stat), "p_value": float(chi2.sf(stat, df=1)), "method": "chi2"}
