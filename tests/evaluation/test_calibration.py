"""ECE, reliability curves and temperature scaling on synthetic data with known calibration."""

import numpy as np
import pytest

from graftlab.core.errors import ConfigError, DataError
from graftlab.evaluation import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    logits_from_proba,
    reliability_curve,
    separates,
    softmax,
)


def calibrated_binary(rng, n):
    """Top-label confidence c ~ U(0.5, 1) and the prediction right with probability exactly c."""
    conf = rng.uniform(0.5, 1.0, size=n)
    top = rng.integers(0, 2, size=n)
    y = np.where(rng.random(n) < conf, top, 1 - top)
    p = np.empty((n, 2))
    p[np.arange(n), top] = conf
    p[np.arange(n), 1 - top] = 1 - conf
    return y, p


def calibrated_logits(rng, n, k):
    """Logits of a perfectly calibrated model: labels are drawn from softmax(logits)."""
    z = rng.normal(scale=1.5, size=(n, k))
    p = softmax(z)
    y = (rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1)
    return z, y


def test_ece_near_zero_when_calibrated():
    y, p = calibrated_binary(np.random.default_rng(0), 100_000)
    assert expected_calibration_error(y, p) < 0.01


def test_ece_of_constant_overconfidence():
    # always 0.9 confident, right 60% of the time: one bin, gap 0.3
    y = np.array([0] * 6 + [1] * 4)
    p = np.tile([0.9, 0.1], (10, 1))
    assert expected_calibration_error(y, p) == pytest.approx(0.3)


def test_bins_are_upper_inclusive():
    # with 4 bins (edges exact in binary), confidence 0.75 belongs to (0.5, 0.75], not (0.75, 1]
    y = np.array([0, 1])
    p = np.array([[0.75, 0.25], [0.8, 0.2]])
    curve = reliability_curve(y, p, n_bins=4)
    assert curve["bin_upper"] == [0.75, 1.0]
    assert curve["count"] == [1, 1]


def test_reliability_curve_omits_empty_bins_and_adds_up():
    rng = np.random.default_rng(1)
    y, p = calibrated_binary(rng, 2000)
    curve = reliability_curve(y, p, n_bins=10)
    assert sum(curve["count"]) == 2000
    # confidences lie in (0.5, 1]: the five bins below 0.5 are empty and left out
    assert curve["bin_lower"] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert len({len(v) for v in curve.values()}) == 1
    assert np.allclose(curve["confidence"], curve["accuracy"], atol=0.06)
    # the curve's weighted gap is the ECE with the same bins
    gap = sum(c * abs(a - f) for c, a, f in zip(curve["count"], curve["accuracy"], curve["confidence"])) / 2000
    assert gap == pytest.approx(expected_calibration_error(y, p, n_bins=10))


def test_temperature_scaling_fixes_overconfident_logits():
    rng = np.random.default_rng(2)
    z, y = calibrated_logits(rng, 6000, 4)
    hot = 5.0 * z  # same ranking, five times too confident
    t = fit_temperature(hot, y)
    assert 4.0 < t < 6.0
    before = expected_calibration_error(y, softmax(hot))
    after = expected_calibration_error(y, apply_temperature(hot, t))
    assert before > 0.1 and after < 0.03 and after < before / 4
    assert fit_temperature(z, y) == pytest.approx(1.0, abs=0.15)


def test_temperature_from_probabilities_only():
    rng = np.random.default_rng(3)
    z, y = calibrated_logits(rng, 4000, 3)
    sharp = softmax(z, temperature=0.25)  # a probabilities-only model, 4x over-confident
    assert fit_temperature(logits_from_proba(sharp), y) == pytest.approx(4.0, rel=0.25)


def test_a_validation_set_without_errors_leaves_the_temperature_at_one():
    """Every row right: the NLL falls as T -> 0, so a fit would run to its bound (p = 1.0 for anything)."""
    z = np.array([[2.0, 0.5], [0.1, 1.7], [3.0, -1.0], [0.0, 0.4]])
    y = np.array([0, 1, 0, 1])
    assert separates(z, y) and fit_temperature(z, y) == 1.0
    wrong = np.array([0, 1, 0, 0])  # one error: the NLL now has a minimum, and it is fitted
    assert not separates(z, wrong) and fit_temperature(z, wrong) != 1.0
    tie = np.array([[1.0, 1.0], [0.1, 1.7]])
    assert separates(tie, np.array([0, 1])) and fit_temperature(tie, np.array([0, 1])) == 1.0  # a tie is no error


def test_softmax_rows_and_argument_checks():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    p = softmax(z, temperature=2.0)
    assert np.allclose(p.sum(axis=1), 1) and np.allclose(p[1], 1 / 3)
    assert np.allclose(softmax(logits_from_proba(p)), p)  # log-probabilities work as logits
    with pytest.raises(ConfigError, match="'temperature'"):
        softmax(z, temperature=0)
    with pytest.raises(DataError, match="logits_from_proba"):
        fit_temperature(np.array([[-np.inf, 0.0]]), [1])  # what np.log(0) gives
    with pytest.raises(ConfigError, match="'n_bins'"):
        expected_calibration_error([0], [[0.5, 0.5]], n_bins=0)
