"""Metrics against hand-checked examples, and the batched bootstrap forms against the sklearn definitions."""

import json
import math

import numpy as np
import pytest

from graftlab.core.errors import ConfigError, DataError
from graftlab.evaluation import HEADLINE_METRICS, classification_metrics, get_metric

# Binary example, worked by hand. Predictions: 0, 1, 1, 1 (the second is wrong).
Y_BIN = np.array([0, 0, 1, 1])
P_BIN = np.array([[0.9, 0.1], [0.42, 0.58], [0.35, 0.65], [0.22, 0.78]])


def test_binary_example_matches_hand_computation():
    m = classification_metrics(Y_BIN, P_BIN, ["neg", "pos"])
    assert m["accuracy"] == pytest.approx(0.75)
    # class 0: P = 1/1, R = 1/2, F1 = 2/3; class 1: P = 2/3, R = 2/2, F1 = 0.8
    assert m["per_class"]["neg"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_class"]["pos"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["macro_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["macro_recall"] == pytest.approx(0.75)
    assert m["weighted_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    # positives score 0.65, 0.78; negatives 0.10, 0.58: every pair ordered correctly
    assert m["roc_auc"] == pytest.approx(1.0)
    assert m["log_loss"] == pytest.approx(-(np.log(0.9) + np.log(0.42) + np.log(0.65) + np.log(0.78)) / 4)
    # sum over both classes per example: .02, .6728, .245, .0968
    assert m["brier"] == pytest.approx((0.02 + 0.6728 + 0.245 + 0.0968) / 4)
    # each confidence sits alone in its 1/15-wide bin: ECE = mean |correct - confidence|
    assert m["ece"] == pytest.approx((0.1 + 0.58 + 0.35 + 0.22) / 4)
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["n"] == 4


def test_roc_auc_counts_ties_as_half():
    y = np.array([0, 1, 0, 1])
    p1 = np.array([0.3, 0.3, 0.2, 0.8])  # one tied pos/neg pair out of four
    assert HEADLINE_METRICS["roc_auc"](y, p1) == pytest.approx(3.5 / 4)


def test_multiclass_unpredicted_class_scores_zero():
    y = np.array([0, 1, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.6, 0.3]])  # class 2 never predicted
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_class"]["b"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]


def test_degenerate_inputs_give_nan_auc_not_an_error():
    y = np.zeros(5, dtype=int)
    p = np.tile([0.7, 0.3], (5, 1))
    m = classification_metrics(y, p, ["a", "b"])
    assert math.isnan(m["roc_auc"])
    assert m["accuracy"] == 1.0
    json.dumps(m)  # plain Python types only


def test_one_dimensional_binary_proba_is_the_positive_class():
    assert classification_metrics(Y_BIN, P_BIN[:, 1])["log_loss"] == pytest.approx(
        classification_metrics(Y_BIN, P_BIN)["log_loss"]
    )


def test_results_are_plain_python_types():
    m = classification_metrics(Y_BIN, P_BIN.astype(np.float32), ["neg", "pos"])
    assert all(type(m[name]) is float for name in HEADLINE_METRICS)
    assert type(m["per_class"]["neg"]["support"]) is int


def test_directions():
    lower = {n for n, m in HEADLINE_METRICS.items() if not m.higher_is_better}
    assert lower == {"log_loss", "brier", "ece"}


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 1], [[0.5, 0.6], [0.5, 0.5]], "sum to 1"),
        ([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]], "rows"),
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], "class index 2"),
        ([0.5, 1], [[0.5, 0.5], [0.5, 0.5]], "integer"),
        ([0, 1], [[2.0, -1.0], [0.5, 0.5]], "logits"),
    ],
)
def test_bad_inputs_raise_data_error(y, p, match):
    with pytest.raises(DataError, match=match):
        classification_metrics(np.array(y), np.array(p))


def test_label_names_must_match_classes():
    with pytest.raises(DataError, match="one name per class"):
        classification_metrics(Y_BIN, P_BIN, ["only_one"])


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(ConfigError, match="Known metrics: accuracy"):
        get_metric("f2")


def _random_case(rng, n, k, rare):
    # Skewed classes and noisy predictions so resamples hit absent / unpredicted classes.
    weights = np.array([1.0] * (k - 1) + [rare])
    y = rng.choice(k, size=n, p=weights / weights.sum())
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("name", list(HEADLINE_METRICS))
def test_batched_form_equals_definition_on_every_resample(name, k):
    rng = np.random.default_rng(k)
    y, p = _random_case(rng, n=60, k=k, rare=0.1)
    # plain (unstratified) resamples, some smaller than n: classes go missing in some rows
    idx = rng.integers(0, y.size, size=(40, 25))
    m = HEADLINE_METRICS[name]
    if m.batched is None:
        pytest.skip(f"{name} has no batched form: the bootstrap scores each resample with its definition")
    batched = m.batched(y, p, idx)
    expected = np.array([m.fn(y[r], p[r]) for r in idx])
    np.testing.assert_allclose(batched, expected, rtol=1e-10, atol=1e-12, equal_nan=True)
    if name == "roc_auc":
        assert np.isnan(expected).any()  # the case does exercise undefined resamples
