"""GraftClassifier on very small data: the validation split keeps every class on both sides, or says why it cannot."""

import numpy as np
import pytest

from graftlab import GraftClassifier
from graftlab.core.errors import ConfigError, DataError, GraftError

TEXTS = ["good tea", "bad tea", "nice tea", "awful tea"]


def test_four_examples_of_two_classes_fit_with_one_of_each_held_out():
    clf = GraftClassifier(strategy="tfidf_logreg").fit(TEXTS, [0, 1, 0, 1])  # 15% of 4 would be 1 < 2 classes
    assert clf.predict(["good tea"]).tolist()[0] in (0, 1)
    np.testing.assert_allclose(clf.predict_proba(TEXTS).sum(1), 1)


def test_the_fraction_is_kept_when_it_holds_every_class():
    clf = GraftClassifier(strategy="tfidf_logreg", validation_fraction=0.15)
    clf.classes_ = np.array([0, 1])
    assert clf._n_validation(np.array([0, 1] * 20)) == 6  # ceil(0.15 * 40), as scikit-learn rounds
    assert clf._n_validation(np.array([0, 1] * 2)) == 2  # ceil(0.6) = 1 would miss a class


def test_a_class_with_one_example_is_a_clear_data_error():
    with pytest.raises(DataError, match=r"every class needs at least 2 examples in y \(one to train on, one to "
                                        r"validate on\); the class 'b' has only 1") as err:
        GraftClassifier(strategy="tfidf_logreg").fit(TEXTS[:3], ["a", "b", "a"])
    assert isinstance(err.value, GraftError) and isinstance(err.value, ValueError)  # sklearn tools catch ValueError


def test_a_fraction_that_leaves_too_few_to_train_on_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'validation_fraction' parameter 0.9 holds out 4 of the 4 examples, leaving "
                                          "0 to train on"):
        GraftClassifier(strategy="tfidf_logreg", validation_fraction=0.9).fit(TEXTS, [0, 1, 0, 1])


def test_inputs_and_labels_of_different_lengths_are_refused():
    with pytest.raises(DataError, match="X has 4 inputs but y has 3 labels"):
        GraftClassifier(strategy="tfidf_logreg").fit(TEXTS, [0, 1, 0])
