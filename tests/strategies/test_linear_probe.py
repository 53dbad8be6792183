"""The probe's logistic regression is folded into the linear head exactly, and constant features are safe."""

import numpy as np

from graftlab.backbones import get_backbone
from graftlab.core.config import TrainConfig
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, make_strategy


def test_constant_embedding_features_get_zero_weight_and_finite_head(tiny_bert, reviews, monkeypatch):
    bb = get_backbone(tiny_bert)
    real_embed = bb.embed

    def embed_with_constant_column(inputs, max_length=None, batch_size=64):
        x = real_embed(inputs, max_length, batch_size).copy()
        x[:, 0] = np.float32(1e-30) * np.random.default_rng(0).standard_normal(len(x))  # ~constant, as seen in MiniLM
        return x

    monkeypatch.setattr(bb, "embed", embed_with_constant_column)
    names = sorted(reviews.score.unique())
    y = reviews.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(reviews.review.tolist(), y, names, np.arange(len(y)))
    train, val = data.subset(range(160)), data.subset(range(160, 200))
    out = make_strategy("linear_probe").fit(train, val, FitContext(train=TrainConfig(max_length=32), seed=0, backbone=bb))
    w = out.predictor.model.head.weight.detach().numpy()
    assert np.all(np.isfinite(w)) and np.abs(w).max() < 1e3
    assert np.all(w[:, 0] == 0) and out.info["constant_features_dropped"] == 1


def test_the_study_scores_the_probe_from_the_cached_embeddings(tiny_bert, reviews, tmp_path, monkeypatch):
    from graftlab.backbones import embedding_cache as ec

    monkeypatch.setattr(ec, "_MEMORY", {})  # nothing embedded by an earlier test
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path))
    bb = get_backbone(tiny_bert)
    names = sorted(reviews.score.unique())
    y = reviews.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(reviews.review.tolist(), y, names, np.arange(len(y)))
    train, val, test = data.subset(range(160)), data.subset(range(160, 200)), data.subset(range(200, 240))
    out = make_strategy("linear_probe").fit(train, val, FitContext(train=TrainConfig(max_length=32), seed=0, backbone=bb))
    before = ec.STATS["forward_batches"]
    val_logits = out.logits_for(list(val.inputs))
    assert ec.STATS["forward_batches"] == before  # embedded while fitting
    test_logits = out.logits_for(list(test.inputs))
    out.logits_for(list(test.inputs))  # the next seed: no forward pass
    assert ec.STATS["forward_batches"] == before + 1
    np.testing.assert_allclose(val_logits, out.predictor.predict_logits(val.inputs), atol=1e-5)
    np.testing.assert_allclose(test_logits, out.predictor.predict_logits(test.inputs), atol=1e-5)


def test_without_validation_rows_the_head_is_fitted_on_normalised_embeddings(tiny_bert, reviews):
    """The refit on every labeled example: no rows to choose C on, so C = REFIT_C on L2-normalised embeddings, the
    same logistic regression scikit-learn fits on them, and the saved model normalises too."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize

    from graftlab.strategies.selection import REFIT_C

    bb = get_backbone(tiny_bert)
    names = sorted(reviews.score.unique())
    y = reviews.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(reviews.review.tolist(), y, names, np.arange(len(y)))
    train, test = data.subset(range(160)), data.subset(range(200, 240))
    out = make_strategy("linear_probe").fit(train, train.subset(np.array([], dtype=np.int64)),
                                            FitContext(train=TrainConfig(max_length=32), seed=0, backbone=bb))
    assert out.info["C"] == REFIT_C and out.info["normalized_features"] and out.info["selection_metric"] is None
    x = bb.embed(train.inputs, max_length=32)
    expected = LogisticRegression(C=REFIT_C, max_iter=2000, random_state=0).fit(normalize(x), train.labels)
    xt = bb.embed(test.inputs, max_length=32)
    np.testing.assert_allclose(out.logits_for(test.inputs)[:, 1] - out.logits_for(test.inputs)[:, 0],
                               expected.decision_function(normalize(xt)), atol=1e-4)
    np.testing.assert_allclose(out.predictor.predict_logits(test.inputs), out.logits_for(test.inputs), atol=1e-4)


def test_tfidf_and_majority_fit_without_validation_rows(reviews):
    names = sorted(reviews.score.unique())
    y = reviews.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(reviews.review.tolist(), y, names, np.arange(len(y)))
    no_val = data.subset(np.array([], dtype=np.int64))
    for name in ("tfidf_logreg", "majority"):
        strategy = make_strategy(name)
        assert strategy.fits_without_val
        out = strategy.fit(data, no_val, FitContext(train=TrainConfig(), seed=0))
        assert out.predictor.predict_logits(data.inputs[:4]).shape == (4, 2)
    assert make_strategy("tfidf_logreg").fit(data, no_val, FitContext(train=TrainConfig(), seed=0)).info["C"] == 1.0
    assert not make_strategy("full").fits_without_val  # early stopping needs validation rows
