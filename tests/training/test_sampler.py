"""The class-balanced sampler: balanced epochs, valid indices, used by the trainer only when asked."""

import numpy as np
from loop_fakes import Recorder, vector_set

from graftlab.core.config import TrainConfig
from graftlab.training import Trainer
from graftlab.training.sampler import balanced_batches


def test_balanced_batches_draw_each_class_equally_often():
    labels = np.array([0] * 900 + [1] * 100)
    lengths = np.random.default_rng(0).integers(5, 60, size=1000)
    batches = balanced_batches(labels, lengths, 16, np.random.default_rng(0))
    flat = np.array([i for b in batches for i in b])
    assert len(flat) == 1000 and all(len(b) <= 16 for b in batches)
    assert flat.min() >= 0 and flat.max() < 1000 and all(isinstance(i, int) for i in flat[:5].tolist())
    share = (labels[flat] == 1).mean()
    assert 0.44 < share < 0.56  # 10% of the data, half of the draws
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 4  # still length-bucketed


def minority_share(balanced):
    labels = np.array([0] * 72 + [1] * 8)
    cfg = TrainConfig(epochs=3, batch_size=8, balanced_sampler=balanced, early_stopping=None)
    model = Recorder()
    Trainer(cfg, progress=False).fit(model, model.groups(), vector_set(labels), vector_set(labels[:10]))
    seen = np.concatenate([b["x"][:, 0].numpy() for training, b in model.seen if training])
    return float((seen == 1).mean())


def test_trainer_uses_the_balanced_sampler_only_when_configured():
    assert minority_share(False) == 0.1  # each example exactly once per epoch
    assert minority_share(True) > 0.35
