"""Drift statistics on synthetic vectors: power against a shift, false alarms without one, Holm's rule."""

import numpy as np
import pytest

from graftlab.monitoring import (
    class_chi2,
    confidence_ks,
    domain_classifier_test,
    drift_alarm,
    empty_rate_test,
    holm,
    input_length_test,
    mmd_test,
)
from graftlab.monitoring.drift import DriftTest, unavailable


def gaussians(seed: int, shift: float = 0.0, n: int = 120, d: int = 8):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, d)) + shift


def test_mmd_detects_a_mean_shift():
    ref, live = gaussians(0, shift=0.5)
    res = mmd_test(ref, live, n_permutations=300, seed=0)
    assert res.p_value < 0.01 and res.statistic > 0
    assert res.detail["bandwidth"] > 0 and res.detail["permutations"] == 300


def test_mmd_false_positive_rate_and_uniform_p_values_without_drift():
    ps = np.array([mmd_test(*gaussians(seed), n_permutations=200, seed=seed).p_value for seed in range(40)])
    assert np.mean(ps < 0.05) <= 0.10
    assert 0.3 < ps.mean() < 0.7  # p-values under the null are roughly uniform (mean 0.5)
    assert np.mean(ps < 0.5) == pytest.approx(0.5, abs=0.2)


def test_mmd_is_invariant_to_scale_through_the_median_bandwidth():
    ref, live = gaussians(3, shift=0.3)
    a = mmd_test(ref, live, n_permutations=99, seed=1)
    b = mmd_test(ref * 100.0, live * 100.0, n_permutations=99, seed=1)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-6)
    assert a.p_value == pytest.approx(b.p_value)


def test_mmd_p_value_never_zero():
    ref, live = gaussians(0, shift=5.0)
    res = mmd_test(ref, live, n_permutations=99, seed=0)
    assert res.p_value == pytest.approx(1 / 100)


def test_domain_classifier_auc_near_half_without_drift_and_high_with():
    same = domain_classifier_test(*gaussians(1), seed=0)
    shifted = domain_classifier_test(*gaussians(1, shift=0.6), seed=0)
    assert abs(same.statistic - 0.5) < 0.12 and same.p_value > 0.01
    assert shifted.statistic > 0.8 and shifted.p_value < 1e-6
    assert shifted.detail["auc"] == shifted.statistic


def test_confidence_ks_alarm():
    rng = np.random.default_rng(0)
    ref = rng.beta(8, 2, 300)
    assert confidence_ks(ref, rng.beta(8, 2, 200)).p_value > 0.01
    low = confidence_ks(ref, rng.beta(3, 3, 200))
    assert low.p_value < 1e-6 and low.detail["live_mean"] < low.detail["reference_mean"]


def test_class_chi2_alarm_and_shares():
    names = ["a", "b", "c"]
    same = class_chi2([100, 60, 40], [52, 28, 20], names)
    assert same.p_value > 0.5
    shifted = class_chi2([100, 60, 40], [10, 20, 70], names)
    assert shifted.p_value < 1e-10
    assert shifted.detail["live_share"] == [0.1, 0.2, 0.7]
    # a class nobody predicted does not break the test
    assert class_chi2([100, 0, 40], [50, 0, 20], names).p_value > 0.5


def test_input_length_and_empty_rate():
    rng = np.random.default_rng(0)
    words = rng.normal(70, 30, 500).clip(1)
    ref = {"mean": float(words.mean()), "std": float(words.std())}
    assert input_length_test(ref, 500, rng.normal(70, 30, 200).clip(1)).p_value > 0.01
    short = input_length_test(ref, 500, np.full(200, 3))
    assert short.p_value < 1e-10 and short.detail["live_mean"] == 3
    assert empty_rate_test(0.0, 500, 1, 200).p_value > 0.1  # one empty input is no evidence
    many = empty_rate_test(0.0, 500, 30, 200)
    assert many.p_value < 1e-6 and many.statistic == pytest.approx(0.15)


def test_holm_adjusted_p_values():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # adjusted p never decreases with rank


def test_drift_alarm_uses_holm_and_skips_unavailable_tests():
    tests = [DriftTest("a", 1.0, 0.02), DriftTest("b", 1.0, 0.4), unavailable("c", "no text")]
    alarm = drift_alarm(tests, alpha=0.05)
    assert alarm["n_tests"] == 2  # the unavailable test does not count towards the correction
    assert tests[0].p_adjusted == pytest.approx(0.04) and alarm["alarm"] and alarm["rejected"] == ["a"]
    strict = [DriftTest("a", 1.0, 0.03), DriftTest("b", 1.0, 0.4), DriftTest("c", 1.0, 0.5)]
    assert not drift_alarm(strict, 0.05)["alarm"]  # 0.03 * 3 = 0.09: a single test at 0.03 is not enough
    loud = [DriftTest("a", 1.0, 1e-6), DriftTest("b", 1.0, 0.4)]
    res = drift_alarm(loud, 0.05)
    assert res["alarm"] and res["rejected"] == ["a"] and loud[0].rejected and not loud[1].rejected
    assert tests[2].p_adjusted is None and not tests[2].rejected
