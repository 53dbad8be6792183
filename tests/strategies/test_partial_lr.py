"""Partial fine-tuning moves fewer blocks, so its default learning rate scales with the share that is frozen."""

import numpy as np
import pytest

from graftlab.backbones import get_backbone
from graftlab.core.config import TrainConfig
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, make_strategy
from graftlab.strategies.finetune import partial_lr
from graftlab.training import TrainResult


class GroupsSpy:
    """Records the optimizer groups instead of training."""

    def fit(self, model, param_groups, train, val, *, name="", epochs=None):
        self.groups = param_groups
        return TrainResult(history=[], steps=0)


def test_partial_lr_scales_with_the_frozen_share_and_leaves_full_fine_tuning_alone():
    assert partial_lr(5e-5, 2, 6) == pytest.approx(1.5e-4)
    assert partial_lr(5e-5, 1, 6) == pytest.approx(3e-4)
    assert partial_lr(5e-5, 0, 6) == 5e-5  # head only: not measured, keeps the base rate
    assert partial_lr(5e-5, 6, 6) == partial_lr(5e-5, None, 6) == 5e-5


@pytest.mark.parametrize(("name", "params", "expected"), [
    ("finetune", {"trainable_layers": 1}, 2e-3),  # the tiny BERT has 2 blocks: twice train.lr
    ("finetune", {"trainable_layers": 2}, 1e-3),  # every block: train.lr
    ("finetune", {"trainable_layers": 1, "lr": 3e-4}, 3e-4),  # a rate given is used as given
    ("full", {}, 1e-3),
])
def test_the_optimizer_gets_the_scaled_rate_unless_one_is_given(name, params, expected, tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    y = (reviews.score == reviews.score.iloc[0]).astype(int).to_numpy()
    data = LabeledData(reviews.review.tolist(), y, ["a", "b"], np.arange(len(reviews)))
    spy = GroupsSpy()
    cfg = TrainConfig(lr=1e-3, max_length=32)
    out = make_strategy(name, params).fit(data.subset(range(16)), data.subset(range(16, 24)),
                                          FitContext(train=cfg, seed=0, backbone=bb, trainer=spy))
    assert [g["lr"] for g in spy.groups] == pytest.approx([expected] * len(spy.groups))
    assert out.info["lr"] == pytest.approx(expected)
