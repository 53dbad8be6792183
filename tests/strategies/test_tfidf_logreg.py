"""The TF-IDF baseline on training texts without a word it can count: a DataError saying so, not scikit-learn's
"empty vocabulary"; one text with a word is enough, and the vectorizer keeps its settings. A min_df that keeps no term
names the setting."""

import numpy as np
import pytest

from graftlab import GraftClassifier
from graftlab.core.config import TrainConfig
from graftlab.core.errors import ConfigError, DataError
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, make_strategy

NO_WORDS = "found no words of two or more letters in the 4 training texts"


def fit_tfidf(texts: list[str]):
    data = LabeledData(texts, np.array([0, 1] * (len(texts) // 2)), ["neg", "pos"], np.arange(len(texts)))
    ctx = FitContext(train=TrainConfig(), seed=0, backbone=None, trainer=None)
    return make_strategy("tfidf_logreg").fit(data, data, ctx)


@pytest.mark.parametrize("texts", [
    ["a", "b", "c", "d"],  # one-letter tokens
    ["a b c", "x y", "! ?", "i"],
    ["!!", "...", "-- --", ""],  # no word characters at all
])
def test_training_texts_without_words_are_a_data_error(texts):
    with pytest.raises(DataError, match=NO_WORDS) as err:
        fit_tfidf(texts)
    assert repr(texts[0]) in str(err.value)  # shows what it read
    assert "leave tfidf_logreg out" in str(err.value)


def test_graft_classifier_reports_it_too():
    with pytest.raises(DataError, match="found no words of two or more letters in the 2 training texts"):
        GraftClassifier(strategy="tfidf_logreg").fit(["a", "b", "c", "d"], [0, 1, 0, 1])


def test_one_text_with_a_word_is_enough_and_the_settings_are_kept():
    out = fit_tfidf(["a", "b", "ok c", "d"])
    vec = out.predictor.vectorizer
    assert set(vec.vocabulary_) == {"ok"}
    assert (vec.ngram_range, vec.max_features, vec.min_df, vec.sublinear_tf) == ((1, 2), 50_000, 1, True)
    assert vec.token_pattern == r"(?u)\b\w\w+\b"  # scikit-learn's default: what the baseline has always counted


@pytest.mark.parametrize("min_df", [3, 9])  # terms exist but none is in 3 texts; more than the 4 texts
def test_a_min_df_that_keeps_no_term_names_the_setting(min_df):
    data = LabeledData(["good food", "bad taste", "nice one", "sad day"], np.array([0, 1, 0, 1]), ["neg", "pos"],
                       np.arange(4))
    ctx = FitContext(train=TrainConfig(), seed=0, backbone=None, trainer=None)
    with pytest.raises(ConfigError, match=f"min_df {min_df} keeps no term: no word or word pair is in {min_df} of the 4"):
        make_strategy("tfidf_logreg", {"min_df": min_df}).fit(data, data, ctx)
