"""GraftClassifier is a well-behaved scikit-learn estimator."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import FunctionTransformer, make_pipeline

from graftlab import GraftClassifier
from graftlab.core.errors import ConfigError


def test_cross_val_score_pipeline_and_clone(tiny_bert, reviews):
    X, y = reviews.review.to_numpy(), reviews.score.to_numpy()
    clf = GraftClassifier(backbone=tiny_bert, strategy="finetune", strategy_params={"trainable_layers": 1},
                          epochs=2, lr=3e-3, max_length=32)
    assert clone(clf).get_params() == clf.get_params()
    clf.set_params(strategy="tfidf_logreg", strategy_params=None)
    scores = cross_val_score(clf, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85  # tf-idf sees the sentiment words

    pipe = make_pipeline(FunctionTransformer(lambda texts: [t.lower() for t in texts]),
                         GraftClassifier(backbone=tiny_bert, strategy="linear_probe", max_length=32))
    pipe.fit(X[:150], y[:150])
    proba = pipe.predict_proba(X[150:])
    assert proba.shape == (len(X) - 150, 2)
    assert set(pipe.predict(X[150:])) <= set(y)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)


def test_single_class_is_refused(tiny_bert):
    with pytest.raises(ConfigError, match="at least 2 classes"):
        GraftClassifier(backbone=tiny_bert).fit(["a", "b", "c"], ["x", "x", "x"])
