"""Image augmentation: seeded, bounded, and applied to training batches only (never validation)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from graftlab.backbones.image import ImageSet
from graftlab.core.config import ImageAugmentConfig, TrainConfig
from graftlab.training import Trainer
from graftlab.training.image_augment import augment_images


def _pixels(n=8, size=12):
    g = torch.Generator().manual_seed(0)
    return torch.rand((n, 3, size, size), generator=g)


def test_augmentation_is_seeded_bounded_and_off_when_p_is_zero():
    x = _pixels()
    cfg = ImageAugmentConfig(p=1.0)
    a = augment_images(x, np.random.default_rng(1), cfg)
    b = augment_images(x, np.random.default_rng(1), cfg)
    assert torch.equal(a, b) and a.shape == x.shape
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.allclose(a, x)
    assert torch.equal(augment_images(x, np.random.default_rng(1), ImageAugmentConfig(p=0.0)), x)
    assert not ImageAugmentConfig.model_validate(False).active and ImageAugmentConfig.model_validate(True).active


def test_each_operation_alone_does_what_it_says():
    x = _pixels(4)
    rng = np.random.default_rng(0)
    flip = augment_images(x, rng, ImageAugmentConfig(p=1.0, hflip=1.0, rotation=0, crop_scale=1.0, brightness=0,
                                                     contrast=0, saturation=0))
    torch.testing.assert_close(flip, x.flip(-1), atol=1e-5, rtol=0)
    bright = augment_images(x * 0.5, rng, ImageAugmentConfig(p=1.0, hflip=0, rotation=0, crop_scale=1.0,
                                                             brightness=0.5, contrast=0, saturation=0))
    ratio = (bright / (x * 0.5)).flatten(1)
    assert torch.allclose(ratio.min(1).values, ratio.max(1).values, atol=1e-3)  # one factor per image
    assert float((ratio[:, 0] - 1).abs().max()) > 0


class _Recorder(nn.Module):
    """Records every batch it sees with the mode it was in."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.lin = nn.Linear(3, k)
        self.seen: list[tuple[bool, torch.Tensor]] = []

    def forward(self, batch):
        x = batch["pixel_values"]
        self.seen.append((self.training, x.clone()))
        return self.lin(x.mean(dim=(2, 3)))


def test_trainer_augments_training_batches_only():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (10, 10), dtype=np.uint8) for _ in range(24)]
    labels = np.arange(24) % 2
    train = ImageSet(images[:16], labels[:16], 12, (0.5,) * 3, (0.25,) * 3)
    val = ImageSet(images[16:], labels[16:], 12, (0.5,) * 3, (0.25,) * 3)
    model = _Recorder(2)
    cfg = TrainConfig(epochs=2, batch_size=4, early_stopping=None, image_augment={"p": 1.0})
    Trainer(cfg, progress=False).fit(model, [{"params": list(model.parameters()), "lr": 1e-3}], train, val)

    plain_train = {tuple(x.flatten().tolist()) for x in train.collate(range(16))["pixel_values"]}
    plain_val = val.collate(range(8))["pixel_values"]
    trained = [x for training, batch in model.seen if training for x in batch]
    evaluated = [batch for training, batch in model.seen if not training]
    assert len(trained) == 32 and evaluated
    assert sum(tuple(x.flatten().tolist()) not in plain_train for x in trained) >= 28  # p=1: (almost) all changed
    for batch in evaluated:  # validation batches are exactly the un-augmented images
        assert any(torch.equal(batch, plain_val[i : i + len(batch)]) for i in range(0, 8, len(batch)))
