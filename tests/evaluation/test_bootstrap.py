"""Bootstrap CIs, seed averaging, paired comparisons and McNemar."""

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest, chi2

from graftlab.core.errors import ConfigError
from graftlab.evaluation import (
    bootstrap_ci,
    get_metric,
    mcnemar,
    metrics_with_ci,
    paired_bootstrap,
    seed_averaged,
)
from graftlab.evaluation.bootstrap import resample_chunks


def predictions_with_accuracy(rng, n, acc, k=2, confidence=0.9):
    """Labels and probabilities whose arg-max is right with probability ``acc``, independently."""
    y = rng.integers(0, k, size=n)
    correct = rng.random(n) < acc
    wrong = (y + rng.integers(1, k, size=n)) % k
    top = np.where(correct, y, wrong)
    p = np.full((n, k), (1 - confidence) / (k - 1))
    p[np.arange(n), top] = confidence
    return y, p


def test_accuracy_ci_covers_truth_about_95_percent():
    # 200 test sets of n=200 with true accuracy 0.8. The percentile bootstrap runs a little under
    # nominal at this n; with 200 repetitions the coverage estimate has SE ~0.015, so we accept
    # 0.90-0.99 (about 3 SE below and 2.5 above 0.95).
    rng = np.random.default_rng(12345)
    hits = 0
    for rep in range(200):
        y, p = predictions_with_accuracy(rng, 200, 0.8)
        ci = bootstrap_ci(y, p, "accuracy", n_boot=1000, seed=rep)
        hits += ci["ci_low"] <= 0.8 <= ci["ci_high"]
    assert 0.90 <= hits / 200 <= 0.99


def test_stratified_resamples_keep_class_counts():
    y = np.array([0] * 7 + [1] * 3 + [2] * 20)
    (idx,) = list(resample_chunks(y, 50, seed=0))
    assert idx.shape == (50, 30)
    assert (y[idx] == y).all()  # each column draws within its own class
    assert len({tuple(r) for r in idx}) > 1


def test_resample_chunks_bound_memory_and_cover_n_boot():
    y = np.arange(300_000) % 2
    chunks = list(resample_chunks(y, 20, seed=0))
    assert len(chunks) > 1 and sum(c.shape[0] for c in chunks) == 20


def test_metrics_with_ci_shares_resamples_and_matches_single_calls():
    rng = np.random.default_rng(1)
    y, p = predictions_with_accuracy(rng, 150, 0.7, k=3)
    many = metrics_with_ci(y, p, ("accuracy", "macro_f1", "log_loss", "ece", "roc_auc"), n_boot=300, seed=4)
    for name, res in many.items():
        assert res == bootstrap_ci(y, p, name, n_boot=300, seed=4)
        assert res["ci_low"] <= res["value"] <= res["ci_high"] or name == "ece"  # ECE's bootstrap is biased up
    json.dumps(many)


def test_custom_callable_metric_uses_the_loop_and_agrees():
    rng = np.random.default_rng(2)
    y, p = predictions_with_accuracy(rng, 80, 0.75)

    def my_accuracy(yt, pp):
        return float((pp.argmax(1) == yt).mean())

    assert bootstrap_ci(y, p, my_accuracy, n_boot=200) == bootstrap_ci(y, p, "accuracy", n_boot=200)


def test_undefined_metric_gives_nan_not_an_error():
    y = np.zeros(20, dtype=int)
    p = np.tile([0.6, 0.4], (20, 1))
    res = bootstrap_ci(y, p, "roc_auc", n_boot=100)
    assert all(math.isnan(res[key]) for key in ("value", "ci_low", "ci_high"))


def test_bad_bootstrap_parameters():
    y, p = np.array([0, 1]), np.array([[0.6, 0.4], [0.3, 0.7]])
    with pytest.raises(ConfigError, match="'confidence'"):
        bootstrap_ci(y, p, "accuracy", confidence=95)
    with pytest.raises(ConfigError, match="'n_boot'"):
        bootstrap_ci(y, p, "accuracy", n_boot=0)


def test_seed_averaged_mean_std_and_ci():
    rng = np.random.default_rng(3)
    y, _ = predictions_with_accuracy(rng, 300, 0.8, k=3)
    probas = []
    for acc in (0.6, 0.7, 0.8):
        correct = rng.random(300) < acc
        top = np.where(correct, y, (y + 1) % 3)
        p = np.full((300, 3), 0.05)
        p[np.arange(300), top] = 0.9
        probas.append(p)
    res = seed_averaged(y, probas, "accuracy", n_boot=500)
    per_seed = [float((p.argmax(1) == y).mean()) for p in probas]
    assert res["values"] == pytest.approx(per_seed)
    assert res["mean"] == res["value"] == pytest.approx(np.mean(per_seed))
    assert res["std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert res["n_seeds"] == 3 and res["metric"] == "accuracy"
    assert res["ci_low"] < res["mean"] < res["ci_high"]
    assert math.isnan(seed_averaged(y, probas[:1], "accuracy", n_boot=50)["std"])
    assert seed_averaged(y, np.stack(probas), "accuracy", n_boot=500) == res


def test_paired_identical_predictions():
    rng = np.random.default_rng(4)
    y, p = predictions_with_accuracy(rng, 100, 0.7)
    for metric in ("macro_f1", "log_loss"):
        res = paired_bootstrap(y, p, p.copy(), metric, n_boot=500)
        assert res["diff"] == 0.0 and res["ci_low"] == 0.0 and res["ci_high"] == 0.0
        assert res["p_value"] == 1.0


def test_paired_clearly_better_model():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=300)
    good = np.where(rng.random(300) < 0.9, y, 1 - y)
    bad = np.where(rng.random(300) < 0.6, y, 1 - y)
    pa, pb = np.eye(2)[good] * 0.8 + 0.1, np.eye(2)[bad] * 0.8 + 0.1
    res = paired_bootstrap(y, pa, pb, "accuracy", n_boot=1000)
    assert res["diff"] == pytest.approx(res["value_a"] - res["value_b"])
    assert res["diff"] > 0.2 and res["ci_low"] > 0 and res["p_value"] < 0.05
    # no resampled difference reaches 0: p is the two-sided floor 2 / (n_boot + 1), not 0
    assert res["p_value"] == pytest.approx(2 / 1001)
    swapped = paired_bootstrap(y, pb, pa, "accuracy", n_boot=1000)
    assert swapped["diff"] == pytest.approx(-res["diff"]) and swapped["ci_high"] < 0
    assert swapped["p_value"] == res["p_value"]


def test_paired_diff_is_oriented_so_positive_means_a_is_better_for_losses():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, size=200)
    calibrated = np.eye(2)[y] * 0.6 + 0.2  # right, 0.8 confident
    overconfident_wrong = np.eye(2)[1 - y] * 0.98 + 0.01
    res = paired_bootstrap(y, calibrated, overconfident_wrong, "log_loss", n_boot=300)
    assert res["higher_is_better"] is False
    assert res["value_a"] < res["value_b"] and res["diff"] > 0 and res["ci_low"] > 0


def test_paired_with_seed_lists_averages_each_side():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, size=120)

    def model(acc, seed):
        r = np.random.default_rng(seed)
        top = np.where(r.random(120) < acc, y, (y + 1) % 3)
        return np.eye(3)[top] * 0.7 + 0.1

    a = [model(0.85, s) for s in range(3)]
    b = [model(0.6, s) for s in range(10, 12)]
    res = paired_bootstrap(y, a, b, "macro_f1", n_boot=400)
    expected = np.mean([get_metric("macro_f1")(y, p) for p in a]) - np.mean([get_metric("macro_f1")(y, p) for p in b])
    assert res["diff"] == pytest.approx(expected)
    assert res["ci_low"] > 0 and res["p_value"] < 0.05


def test_mcnemar_exact_matches_binomtest():
    y = np.zeros(30, dtype=int)
    a = np.zeros(30, dtype=int)
    b = np.zeros(30, dtype=int)
    b[:8] = 1  # A right, B wrong: 8
    a[8:10] = 1  # A wrong, B right: 2
    res = mcnemar(y, a, b)
    assert (res["b"], res["c"], res["method"]) == (8, 2, "exact")
    assert res["p_value"] == pytest.approx(binomtest(8, 10, 0.5).pvalue)
    assert res["p_value"] == pytest.approx(0.109375)  # 2 * P(X <= 2 | Bin(10, 1/2)) = 2 * 56/1024


def test_mcnemar_chi_square_with_continuity_correction():
    y = np.zeros(100, dtype=int)
    a, b = np.zeros(100, dtype=int), np.zeros(100, dtype=int)
    b[:40] = 1
    a[40:60] = 1
    res = mcnemar(y, a, b)
    assert (res["b"], res["c"], res["method"]) == (40, 20, "chi2")
    assert res["statistic"] == pytest.approx(19**2 / 60)
    assert res["p_value"] == pytest.approx(chi2.sf(19**2 / 60, 1))


def test_mcnemar_identical_and_balanced_disagreements_give_p_one():
    y = np.array([0, 1, 1, 0])
    assert mcnemar(y, y, y)["p_value"] == 1.0
    y = np.zeros(60, dtype=int)
    a, b = np.zeros(60, dtype=int), np.zeros(60, dtype=int)
    b[:15], a[15:30] = 1, 1
    assert mcnemar(y, a, b)["p_value"] == 1.0
    probs = np.eye(2)[a]
    assert mcnemar(y, probs, b) == mcnemar(y, a, b)  # probabilities are arg-maxed
