"""Drift statistics: each compares the model's reference profile with live traffic and gives a p-value.

* ``mmd``: maximum mean discrepancy between embeddings, RBF kernel with the median-heuristic bandwidth,
  p-value by permutation of the pooled sample;
* ``domain_classifier``: a logistic regression that tells reference from live embeddings; its
  cross-validated AUC is ~0.5 without drift (p-value: one-sided Mann-Whitney U on the out-of-fold scores);
* ``confidence_ks``: two-sample Kolmogorov-Smirnov on the top-class confidence;
* ``class_chi2``: chi-square test of homogeneity of the predicted-class counts;
* ``input_length``: Welch's t-test on words per input against the reference mean and std;
* ``brightness`` (image models): Welch's t-test on the mean brightness of each image, likewise;
* ``empty_rate``: one-sided Fisher exact test, more empty inputs live than in the reference.

:func:`drift_alarm` combines them with Holm's step-down procedure, which controls the probability of
any false alarm (family-wise error rate) at ``alpha`` under any dependence between the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "ALARM_RULE",
    "DriftTest",
    "class_chi2",
    "confidence_ks",
    "domain_classifier_test",
    "drift_alarm",
    "empty_rate_test",
    "holm",
    "input_length_test",
    "brightness_test",
    "profile_test",
    "median_bandwidth",
    "mmd_test",
    "unavailable",
]

ALARM_RULE = ("drift alarm when any available test rejects 'no drift' after Holm's step-down correction at "
              "family-wise level alpha (the chance of a false alarm over all tests together is at most alpha)")


@dataclass
class DriftTest:
    """One test's outcome. ``p_value`` is None when the test could not run (``message`` says why)."""

    name: str
    statistic: float | None
    p_value: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    p_adjusted: float | None = None
    rejected: bool = False

    @property
    def available(self) -> bool:
        return self.p_value is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "available": self.available}


def unavailable(name: str, message: str) -> DriftTest:
    return DriftTest(name, None, None, message=message)


def _as_2d(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or len(arr) < 2:
        raise ValueError(f"{what} must be a 2-d array with at least 2 rows; got shape {arr.shape}")
    return arr


def _sq_distances(z: np.ndarray) -> np.ndarray:
    sq = (z * z).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * z @ z.T  # (N, N)
    return np.maximum(d, 0.0)


def median_bandwidth(sq_dist: np.ndarray) -> float:
    """The median heuristic: the median of the off-diagonal squared distances (1.0 if all are zero)."""
    off = sq_dist[~np.eye(len(sq_dist), dtype=bool)]
    med = float(np.median(off)) if off.size else 0.0
    return med if med > 0 else 1.0


def _mmd2_from_sums(sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray, m: int, n: int) -> np.ndarray:
    # unbiased MMD^2; the RBF kernel has k(x, x) = 1, so each diagonal contributes m (resp. n)
    return (sxx - m) / (m * (m - 1)) + (syy - n) / (n * (n - 1)) - 2.0 * sxy / (m * n)


def mmd_test(reference: Any, live: Any, n_permutations: int = 1000, seed: int = 0) -> DriftTest:
    """Unbiased MMD^2 between two samples with an RBF kernel and a permutation p-value.

    Args:
        reference, live: (m, d) and (n, d) arrays (e.g. sentence embeddings).
        n_permutations: random relabelings of the pooled sample.
        seed: seed of the permutations.

    Returns:
        ``statistic`` = MMD^2; ``p_value`` = (1 + #permuted >= observed) / (1 + n_permutations).
    """
    x, y = _as_2d(reference, "reference"), _as_2d(live, "live")
    m, n = len(x), len(y)
    z = np.vstack([x, y])  # (N, d)
    d = _sq_distances(z)
    bandwidth = median_bandwidth(d)
    k = np.exp(-d / bandwidth)  # (N, N); exp(-||a-b||^2 / median)
    total, rows = k.sum(), k.sum(1)

    def stat(w: np.ndarray) -> np.ndarray:
        """w: (N, P) indicator of the 'reference' role -> (P,) MMD^2."""
        sxx = (w * (k @ w)).sum(0)
        sxy = w.T @ rows - sxx
        syy = total - sxx - 2.0 * sxy
        return _mmd2_from_sums(sxx, syy, sxy, m, n)

    observed = float(stat(np.r_[np.ones(m), np.zeros(n)][:, None])[0])
    rng = np.random.default_rng(seed)
    exceed, done = 0, 0
    while done < n_permutations:  # chunks keep memory at N x 200
        p = min(200, n_permutations - done)
        w = np.zeros((m + n, p))
        for j in range(p):
            w[rng.permutation(m + n)[:m], j] = 1.0
        exceed += int(np.count_nonzero(stat(w) >= observed - 1e-12))
        done += p
    p_value = (1 + exceed) / (1 + n_permutations)
    return DriftTest("mmd", observed, float(p_value),
                     {"n_reference": m, "n_live": n, "bandwidth": bandwidth, "permutations": n_permutations})


def domain_classifier_test(reference: Any, live: Any, folds: int = 5, seed: int = 0) -> DriftTest:
    """Cross-validated AUC of a logistic regression separating live from reference rows.

    The p-value is a one-sided Mann-Whitney U test of the out-of-fold scores (live scored higher); the
    scores of different folds are not exactly exchangeable, and cross-validation biases the AUC
    slightly below 0.5 without drift, so the test errs on the conservative side.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _as_2d(reference, "reference"), _as_2d(live, "live")
    z = np.vstack([x, y])
    target = np.r_[np.zeros(len(x)), np.ones(len(y))]
    folds = max(2, min(folds, len(x), len(y)))
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, solver="liblinear"))  # binary: liblinear is fastest
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    score = cross_val_predict(clf, z, target, cv=cv, method="decision_function")
    live_s, ref_s = score[target == 1], score[target == 0]
    u = stats.mannwhitneyu(live_s, ref_s, alternative="greater")
    auc = float(u.statistic / (len(live_s) * len(ref_s)))
    return DriftTest("domain_classifier", auc, float(u.pvalue), {"auc": auc, "folds": folds, "n_reference": len(x),
                                                                  "n_live": len(y)})


def confidence_ks(reference: Sequence[float], live: Sequence[float]) -> DriftTest:
    """Two-sample KS test on the top-class confidence (scipy.stats.ks_2samp)."""
    a, b = np.asarray(reference, dtype=float), np.asarray(live, dtype=float)
    res = stats.ks_2samp(a, b)
    return DriftTest("confidence_ks", float(res.statistic), float(res.pvalue),
                     {"reference_mean": float(a.mean()), "live_mean": float(b.mean()), "n_reference": len(a),
                      "n_live": len(b)})


def class_chi2(reference_counts: Sequence[int], live_counts: Sequence[int], label_names: Sequence[str]) -> DriftTest:
    """Chi-square test that reference and live predicted-class counts share one distribution."""
    table = np.array([reference_counts, live_counts], dtype=float)  # (2, k)
    ref_share = (table[0] / max(table[0].sum(), 1)).round(4).tolist()
    live_share = (table[1] / max(table[1].sum(), 1)).round(4).tolist()
    detail = {"labels": list(label_names), "reference_share": ref_share, "live_share": live_share,
              "reference_counts": table[0].astype(int).tolist(), "live_counts": table[1].astype(int).tolist()}
    keep = table.sum(0) > 0
    if keep.sum() < 2 or table[1].sum() == 0:
        return DriftTest("class_chi2", 0.0, 1.0, detail, "fewer than two classes were ever predicted")
    res = stats.chi2_contingency(table[:, keep])
    return DriftTest("class_chi2", float(res.statistic), float(res.pvalue), {**detail, "dof": int(res.dof)})


def input_length_test(reference: dict[str, Any], n_reference: int, live_words: Sequence[int]) -> DriftTest:
    """Welch's t-test: live words per input against the reference ``{"mean", "std"}`` over ``n_reference``."""
    return profile_test("input_length", reference, n_reference, live_words)


def brightness_test(reference: dict[str, Any], n_reference: int, live_brightness: Sequence[float]) -> DriftTest:
    """Welch's t-test: live mean brightness per image (in [0, 1]) against the reference ``{"mean", "std"}``."""
    return profile_test("brightness", reference, n_reference, live_brightness)


def profile_test(name: str, reference: dict[str, Any], n_reference: int, live: Sequence[float]) -> DriftTest:
    """Welch's t-test of a per-input statistic against the reference's ``{"mean", "std"}`` over ``n_reference``."""
    w = np.asarray(live, dtype=float)
    ref_mean, ref_std = float(reference["mean"]), float(reference["std"])
    live_std = float(w.std(ddof=1)) if len(w) > 1 else 0.0
    detail = {"reference_mean": ref_mean, "reference_std": ref_std, "live_mean": float(w.mean()), "live_std": live_std,
              "live_quantiles": np.quantile(w, [0, 0.25, 0.5, 0.75, 1]).tolist()}
    if ref_std == 0 and live_std == 0:
        same = np.isclose(w.mean(), ref_mean)
        return DriftTest(name, 0.0 if same else float("inf"), 1.0 if same else 0.0, detail)
    res = stats.ttest_ind_from_stats(w.mean(), live_std, len(w), ref_mean, ref_std, n_reference, equal_var=False)
    return DriftTest(name, float(res.statistic), float(res.pvalue), detail)


def empty_rate_test(reference_rate: float, n_reference: int, live_empty: int, n_live: int) -> DriftTest:
    """One-sided Fisher exact test: a higher share of empty inputs live than in the reference."""
    ref_empty = round(reference_rate * n_reference)
    table = [[live_empty, n_live - live_empty], [ref_empty, n_reference - ref_empty]]
    res = stats.fisher_exact(table, alternative="greater")
    return DriftTest("empty_rate", live_empty / max(n_live, 1), float(res.pvalue),
                     {"reference_rate": float(reference_rate), "live_rate": live_empty / max(n_live, 1),
                      "live_empty": int(live_empty), "n_live": int(n_live)})


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (reject where adjusted p < alpha)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    scaled = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty_like(p)
    out[order] = adjusted
    return out


def drift_alarm(tests: list[DriftTest], alpha: float = 0.05) -> dict[str, Any]:
    """Apply Holm's correction over the available tests (in place) and say whether the alarm fires.

    Returns:
        ``{"alarm", "alpha", "rule", "n_tests", "rejected": [names], "min_p_adjusted"}``.
    """
    used = [t for t in tests if t.available]
    if used:
        for t, adj in zip(used, holm([t.p_value for t in used]), strict=True):
            t.p_adjusted = float(adj)
            t.rejected = bool(adj < alpha)
    rejected = [t.name for t in used if t.rejected]
    return {"alarm": bool(rejected), "alpha": alpha, "rule": ALARM_RULE, "n_tests": len(used), "rejected": rejected,
            "min_p_adjusted": min((t.p_adjusted for t in used), default=None)}
