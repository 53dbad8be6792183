"""class_tokens(): the words most associated with each class in the model's predictions."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab.core.errors import ConfigError, DataError
from graftlab.explain import class_tokens
from graftlab.testing import TINY_WORDS, synthetic_reviews

POSITIVE, NEGATIVE = set(TINY_WORDS[:12]), set(TINY_WORDS[12:23])


def test_sentiment_words_top_their_class(tfidf):
    texts = synthetic_reviews(400, seed=1).review.tolist()  # unseen texts
    out = class_tokens(texts, tfidf.predict_proba(texts), ["great", "other"], top=6)
    great, other = [t["token"] for t in out["great"]], [t["token"] for t in out["other"]]
    assert set(great) <= POSITIVE and len(great) == 6, out["great"]
    assert set(other) <= NEGATIVE and len(other) == 6, out["other"]
    scores = [t["score"] for t in out["great"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    first = out["great"][0]
    assert first["count"] == sum(first["token"] in t.split() for t in texts) and 0.5 < first["share"] <= 1


def test_rare_words_and_numbers_are_left_out():
    texts = ["tasty tea 12", "tasty snack 13", "tasty coffee 14", "awful tea 15", "awful box 16", "awful bag 17"]
    proba = np.array([[0.9, 0.1]] * 3 + [[0.1, 0.9]] * 3)
    out = class_tokens(texts, proba, ["great", "other"], min_count=3)
    assert [t["token"] for t in out["great"]] == ["tasty"] and [t["token"] for t in out["other"]] == ["awful"]
    assert class_tokens(texts, proba, ["great", "other"], min_count=10) == {"great": [], "other": []}


def test_a_model_that_ignores_its_input_has_no_class_words():
    texts = synthetic_reviews(60, seed=2).review.tolist()
    out = class_tokens(texts, np.tile([0.66, 0.34], (60, 1)), ["great", "other"])
    assert out == {"great": [], "other": []}


def test_inputs_are_checked():
    with pytest.raises(DataError, match="shape"):
        class_tokens(["a b"], np.ones((2, 2)) / 2, ["x", "y"])
    with pytest.raises(ConfigError, match="'top'"):
        class_tokens(["a b"], np.ones((1, 2)) / 2, ["x", "y"], top=0)


def test_english_stopwords_are_left_out():
    """'the', 'was', 'very' separate the classes as well as 'tasty' does here; only 'tasty' says anything."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    texts = ["the tea was very tasty"] * 4 + ["box arrived torn"] * 4
    proba = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.9]] * 4)
    out = class_tokens(texts, proba, ["great", "other"], min_count=3)
    assert [t["token"] for t in out["great"]] == ["tasty", "tea"]
    assert not {t["token"] for items in out.values() for t in items} & ENGLISH_STOP_WORDS
