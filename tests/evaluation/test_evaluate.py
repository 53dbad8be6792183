"""``evaluate_predictions``: one typed record of a model's scores on labeled rows, the same numbers as the
functions it wraps."""

import numpy as np

from graftlab.core.metrics import REPORTED_METRICS
from graftlab.evaluation import classification_metrics, metrics_with_ci
from graftlab.evaluation.evaluate import Evaluation, evaluate_predictions


def test_evaluation_holds_the_metrics_with_cis_and_the_per_class_table():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    proba = rng.dirichlet(np.ones(3), 120)
    proba[np.arange(120), y] += 1.0
    proba /= proba.sum(1, keepdims=True)
    got = evaluate_predictions(y, proba, ["a", "b", "c"], ["macro_precision", "accuracy"], n_boot=200, seed=3)
    assert isinstance(got, Evaluation) and got.n == 120 and got.n_boot == 200
    assert list(got.metrics) == ["macro_precision", "accuracy"]
    expected = metrics_with_ci(y, proba, ["macro_precision", "accuracy"], n_boot=200, seed=3)
    assert {m: ci.to_dict() for m, ci in got.metrics.items()} == expected
    table = classification_metrics(y, proba, ["a", "b", "c"])
    assert {c: s.to_dict() for c, s in got.per_class.items()} == table["per_class"]
    assert got.confusion_matrix == table["confusion_matrix"]
    assert sum(got.reliability["count"]) == 120
    assert list(evaluate_predictions(y, proba, ["a", "b", "c"], n_boot=100).metrics) == list(REPORTED_METRICS)
