"""Frozen-prefix cache: the cut-off forward equals the full one, training with it equals training without
it (same seed), and entries are reused from memory and disk under the right key only."""

import numpy as np
import pytest
import torch

from graftlab.backbones import get_backbone
from graftlab.backbones import prefix_cache as pc
from graftlab.core.config import TrainConfig
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, make_strategy
from graftlab.strategies.neural import (
    EncoderClassifier,
    freeze_all_but_top,
    frozen_boundary,
    training_sets,
)
from graftlab.training import Trainer, seed_everything


def split(df, n_train=96, n_val=32):
    """Train / val / test with texts of 4 to 9 words, so batches are really padded."""
    names = sorted(df.score.unique())
    y = df.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    texts = [" ".join(r.split()[: 4 + i % 6]) for i, r in enumerate(df.review.tolist())]
    data = LabeledData(texts, y, names, np.arange(len(df)))
    return data.subset(range(n_train)), data.subset(range(n_train, n_train + n_val)), data.subset(range(200, 240))


def varied(reviews, n):
    """Texts of different lengths (the synthetic reviews all have the same number of words)."""
    return [" ".join(r.split()[: 2 + i % 7]) for i, r in enumerate(reviews.review.tolist()[:n])]


@pytest.fixture(autouse=True)
def _fresh_memory():
    pc.clear_memory()
    yield
    pc.clear_memory()


def test_cut_forward_equals_the_full_forward_with_padding(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    enc = bb.load_encoder().eval()
    data = bb.encode(varied(reviews, 8), max_length=32)
    batch = data.collate(range(8))
    assert batch["attention_mask"].min() == 0  # really padded
    with torch.no_grad():
        full = bb.pooled(enc, batch)
        for start in range(bb.card.num_layers + 1):
            hidden = bb.prefix_states(enc, batch, start)
            cut = bb.pooled_from(enc, {"hidden_states": hidden, "attention_mask": batch["attention_mask"],
                                       "start_block": torch.tensor(start)})
            torch.testing.assert_close(cut, full, atol=1e-5, rtol=1e-5)


def test_cached_examples_give_the_same_features_alone_or_padded_in_a_batch(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    model = EncoderClassifier(bb, bb.load_encoder(), 2, 0.0).eval()
    freeze_all_but_top(model, 1)
    tokens = bb.encode(varied(reviews, 10), max_length=32)
    hidden = pc.cached_prefix(bb, model.encoder, tokens, 1, 32)
    assert len(set(hidden.lengths.tolist())) > 1 and np.array_equal(hidden.lengths, tokens.lengths)
    with torch.no_grad():
        together = model(hidden.collate(range(10)))
        alone = torch.cat([model(hidden.collate([i])) for i in range(10)])
        direct = model(tokens.collate(range(10)))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together, direct, atol=1e-5, rtol=1e-5)


def fit_finetune(bb, train, val, cache, layers=1, **cfg_kw):
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=16, max_length=32, cache_frozen=cache, **cfg_kw)
    seed_everything(0)
    ctx = FitContext(train=cfg, seed=0, backbone=bb, trainer=Trainer(cfg, seed=0, progress=False))
    return make_strategy("finetune", {"trainable_layers": layers}).fit(train, val, ctx)


def test_training_with_the_cache_equals_training_without(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    train, val, test = split(reviews)
    plain = fit_finetune(bb, train, val, cache=False)
    cached = fit_finetune(bb, train, val, cache=True)
    assert plain.info["prefix_cache"] == {"used": False, "reason": "cache_frozen is off"}
    assert cached.info["prefix_cache"]["used"] and cached.info["prefix_cache"]["start_block"] == 1
    a, b = plain.predictor.predict_logits(test.inputs), cached.predictor.predict_logits(test.inputs)
    assert np.abs(a).max() > 0.05  # the head really trained
    np.testing.assert_allclose(a, b, atol=1e-4)
    for ha, hb in zip(plain.history, cached.history, strict=True):
        assert ha["step"] == hb["step"] and abs(ha["val_loss"] - hb["val_loss"]) < 1e-4
    w_plain = plain.predictor.model.encoder.encoder.layer[1].output.dense.weight
    w_cached = cached.predictor.model.encoder.encoder.layer[1].output.dense.weight
    assert torch.allclose(w_plain, w_cached, atol=1e-5)
    assert plain.logits_for is None


def test_the_study_scores_val_and_test_through_the_cache(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    train, val, test = split(reviews)
    out = fit_finetune(bb, train, val, cache=True)
    before = dict(pc.STATS)
    np.testing.assert_allclose(out.logits_for(list(val.inputs)), out.predictor.predict_logits(val.inputs), atol=1e-4)
    assert pc.STATS["computed"] == before["computed"]  # val's states were cached while training
    first = out.logits_for(list(test.inputs))
    again = out.logits_for(list(test.inputs))  # another seed, the same frozen prefix: computed once
    assert pc.STATS["computed"] == before["computed"] + 1
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, out.predictor.predict_logits(test.inputs), atol=1e-4)


def test_entries_are_reused_from_memory_then_disk_and_keyed_by_what_matters(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    model = EncoderClassifier(bb, bb.load_encoder(), 2, 0.0)
    tokens = bb.encode(reviews.review.tolist()[:20], max_length=32)
    before = dict(pc.STATS)
    first = pc.cached_prefix(bb, model.encoder, tokens, 1, 32)
    pc.cached_prefix(bb, model.encoder, tokens, 1, 32)
    assert pc.STATS["computed"] == before["computed"] + 1 and pc.STATS["memory_hits"] == before["memory_hits"] + 1
    pc.clear_memory()
    again = pc.cached_prefix(bb, model.encoder, tokens, 1, 32)
    assert pc.STATS["disk_hits"] == before["disk_hits"] + 1 and torch.equal(first.hidden, again.hidden) and torch.equal(first.offsets, again.offsets)

    key = pc.prefix_key(bb, model.encoder, tokens, 1, 32)
    assert key != pc.prefix_key(bb, model.encoder, tokens, 2, 32)  # boundary
    assert key != pc.prefix_key(bb, model.encoder, tokens, 1, 16)  # max length
    assert key != pc.prefix_key(bb, model.encoder, bb.encode(reviews.review.tolist()[:19], max_length=32), 1, 32)  # data
    with torch.no_grad():
        model.encoder.encoder.layer[0].output.dense.bias.add_(1.0)  # different prefix weights
    assert key != pc.prefix_key(bb, model.encoder, tokens, 1, 32)
    with torch.no_grad():
        model.encoder.encoder.layer[1].output.dense.bias.add_(1.0)  # above the boundary: same prefix
    model.encoder.encoder.layer[0].output.dense.bias.data.sub_(1.0)
    assert key == pc.prefix_key(bb, model.encoder, tokens, 1, 32)


@pytest.mark.parametrize("damage", ["garbage", "other texts"])
def test_a_damaged_disk_entry_is_recomputed_not_trusted(tiny_bert, reviews, damage):
    from safetensors.torch import save_file

    bb = get_backbone(tiny_bert)
    model = EncoderClassifier(bb, bb.load_encoder(), 2, 0.0)
    tokens = bb.encode(reviews.review.tolist()[:12], max_length=32)
    good = pc.cached_prefix(bb, model.encoder, tokens, 1, 32)
    pc.clear_memory()
    path = pc.cache_dir() / "prefix" / f"{pc.prefix_key(bb, model.encoder, tokens, 1, 32)}.safetensors"
    if damage == "garbage":
        path.write_bytes(b"not a safetensors file")
    else:  # the states of 12 other texts of other lengths
        save_file({"hidden": torch.zeros(36, good.hidden.shape[1]), "offsets": torch.arange(0, 37, 3)}, str(path))
    before = dict(pc.STATS)
    again = pc.cached_prefix(bb, model.encoder, tokens, 1, 32)
    assert pc.STATS["computed"] == before["computed"] + 1 and pc.STATS["disk_hits"] == before["disk_hits"]
    assert isinstance(again, pc.HiddenSet) and torch.equal(good.hidden, again.hidden)
    pc.clear_memory()
    assert isinstance(pc.cached_prefix(bb, model.encoder, tokens, 1, 32), pc.HiddenSet)  # rewritten whole
    assert pc.STATS["disk_hits"] == before["disk_hits"] + 1


def test_cache_is_off_when_inputs_change_or_nothing_is_frozen(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    train, val, _ = split(reviews, 32, 16)
    model = EncoderClassifier(bb, bb.load_encoder(), 2)
    freeze_all_but_top(model, 1)
    assert frozen_boundary(model) == 1
    _, _, info = training_sets(model, train, val, TrainConfig(max_length=32, augment=True))
    assert info["prefix_cache"] == {"used": False, "reason": "augmentation changes the inputs every epoch"}
    tr, _, info = training_sets(model, train, val, TrainConfig(max_length=32))
    assert info["prefix_cache"]["used"] and isinstance(tr, pc.HiddenSet)
    freeze_all_but_top(model, None)
    assert frozen_boundary(model) == 0
    tr, _, info = training_sets(model, train, val, TrainConfig(max_length=32))
    assert info["prefix_cache"]["reason"] == "no frozen block" and not isinstance(tr, pc.HiddenSet)
    freeze_all_but_top(model, 0)
    assert frozen_boundary(model) == bb.card.num_layers  # head only: the cache holds the last hidden states


def image_split(shapes):
    names = sorted(shapes["shape"].unique())
    y = shapes["shape"].map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(shapes["image"].tolist(), y, names, np.arange(len(shapes)))
    return data.subset(range(96)), data.subset(range(96, 128)), data.subset(range(200, 240))


@pytest.mark.parametrize("case", ["text", "images"])
def test_states_bytes_is_the_size_of_the_entry_before_it_is_computed(case, tiny_bert, tiny_cnn, reviews, shapes):
    bb = get_backbone(tiny_bert if case == "text" else tiny_cnn)
    model = EncoderClassifier(bb, bb.load_encoder(), 3, 0.0)
    inputs = varied(reviews, 20) if case == "text" else shapes["image"].tolist()[:20]
    data = bb.encode(inputs, max_length=32)
    expected = pc.states_bytes(bb, model.encoder, data, 1)
    entry = pc.cached_prefix(bb, model.encoder, data, 1, 32)
    held = entry.maps if case == "images" else entry.hidden
    assert expected == held.nbytes > 0


def test_a_training_set_too_large_for_memory_is_not_cached(tiny_bert, reviews, monkeypatch):
    bb = get_backbone(tiny_bert)
    train, val, test = split(reviews)
    model = EncoderClassifier(bb, bb.load_encoder(), 2)
    freeze_all_but_top(model, 1)
    monkeypatch.setattr(pc, "memory_budget", lambda: 1000)
    before = dict(pc.STATS)
    tr, _, info = training_sets(model, train, val, TrainConfig(max_length=32))
    assert not info["prefix_cache"]["used"] and not isinstance(tr, pc.HiddenSet)
    assert "would take" in info["prefix_cache"]["reason"] and "GiB" in info["prefix_cache"]["reason"]
    assert pc.STATS["computed"] == before["computed"]


def test_a_test_set_too_large_to_hold_is_scored_batch_by_batch(tiny_bert, reviews, monkeypatch):
    bb = get_backbone(tiny_bert)
    train, val, test = split(reviews)
    out = fit_finetune(bb, train, val, cache=True)
    monkeypatch.setattr(pc, "MEMORY_BYTES", 1000)
    before = dict(pc.STATS)
    np.testing.assert_allclose(out.logits_for(list(test.inputs)), out.predictor.predict_logits(test.inputs), atol=1e-4)
    assert pc.STATS["computed"] == before["computed"]  # nothing cached for it


def test_an_image_fine_tune_scores_through_its_cache(tiny_cnn, shapes):
    bb = get_backbone(tiny_cnn)
    train, val, test = image_split(shapes)
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=16)
    seed_everything(0)
    ctx = FitContext(train=cfg, seed=0, backbone=bb, trainer=Trainer(cfg, seed=0, progress=False))
    out = make_strategy("finetune", {"trainable_layers": 1}).fit(train, val, ctx)
    assert out.info["prefix_cache"]["used"]
    before = dict(pc.STATS)
    np.testing.assert_allclose(out.logits_for(list(test.inputs)), out.predictor.predict_logits(test.inputs), atol=1e-4)
    assert pc.STATS["computed"] == before["computed"] + 1
    assert np.abs(out.predictor.predict_logits(test.inputs)).max() > 0.05
