"""A tiny BERT fine-tuned on the synthetic reviews (trained once per session), a tf-idf model and the prior."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from graftlab.testing import make_tiny_bert, synthetic_reviews


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def data():
    from graftlab.data.dataset import LabeledData

    df = synthetic_reviews(240, seed=0)
    names = sorted(df.score.unique())  # ['great', 'other']
    y = df.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    full = LabeledData(df.review.tolist(), y, names, np.arange(len(df)))
    return SimpleNamespace(train=full.subset(range(160)), val=full.subset(range(160, 200)),
                           test=full.subset(range(200, 240)), names=names)


def _fit(name, data, backbone=None, **train):
    from graftlab.core.config import TrainConfig
    from graftlab.strategies import FitContext, make_strategy
    from graftlab.training import Trainer, seed_everything

    cfg = TrainConfig(**train)
    seed_everything(0)
    trainer = Trainer(cfg, seed=0, progress=False) if backbone is not None else None
    ctx = FitContext(train=cfg, seed=0, backbone=backbone, trainer=trainer)
    return make_strategy(name).fit(data.train, data.val, ctx).predictor


@pytest.fixture(scope="session")
def neural(tmp_path_factory, data):
    """Full fine-tune of the tiny BERT: enough to rely on the sentiment words (test accuracy ~0.95)."""
    from graftlab.backbones import get_backbone

    bb = get_backbone(str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))))
    return _fit("full", data, bb, epochs=4, lr=5e-3, batch_size=16, max_length=32)


@pytest.fixture(scope="session")
def tfidf(data):
    return _fit("tfidf_logreg", data)


@pytest.fixture(scope="session")
def prior(data):
    return _fit("majority", data)


@pytest.fixture(scope="session")
def packaged_dir(tmp_path_factory, neural):
    """The neural model exported as a packaged model folder, with a temperature of 2."""
    from graftlab.packaging import export_model

    folder = tmp_path_factory.mktemp("packaged") / "model"
    return export_model(neural, folder, {"name": "tiny-reviews", "strategy": "full", "temperature": 2.0})
