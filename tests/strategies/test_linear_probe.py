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
