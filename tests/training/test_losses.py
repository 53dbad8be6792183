"""Losses from TrainConfig.loss: cross-entropy, focal, label smoothing and class weights."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graftlab.core.config import LossConfig, TrainConfig
from graftlab.core.errors import ConfigError
from graftlab.training.losses import balanced_weights, focal_loss, make_loss


def batch(k=3, n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 2, torch.randint(0, k, (n,), generator=g)


def test_default_is_plain_cross_entropy():
    logits, y = batch()
    assert torch.allclose(make_loss(None)(logits, y), F.cross_entropy(logits, y))
    assert TrainConfig().loss == LossConfig(kind="ce")


def test_focal_with_gamma_zero_is_weighted_smoothed_cross_entropy():
    logits, y = batch()
    w = torch.tensor([0.5, 2.0, 1.0])
    expected = F.cross_entropy(logits, y, weight=w, label_smoothing=0.2)
    got = focal_loss(logits, y, gamma=0.0, weight=w, label_smoothing=0.2)
    assert torch.allclose(got, expected, atol=1e-6)
    cfg = LossConfig(kind="ce", class_weights=[0.5, 2.0, 1.0], label_smoothing=0.2)
    assert torch.allclose(make_loss(cfg)(logits, y), expected, atol=1e-6)


def test_focal_matches_its_formula_and_down_weights_easy_examples():
    logits, y = batch(k=2, n=8)
    p = logits.softmax(1).gather(1, y[:, None]).squeeze(1)
    expected = ((1 - p) ** 2 * -p.log()).mean()
    assert torch.allclose(make_loss(LossConfig(kind="focal", gamma=2.0))(logits, y), expected, atol=1e-6)
    easy = torch.tensor([[4.0, -4.0]])
    label = torch.tensor([0])
    assert focal_loss(easy, label, 2.0) < 1e-3 * F.cross_entropy(easy, label)


def test_balanced_class_weights_come_from_the_training_labels():
    labels = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(balanced_weights(labels, 2), [4 / 6, 2.0])
    np.testing.assert_allclose(balanced_weights(labels, 3), [4 / 9, 4 / 3, 1.0])  # an absent class weighs 1
    logits, y = batch(k=2)
    loss = make_loss(LossConfig(class_weights="balanced"), labels)
    expected = F.cross_entropy(logits, y, weight=torch.tensor([4 / 6, 2.0]))
    assert torch.allclose(loss(logits, y), expected, atol=1e-6)


def test_focal_alpha_weights_class_one_in_binary_problems():
    logits, y = batch(k=2)
    got = make_loss(LossConfig(kind="focal", gamma=1.0, alpha=0.25))(logits, y)
    assert torch.allclose(got, focal_loss(logits, y, 1.0, torch.tensor([0.75, 0.25])), atol=1e-6)


def test_wrong_weight_lengths_are_clear_errors():
    logits, y = batch(k=3)
    with pytest.raises(ConfigError, match="loss.class_weights.*3 classes.*Got 2"):
        make_loss(LossConfig(class_weights=[1.0, 2.0]))(logits, y)
    with pytest.raises(ConfigError, match="loss.alpha.*list of 3"):
        make_loss(LossConfig(kind="focal", alpha=0.3))(logits, y)
    with pytest.raises(ConfigError, match="training labels"):
        make_loss(LossConfig(class_weights="balanced"))(logits, y)


def test_loss_config_shorthand_and_validation():
    assert TrainConfig(loss="focal").loss.kind == "focal"
    with pytest.raises(ValueError):
        TrainConfig(loss={"kind": "hinge"})
    with pytest.raises(ValueError):
        TrainConfig(loss={"label_smoothing": 1.5})


def test_the_trainer_builds_its_loss_from_the_config_and_the_training_labels():
    from loop_fakes import Recorder, vector_set

    from graftlab.training import Trainer

    labels = np.array([0] * 12 + [1] * 4)
    cfg = TrainConfig(epochs=1, batch_size=8, loss={"kind": "focal", "class_weights": "balanced"})
    trainer = Trainer(cfg, progress=False)
    model = Recorder()
    trainer.fit(model, model.groups(), vector_set(labels), vector_set(labels))
    assert trainer.loss_fn.cfg.kind == "focal"
    np.testing.assert_allclose(trainer.loss_fn.class_weights(2).numpy(), [16 / 24, 2.0], rtol=1e-6)
    custom = Trainer(cfg, progress=False, loss_fn=lambda z, y: z.sum() * 0)
    custom.fit(model, model.groups(), vector_set(labels), vector_set(labels))
    assert custom.loss_fn is custom.user_loss_fn  # an explicit loss function wins
