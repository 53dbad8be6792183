"""report_examples(): the report's most confident correct and wrong test examples, explained."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graftlab.core.errors import ConfigError, DataError
from graftlab.explain import report_examples


@pytest.fixture(scope="module")
def test_set(neural, data):
    texts = data.test.inputs[:20]
    return texts, data.test.labels[:20], neural.predict_proba(texts)


def test_one_confident_correct_per_class_and_the_most_confident_error(neural, test_set):
    texts, y, proba = test_set
    pred, conf = proba.argmax(1), proba.max(1)
    # make the model's most confident 'great' prediction an error: its true label becomes 'other'
    planted = int(np.flatnonzero(pred == 0)[np.argmax(conf[pred == 0])])
    y = y.copy()
    y[planted] = 1
    out = report_examples(neural, texts, y, proba, ["great", "other"], method="occlusion")
    kinds = [(e["kind"], e["true_label"]) for e in out]
    assert kinds.count(("confident_correct", "great")) == 1 and kinds.count(("confident_correct", "other")) == 1
    wrong = [e for e in out if e["kind"] == "confident_wrong" and e["true_label"] == "other"]
    assert len(wrong) == 1 and wrong[0]["index"] == planted and wrong[0]["text"] == texts[planted]
    assert wrong[0]["predicted"] == "great" and wrong[0]["label"] == "other"  # the report shows the true label
    for e in out:
        i, c = e["index"], int(y[e["index"]])
        same_kind = (y == c) & ((pred == c) if e["kind"] == "confident_correct" else (pred != c))
        assert conf[i] == pytest.approx(conf[same_kind].max())  # the most confident of its kind
        assert e["prob"] == pytest.approx(conf[i]) and e["target_label"] == e["predicted"]
        assert len(e["tokens"]) == len(e["attributions"]) > 0
    assert json.loads(json.dumps(out)) == out  # goes into results.json as is


def test_no_confident_wrong_when_a_class_has_no_error(neural, test_set):
    texts, _, proba = test_set
    y = proba.argmax(1)  # labels equal to the predictions: no errors at all
    out = report_examples(neural, texts, y, proba, ["great", "other"], per_class=2, method="occlusion")
    assert [e["kind"] for e in out] == ["confident_correct"] * 4


def test_ig_is_the_default_and_tfidf_falls_back_to_occlusion(neural, tfidf, test_set):
    texts, y, _ = test_set
    out = report_examples(neural, texts[:4], y[:4], neural.predict_proba(texts[:4]), ["great", "other"])
    assert {e["method"] for e in out} == {"ig"} and all(e["completeness_error"] is not None for e in out)
    out = report_examples(tfidf, texts, y, tfidf.predict_proba(texts), ["great", "other"])
    assert out and {e["method"] for e in out} == {"occlusion"} and all(e["note"] for e in out)


def test_shapes_and_parameters_are_checked(neural, test_set):
    texts, y, proba = test_set
    with pytest.raises(DataError, match="one row of proba"):
        report_examples(neural, texts, y, proba[:-1], ["great", "other"])
    with pytest.raises(ConfigError, match="'per_class'"):
        report_examples(neural, texts, y, proba, ["great", "other"], per_class=0)
