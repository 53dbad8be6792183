"""Every registered strategy goes through the same checks on the tiny BERT (text) and the tiny CNN (images):
it trains, saves, reloads in this process with identical predictions, and reports its parameters; a
strategy that does not take a modality says so with a ConfigError."""

import numpy as np
import pytest

from graftlab.backbones import get_backbone
from graftlab.core.config import TrainConfig
from graftlab.core.errors import ConfigError
from graftlab.data.dataset import LabeledData
from graftlab.strategies import STRATEGIES, FitContext, load_predictor, make_strategy, save_predictor
from graftlab.training import Trainer, seed_everything

# scratch, lora and ia3 keep the rates they trained at here before train.lr (3e-3 below) reached them
PARAMS = {"finetune": {"trainable_layers": 1}, "contrastive": {"pairs_per_example": 2, "lr": 1e-3},
          "scratch": {"lr": 1e-4}, "lora": {"lr": 5e-4}, "ia3": {"lr": 3e-3}}


def split(df, inputs="review", label="score"):
    names = sorted(df[label].unique())
    y = df[label].map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(df[inputs].tolist(), y, names, np.arange(len(df)))
    return data.subset(range(0, 160)), data.subset(range(160, 200)), data.subset(range(200, 240))


@pytest.fixture(params=["tiny-bert", "tiny-cnn"])
def modality_case(request):
    """(backbone, train, val, test, train config) for text on the tiny BERT or images on the tiny CNN."""
    if request.param == "tiny-bert":
        data = split(request.getfixturevalue("reviews"))
        return get_backbone(request.getfixturevalue("tiny_bert")), *data, TrainConfig(epochs=2, lr=3e-3, batch_size=16, max_length=32)
    data = split(request.getfixturevalue("shapes"), "image", "shape")
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=16, image_augment=True)  # augmentation on: the image path runs it
    return get_backbone(request.getfixturevalue("tiny_cnn")), *data, cfg


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategy_contract(name, modality_case, tmp_path):
    backbone, train, val, test, cfg = modality_case
    seed_everything(0)
    strategy = make_strategy(name, PARAMS.get(name, {}))
    ctx = FitContext(train=cfg, seed=0, backbone=backbone, trainer=Trainer(cfg, seed=0, progress=False))
    if train.modality not in strategy.modalities:
        with pytest.raises(ConfigError, match=f"works on .* but the data are {train.modality}s"):
            strategy.fit(train, val, ctx)
        return
    out = strategy.fit(train, val, ctx)

    proba = out.predictor.predict_proba(test.inputs)
    assert proba.shape == (len(test), train.n_classes)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert 0 < out.trainable_params <= out.total_params
    if out.logits_for is not None:  # the study scores val and test from the fit's caches: the same logits
        np.testing.assert_allclose(out.logits_for(list(test.inputs)), out.predictor.predict_logits(test.inputs), atol=1e-4)

    save_predictor(out.predictor, tmp_path / "model")
    assert not list((tmp_path / "model").rglob("*.pkl")) and not list((tmp_path / "model").rglob("*.bin"))
    again = load_predictor(tmp_path / "model").predict_proba(test.inputs)
    np.testing.assert_array_equal(proba, again)


def test_strategy_params_are_validated_with_clear_messages():
    with pytest.raises(ConfigError, match="trainable_layers"):
        make_strategy("finetune", {"trainable_layers": -1})
    with pytest.raises(ConfigError, match="Unknown key 'trainable_layer'.*Did you mean 'trainable_layers'"):
        make_strategy("finetune", {"trainable_layer": 2})
    with pytest.raises(ConfigError, match="Unknown strategy 'fulll'.*full"):
        make_strategy("fulll")


def test_finetune_refuses_more_layers_than_the_backbone_has(tiny_bert, reviews):
    train, val, _ = split(reviews)
    cfg = TrainConfig(epochs=1, max_length=32)
    ctx = FitContext(train=cfg, seed=0, backbone=get_backbone(tiny_bert), trainer=Trainer(cfg, progress=False))
    with pytest.raises(ConfigError, match="at most 2"):
        make_strategy("finetune", {"trainable_layers": 5}).fit(train, val, ctx)


def test_probe_and_tfidf_learn_the_synthetic_task(tiny_bert, reviews):
    train, val, test = split(reviews)
    cfg = TrainConfig(epochs=1, max_length=32)
    ctx = FitContext(train=cfg, seed=0, backbone=get_backbone(tiny_bert), trainer=None)
    majority = np.bincount(test.labels).max() / len(test)  # 2/3
    # tf-idf sees the sentiment words directly; the probe only has random tiny-BERT features
    for name, floor in (("tfidf_logreg", 0.9), ("linear_probe", majority + 0.05)):
        pred = make_strategy(name).fit(train, val, ctx).predictor
        acc = (pred.predict_proba(test.inputs).argmax(1) == test.labels).mean()
        assert acc > floor, (name, acc)
