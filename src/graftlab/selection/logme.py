"""LogME: how well frozen features explain the labels, without training anything.

Kaichao You, Yong Liu, Jianmin Wang, Mingsheng Long. "LogME: Practical Assessment of Pre-trained
Models for Transfer Learning". ICML 2021 (arXiv:2102.11005).

For features F (n, d) and one target y (n,), consider Bayesian linear regression
``y = F w + ε`` with prior ``w ~ N(0, α⁻¹ I)`` and noise ``ε ~ N(0, β⁻¹ I)``. The evidence (marginal
likelihood) ``p(y | F, α, β)`` is maximised over (α, β) with the paper's fixed-point iteration; LogME
is the maximised log evidence divided by n, averaged over classes (one-vs-rest 0/1 targets for
classification). Higher is better; values are comparable across backbones on the same data.

With ``F = U diag(s) Vᵀ`` (thin SVD, k = min(n, d) singular values, σ = s²) and ``x = Uᵀ y``, every
quantity is a sum over the k directions, so an iteration costs O(k) after one SVD:

- ``m = β A⁻¹ Fᵀ y`` with ``A = α I + β FᵀF``: the posterior mean weights
- ``γ = Σ βσᵢ / (α + βσᵢ)``: the effective number of parameters
- ``α ← γ / mᵀm``, ``β ← (n − γ) / ‖F m − y‖²``
- ``log p = d/2 log α + n/2 log β − ½ log|A| − β/2 ‖F m − y‖² − α/2 mᵀm − n/2 log 2π``
"""

from __future__ import annotations

import numpy as np

from ..core.errors import DataError

__all__ = ["log_evidence", "logme", "logme_evidence"]

# Guard against a zero residual or zero weights. The paper's code adds 1e-5, which biases the fixed
# point when mᵀm is small (wide features, n < d); a guard this small lets it reach the exact maximum.
_EPS = 1e-12


def _check(features: np.ndarray, n: int) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != n:
        raise DataError(f"LogME needs features of shape (n, d) with one row per label; got {f.shape} for {n} labels.")
    if f.shape[0] < 2 or not np.isfinite(f).all():
        raise DataError("LogME needs at least 2 rows of finite features.")
    return f


def log_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """Log evidence per example of ``target`` under the model above at a given (α, β) (direct O(d³) form).

    Used to check :func:`logme_evidence` and for small problems; ``y ~ N(0, β⁻¹ I + α⁻¹ F Fᵀ)``.
    """
    f = _check(features, len(target))
    y = np.asarray(target, dtype=np.float64)
    n = len(y)
    cov = np.eye(n) / beta + f @ f.T / alpha  # (n, n)
    _, logdet = np.linalg.slogdet(cov)
    quad = float(y @ np.linalg.solve(cov, y))
    return float(-0.5 * (n * np.log(2 * np.pi) + logdet + quad) / n)


def logme_evidence(features: np.ndarray, target: np.ndarray, max_iter: int = 100, tol: float = 1e-3,
                   _svd: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float, float]:
    """Maximise the evidence of one real-valued ``target`` (n,) given ``features`` (n, d).

    Returns:
        (log evidence / n, α, β) at the fixed point.
    """
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    if _svd is None:
        f = _check(features, len(y))
        u, s, _ = np.linalg.svd(f, full_matrices=False)  # u (n, k), s (k,)
        n, d = f.shape
    else:
        u, s = _svd
        n, d = len(y), int(np.shape(features)[1])
    keep = s > 1e-10 * s.max() if s.size and s.max() > 0 else np.zeros(len(s), dtype=bool)
    u, s = u[:, keep], s[keep]  # numerically zero directions belong to the null space of F
    sigma = s**2  # eigenvalues of FᵀF (the other d - k are 0)
    x2 = (u.T @ y) ** 2  # (k,) target energy along each direction
    rest = max(float(y @ y - x2.sum()), 0.0)  # energy outside the span of F: always residual
    if not len(sigma):  # features carry nothing: y ~ N(0, I/β), whatever α is
        beta = n / max(float(y @ y), _EPS)
        evidence = n / 2 * np.log(beta) - beta / 2 * float(y @ y) - n / 2 * np.log(2 * np.pi)
        return float(evidence / n), float("inf"), float(beta)
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        t = alpha / beta
        gamma = float((sigma / (sigma + t)).sum())
        m2 = float((sigma * x2 / (sigma + t) ** 2).sum())  # mᵀm
        res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + rest  # ‖F m − y‖²
        alpha = gamma / (m2 + _EPS)
        beta = (n - gamma) / (res2 + _EPS)
        if abs(alpha / beta - t) / t <= tol:
            break
    t = alpha / beta
    m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
    res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + rest
    # log|A| over all d eigenvalues: α + βσᵢ for the k directions of F, α for the d - k others
    logdet_a = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * np.log(alpha)
    evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * logdet_a
                - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi))
    return float(evidence / n), float(alpha), float(beta)


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME score of ``features`` (n, d) for class ``labels`` (n,): mean over classes of the
    maximised one-vs-rest log evidence per example. Higher means the labels are more linearly
    explainable from the features (You et al., ICML 2021).

    Raises:
        DataError: on mismatched shapes, non-finite features or fewer than two classes.
    """
    labels = np.asarray(labels).reshape(-1)
    f = _check(features, len(labels))
    classes = np.unique(labels)
    if len(classes) < 2:
        raise DataError(f"LogME needs at least two classes in the labels; got {len(classes)}.")
    u, s, _ = np.linalg.svd(f, full_matrices=False)  # one SVD shared by every class
    scores = [logme_evidence(f, (labels == c).astype(np.float64), _svd=(u, s))[0] for c in classes]
    return float(np.mean(scores))
