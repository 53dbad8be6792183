"""One learning-rate rule for every neural strategy: train.lr times the strategy's multiplier, or its own 'lr'."""

import numpy as np
import pytest

from graftlab.backbones import get_backbone
from graftlab.core.config import TrainConfig
from graftlab.data.dataset import LabeledData
from graftlab.strategies import STRATEGIES, FitContext, effective_lr, make_strategy
from graftlab.strategies.base import format_rate
from graftlab.strategies.finetune import partial_lr
from graftlab.training import TrainResult

#: each strategy's rate at the default train.lr (5e-5) on a 6-block backbone: what each trained at before the rule
DEFAULT_RATES = {"scratch": 1e-4, "full": 5e-5, "finetune": partial_lr(5e-5, 2, 6), "gradual_unfreeze": 5e-5, "lora": 5e-4,
                 "ia3": 3e-3, "contrastive": 2e-5}


def test_the_default_train_lr_gives_each_strategy_exactly_its_former_rate():
    trained = {name for name in STRATEGIES.names() if STRATEGIES.get(name).lr_multiplier is not None}
    assert trained == set(DEFAULT_RATES)
    for name, rate in DEFAULT_RATES.items():
        assert effective_lr(make_strategy(name), TrainConfig(), n_blocks=6).value == rate, name  # bit for bit


def test_strategies_without_gradient_training_have_no_rate():
    for name in ("majority", "tfidf_logreg", "linear_probe", "pixel_logreg"):
        assert effective_lr(make_strategy(name), TrainConfig(), n_blocks=6) is None


def test_train_lr_moves_every_rate_in_proportion():
    for name, rate in DEFAULT_RATES.items():
        assert effective_lr(make_strategy(name), TrainConfig(lr=1e-4), n_blocks=6).value == pytest.approx(2 * rate), name


def test_a_strategys_own_lr_wins_and_every_rate_says_where_it_came_from():
    cfg = TrainConfig(lr=1e-4)
    assert effective_lr(make_strategy("lora", {"lr": 1e-3}), cfg).source == "1e-3 (lora.lr, set in its parameters)"
    assert effective_lr(make_strategy("lora"), cfg).source == "1e-3 = train.lr 1e-4 × 10 (lora's multiplier)"
    assert effective_lr(make_strategy("ia3"), TrainConfig()).source == "3e-3 = train.lr 5e-5 × 60 (ia3's multiplier)"
    assert effective_lr(make_strategy("contrastive"), TrainConfig()).source == "2e-5 = train.lr 5e-5 × 0.4 (contrastive's multiplier)"
    assert effective_lr(make_strategy("full"), cfg).source == "1e-4 = train.lr"
    two = make_strategy("finetune", {"trainable_layers": 2})
    assert effective_lr(two, TrainConfig(), 6).source == "1.5e-4 = train.lr 5e-5 × 6 blocks / 2 trainable (partial fine-tuning's rule)"
    assert effective_lr(two, TrainConfig(), 2).source == "5e-5 = train.lr"  # every block trains
    assert [format_rate(x) for x in (5e-5, 1.5e-4, 0.00015000000000000001, 3e-3, 0.05)] == ["5e-5", "1.5e-4", "1.5e-4", "3e-3", "5e-2"]


class GroupsSpy:
    """Records the optimizer groups instead of training."""

    def fit(self, model, param_groups, train, val, *, name="", epochs=None, objective=None):
        self.groups = param_groups
        return TrainResult(history=[], steps=0)


@pytest.mark.parametrize(("name", "expected"), [("lora", 1e-3), ("ia3", 6e-3), ("scratch", 2e-4), ("gradual_unfreeze", 1e-4)])
def test_the_optimizer_trains_at_the_rule_s_rate(name, expected, tiny_bert, reviews):
    """--set train.lr=1e-4 reaches strategies that used to ignore it."""
    y = (reviews.score == reviews.score.iloc[0]).astype(int).to_numpy()
    data = LabeledData(reviews.review.tolist(), y, ["a", "b"], np.arange(len(reviews)))
    spy = GroupsSpy()
    ctx = FitContext(train=TrainConfig(lr=1e-4, max_length=32), seed=0, backbone=get_backbone(tiny_bert), trainer=spy)
    params = {"max_stages": 1} if name == "gradual_unfreeze" else {}
    out = make_strategy(name, params).fit(data.subset(range(16)), data.subset(range(16, 24)), ctx)
    assert [g["lr"] for g in spy.groups] == pytest.approx([expected] * len(spy.groups))
    assert out.info["lr"] == pytest.approx(expected) and "train.lr" in out.info["lr_source"]
