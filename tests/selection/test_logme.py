"""LogME: the fixed point maximises the exact evidence, and its ordering follows how much label signal features carry."""

import itertools

import numpy as np
import pytest

from graftlab.core.errors import DataError
from graftlab.selection import log_evidence, logme, logme_evidence


def features(rng, labels, n_classes, strength, d=24):
    """Gaussian noise features; the first ``n_classes`` columns also carry ``strength`` × one-hot(label)."""
    x = rng.normal(size=(len(labels), d))
    x[:, :n_classes] += strength * np.eye(n_classes)[labels]
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_signal_beats_partial_signal_beats_noise(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 240)
    strong, partial, noise = (logme(features(rng, y, 3, s), y) for s in (3.0, 0.8, 0.0))
    assert strong > partial > noise


def test_more_signal_never_scores_lower():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    base = rng.normal(size=(300, 16))
    scores = []
    for s in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0):
        x = base.copy()
        x[:, :2] += s * np.eye(2)[y]
        scores.append(logme(x, y))
    assert all(b > a for a, b in itertools.pairwise(scores)), scores


@pytest.mark.parametrize(("n", "d"), [(80, 10), (30, 60)])  # more rows than dims, and fewer
def test_fixed_point_is_the_exact_evidence_at_a_maximum(n, d):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, d))
    t = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(float)
    ev, alpha, beta = logme_evidence(x, t, tol=1e-8)
    # the SVD shortcut equals the direct Gaussian marginal likelihood y ~ N(0, I/β + F Fᵀ/α)
    assert ev == pytest.approx(log_evidence(x, t, alpha, beta), abs=1e-9)
    for fa, fb in [(1.3, 1), (1 / 1.3, 1), (1, 1.3), (1, 1 / 1.3)]:
        assert log_evidence(x, t, alpha * fa, beta * fb) < ev


def test_feature_scale_does_not_change_the_score():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 150)
    x = features(rng, y, 3, 1.0)
    assert logme(10.0 * x, y) == pytest.approx(logme(x, y), abs=2e-3)


def test_label_permutation_is_irrelevant_but_shuffled_labels_score_lower():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 200)
    x = features(rng, y, 3, 2.0)
    relabelled = np.array([2, 0, 1])[y]
    assert logme(x, relabelled) == pytest.approx(logme(x, y), abs=1e-9)
    assert logme(x, rng.permutation(y)) < logme(x, y)


def test_bad_inputs_raise_data_errors():
    x = np.zeros((10, 3))
    with pytest.raises(DataError, match="two classes"):
        logme(x + np.arange(10)[:, None], np.zeros(10, dtype=int))
    with pytest.raises(DataError, match="shape"):
        logme(x, np.zeros(9, dtype=int))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="finite"):
        logme(bad, np.arange(10) % 2)


def test_degenerate_features_give_finite_scores():
    y = np.arange(30) % 3
    zero = logme(np.zeros((30, 5)), y)
    assert np.isfinite(zero)
    ev, alpha, beta = logme_evidence(np.zeros((30, 5)), (y == 0).astype(float))
    assert ev == pytest.approx(log_evidence(np.zeros((30, 5)), (y == 0).astype(float), alpha, beta), abs=1e-12)
    assert logme(np.eye(3)[y], y) > zero  # features that are the labels


def test_dead_feature_columns_change_nothing():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 50)
    x = features(rng, y, 2, 1.0, d=8)
    assert logme(np.c_[x, np.zeros((50, 4))], y) == pytest.approx(logme(x, y), abs=1e-9)
