"""Text augmentation: what each operation does, and that only training batches are augmented."""

from collections import Counter

import numpy as np
import pytest
from loop_fakes import CLS, MASK, SEP, Recorder, token_set, vector_set

from graftlab.core.config import AugmentConfig, TrainConfig
from graftlab.core.errors import ConfigError
from graftlab.training import Trainer
from graftlab.training.augment import augment_batch, augment_tokens

SPECIAL = {0, CLS, SEP, MASK}
IDS = [CLS, *range(10, 30), SEP]


def aug(ids=IDS, seed=0, **kw):
    cfg = AugmentConfig(**{"p": 1.0, "deletion": 0.0, "swap": 0.0, "mask": 0.0, **kw})
    return augment_tokens(ids, np.random.default_rng(seed), cfg, SPECIAL, MASK)


def test_nothing_changes_when_no_operation_or_probability_zero():
    assert aug() == IDS
    assert aug(p=0.0, deletion=0.5, swap=0.5, mask=0.5) == IDS


def test_deletion_removes_ordinary_tokens_only_and_keeps_one():
    out = aug(deletion=0.5)
    assert out[0] == CLS and out[-1] == SEP
    assert 3 <= len(out) < len(IDS)
    assert out[1:-1] == [t for t in IDS[1:-1] if t in out[1:-1]]  # order kept, no new tokens
    assert len(aug(deletion=0.999)) == 3


def test_swap_keeps_the_tokens_and_moves_them():
    out = aug(swap=0.5)
    assert Counter(out) == Counter(IDS) and out != IDS
    assert out[0] == CLS and out[-1] == SEP


def test_masking_uses_the_mask_token_and_spares_special_tokens():
    out = aug(mask=0.5)
    masked = [i for i, t in enumerate(out) if t == MASK]
    assert masked and 0 not in masked and len(IDS) - 1 not in masked
    assert all(out[i] == IDS[i] for i in range(len(IDS)) if i not in masked)


def test_augmentation_is_reproducible_from_the_generator():
    cfg = AugmentConfig(p=0.7, deletion=0.2, swap=0.2, mask=0.2)
    items = [IDS] * 8
    a = augment_batch(items, np.random.default_rng(3), cfg, SPECIAL, MASK)
    b = augment_batch(items, np.random.default_rng(3), cfg, SPECIAL, MASK)
    assert a == b and any(x != IDS for x in a)


def test_config_switches():
    assert TrainConfig(augment=True).augmenting
    assert not TrainConfig(augment=False).augmenting and not TrainConfig().augmenting
    assert not TrainConfig(augment={"p": 1.0, "deletion": 0, "swap": 0, "mask": 0}).augmenting


def fit(cfg, train, val):
    model = Recorder()
    Trainer(cfg, progress=False).fit(model, model.groups(), train, val)
    return model


def test_only_training_batches_are_augmented():
    train, val = token_set(48, seed=0), token_set(16, seed=1)
    cfg = TrainConfig(epochs=2, batch_size=8, augment={"p": 1.0, "mask": 0.9, "deletion": 0.0, "swap": 0.0})
    model = fit(cfg, train, val)
    train_batches = [b for training, b in model.seen if training]
    eval_batches = [b for training, b in model.seen if not training]
    assert train_batches and eval_batches
    assert all((b["input_ids"] == MASK).any() for b in train_batches)
    assert not any((b["input_ids"] == MASK).any() for b in eval_batches)
    plain = fit(cfg.model_copy(update={"augment": None}), train, val)
    assert not any((b["input_ids"] == MASK).any() for _, b in plain.seen)


def test_augmentation_needs_token_inputs():
    data = vector_set([0, 1] * 8)
    cfg = TrainConfig(epochs=1, batch_size=4, augment=True)
    with pytest.raises(ConfigError, match="augment.*token inputs"):
        fit(cfg, data, data)
