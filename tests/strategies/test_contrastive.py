"""The contrastive (SetFit-style) strategy: pair sampling, the pair losses, body tuning and its options."""

from collections import Counter
from itertools import combinations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from graftlab.backbones import get_backbone
from graftlab.core.config import EarlyStoppingConfig, TrainConfig
from graftlab.core.errors import ConfigError, DataError
from graftlab.data.dataset import LabeledData
from graftlab.strategies import make_strategy, trial_context
from graftlab.strategies.contrastive import (
    Pairs,
    _triangle,
    pair_loss,
    sample_pairs,
    supcon_loss,
)
from graftlab.strategies.neural import EncoderClassifier
from graftlab.training import Callback, Trainer


def split(df):
    names = sorted(df.score.unique())
    y = df.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(df.review.tolist(), y, names, np.arange(len(df)))
    return data.subset(range(96)), data.subset(range(160, 200)), data.subset(range(200, 240))


def ctx_for(tiny_bert, work_dir=None, make_trainer=Trainer, **train):
    cfg = TrainConfig(max_length=32, **train)
    return trial_context(cfg, 0, make_trainer, backbone=get_backbone(tiny_bert), work_dir=work_dir, progress=False)


# -- pair sampling -------------------------------------------------------------------------------
def check_pairs(pairs: Pairs, labels: np.ndarray, budget: int) -> None:
    assert len(pairs) <= budget
    assert np.all(pairs.a < pairs.b)
    assert len(set(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True))) == len(pairs), "a pair drawn twice"
    np.testing.assert_array_equal(pairs.target, (labels[pairs.a] == labels[pairs.b]).astype(np.float32))
    assert pairs.n_positive == len(pairs) - pairs.n_positive, "positives and negatives are not balanced"


@pytest.mark.parametrize("m", [2, 3, 7, 40])
def test_triangle_decoding_enumerates_the_upper_triangle(m):
    i, j = _triangle(np.arange(m * (m - 1) // 2), m)
    ref_i, ref_j = np.triu_indices(m, k=1)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(j, ref_j)


def test_triangle_decoding_is_exact_for_large_classes():
    m = 200_001
    t = np.array([0, 1, m - 2, m - 1, m * (m - 1) // 2 - 1, 123_456_789_012 % (m * (m - 1) // 2)])
    i, j = _triangle(t, m)
    assert np.all((0 <= i) & (i < j) & (j < m))
    np.testing.assert_array_equal(i * (2 * m - i - 1) // 2 + (j - i - 1), t)  # back to the linear index


@pytest.mark.parametrize(("per_example", "max_pairs"), [(1, None), (4, None), (50, None), (50, 60)])
def test_pairs_are_balanced_unique_and_within_budget(per_example, max_pairs):
    labels = np.array([0] * 12 + [1] * 7 + [2] * 3)  # imbalanced, three classes
    pairs = sample_pairs(labels, per_example, max_pairs, seed=3)
    budget = min(per_example * len(labels), max_pairs or 10**9)
    check_pairs(pairs, labels, budget)
    available_pos = sum(c * (c - 1) // 2 for c in (12, 7, 3))  # 66 + 21 + 3 = 90
    assert pairs.n_positive == min(budget // 2, available_pos)


def test_positives_are_spread_evenly_over_classes():
    labels = np.array([0] * 30 + [1] * 30 + [2] * 4)
    pairs = sample_pairs(labels, pairs_per_example=2, seed=0)  # budget 128: 64 positives
    pos = Counter(labels[pairs.a[pairs.target == 1]].tolist())
    assert pos[2] == 6  # the small class gives all of its 6 pairs
    assert abs(pos[0] - pos[1]) <= 1 and pos[0] + pos[1] == 58
    neg = Counter(tuple(sorted((int(labels[a]), int(labels[b])))) for a, b, t in
                  zip(pairs.a, pairs.b, pairs.target, strict=True) if t == 0)
    assert max(neg.values()) - min(neg.values()) <= 1  # every pair of classes equally often


def test_all_pairs_when_the_budget_exceeds_what_exists():
    labels = np.array([0, 0, 0, 1, 1, 1])  # 6 positive and 9 negative pairs exist
    pairs = sample_pairs(labels, pairs_per_example=100, seed=0)
    check_pairs(pairs, labels, 600)
    assert pairs.n_positive == 6
    assert {(a, b) for a, b, t in zip(pairs.a, pairs.b, pairs.target, strict=True) if t} == \
        {p for p in combinations(range(6), 2) if labels[p[0]] == labels[p[1]]}


def test_pair_sampling_is_seeded():
    labels = np.repeat([0, 1], 20)
    one, again, other = (sample_pairs(labels, 3, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(one.a, again.a)
    np.testing.assert_array_equal(one.b, again.b)
    assert not (np.array_equal(one.a, other.a) and np.array_equal(one.b, other.b))


def test_no_pairs_possible_is_a_clear_error():
    with pytest.raises(DataError, match="positive and one negative pair"):
        sample_pairs(np.array([0, 1, 2]), 5)
    with pytest.raises(DataError, match="positive and one negative pair"):
        sample_pairs(np.array([0, 0, 0]), 5)


# -- losses ---------------------------------------------------------------------------------------
def test_supcon_matches_a_direct_implementation():
    torch.manual_seed(0)
    emb, labels, tau = torch.randn(7, 5), torch.tensor([0, 1, 0, 2, 1, 0, 2]), 0.5
    z = F.normalize(emb, dim=1)
    terms = []
    for i in range(7):
        others = [a for a in range(7) if a != i]
        denom = torch.logsumexp(torch.stack([z[i] @ z[a] / tau for a in others]), 0)
        pos = [p for p in others if labels[p] == labels[i]]
        terms.append(-torch.stack([z[i] @ z[p] / tau - denom for p in pos]).mean())
    torch.testing.assert_close(supcon_loss(emb, labels, tau), torch.stack(terms).mean())
    clustered = torch.nn.functional.one_hot(labels, 3).float() + 0.01 * emb[:, :3]
    assert supcon_loss(clustered, labels, 0.1) < supcon_loss(emb, labels, 0.1)


def test_pair_loss_runs_each_sentence_once_and_equals_the_per_pair_mse(tiny_bert, reviews):
    train, _, _ = split(reviews)
    bb = get_backbone(tiny_bert)
    model = EncoderClassifier(bb, bb.load_encoder(), 2, dropout=0.0).eval()  # eval: no dropout noise
    data = bb.encode(train.inputs, train.labels, max_length=32)
    pairs = sample_pairs(train.labels, 2, seed=0)
    index = np.arange(12)
    with torch.no_grad():
        got = pair_loss(model, data, pairs, index, "cosine", 0.07)
        ea = model.features(data.collate(pairs.a[index]))
        eb = model.features(data.collate(pairs.b[index]))
        want = ((F.cosine_similarity(ea, eb) - torch.as_tensor(pairs.target[index])) ** 2).mean()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


# -- the strategy -------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["cosine", "supcon"])
def test_body_tuning_pulls_same_label_pairs_together(tiny_bert, reviews, loss):
    train, val, test = split(reviews)
    ctx = ctx_for(tiny_bert)
    bb = ctx.backbone
    out = make_strategy("contrastive", {"lr": 3e-3, "pairs_per_example": 4, "loss": loss}).fit(train, val, ctx)
    assert out.info["loss"] == loss
    probe = EncoderClassifier(bb, bb.load_encoder(), 2, dropout=0.0).eval()
    data = bb.encode(test.inputs, test.labels, max_length=32)
    pairs = sample_pairs(test.labels, 10, seed=1)

    def separation(model):  # on held-out pairs: (cosine margin same - different label, AUC of cosine for "same label")
        with torch.no_grad():
            cos = F.cosine_similarity(model.features(data.collate(pairs.a)), model.features(data.collate(pairs.b))).numpy()
        return cos[pairs.target == 1].mean() - cos[pairs.target == 0].mean(), roc_auc_score(pairs.target, cos)

    (margin_before, auc_before), (margin_after, auc_after) = separation(probe), separation(out.predictor.model.eval())
    assert margin_after > margin_before + 0.05
    assert auc_after > auc_before + 0.1
    acc = (out.predictor.predict_proba(test.inputs).argmax(1) == test.labels).mean()
    assert acc > 0.8, acc
    assert out.info["pairs"] == 2 * out.info["positive_pairs"] <= 4 * len(train)
    assert out.info["body_trainable_params"] + 2 * 32 + 2 == out.trainable_params


def test_top_layers_only_and_the_prefix_cache(tiny_bert, reviews):
    train, val, _ = split(reviews)
    ctx = ctx_for(tiny_bert)
    params = {"lr": 1e-3, "pairs_per_example": 2, "trainable_layers": 1, "loss": "cosine"}
    out = make_strategy("contrastive", params).fit(train, val, ctx)
    before = ctx.backbone.load_encoder().state_dict()
    after = out.predictor.model.encoder.state_dict()
    assert out.info["prefix_cache"]["used"] is True
    for name, value in after.items():
        same = torch.equal(value, before[name])
        if name.startswith(("embeddings.", "encoder.layer.0.", "pooler.")):
            assert same, f"{name} changed though frozen"
    assert any(not torch.equal(after[n], before[n]) for n in after if n.startswith("encoder.layer.1."))


def test_several_epochs_keep_the_best_validated_body(tiny_bert, reviews):
    train, val, _ = split(reviews)
    ctx = ctx_for(tiny_bert, early_stopping=EarlyStoppingConfig(metric="accuracy", patience=5))
    out = make_strategy("contrastive", {"lr": 2e-3, "pairs_per_example": 1, "epochs": 3}).fit(train, val, ctx)
    scores = [h["val_accuracy"] for h in out.history]
    assert len(scores) == 3 and out.info["epochs_run"] == 3
    assert out.info["best_epoch"] == int(np.argmax(scores)) + 1
    # the returned model is the best epoch's: its val accuracy is the recorded best
    acc = (out.predictor.predict_proba(val.inputs).argmax(1) == val.labels).mean()
    assert acc == pytest.approx(max(scores))


def test_early_stopping_stops_when_val_does_not_improve(tiny_bert, reviews):
    train, val, _ = split(reviews)
    ctx = ctx_for(tiny_bert, early_stopping=EarlyStoppingConfig(metric="accuracy", patience=1))
    # lr this small leaves the body (and so the val score) unchanged after the first epoch
    out = make_strategy("contrastive", {"lr": 1e-9, "pairs_per_example": 1, "epochs": 4}).fit(train, val, ctx)
    assert out.info["epochs_run"] == 2 and out.info["best_epoch"] == 1
    assert out.info["stopped_early"] and "no val_accuracy gain" in out.info["stop_reason"]


def test_parameters_are_validated(tiny_bert, reviews):
    with pytest.raises(ConfigError, match="loss"):
        make_strategy("contrastive", {"loss": "triplet"})
    with pytest.raises(ConfigError, match="pairs_per_example"):
        make_strategy("contrastive", {"pairs_per_example": 0})
    train, val, _ = split(reviews)
    with pytest.raises(ConfigError, match="trainable_layers.*at most 2"):
        make_strategy("contrastive", {"trainable_layers": 3}).fit(train, val, ctx_for(tiny_bert))


def test_without_validation_rows_the_last_epoch_and_a_normalised_head_are_kept(tiny_bert, reviews, tmp_path):
    from graftlab.strategies import load_predictor, save_predictor
    from graftlab.strategies.selection import REFIT_C

    train, _, test = split(reviews)
    no_val = train.subset(np.array([], dtype=np.int64))
    out = make_strategy("contrastive", {"lr": 2e-3, "pairs_per_example": 1, "epochs": 2}).fit(train, no_val, ctx_for(tiny_bert))
    assert out.info["epochs_run"] == 2 and out.info["best_epoch"] == 2  # nothing to compare epochs on
    assert out.info["C"] == REFIT_C and out.info["val_scores"] == {}
    assert out.predictor.model.normalize and all("val_" not in k for h in out.history for k in h)
    # the head sees unit-length features: scaling an input's pooled features leaves its logits unchanged
    feats = torch.randn(4, out.predictor.model.backbone.hidden_size)
    assert torch.allclose(out.predictor.model.head_of(feats), out.predictor.model.head_of(3.0 * feats), atol=1e-5)
    save_predictor(out.predictor, tmp_path / "m")
    again = load_predictor(tmp_path / "m")
    assert again.model.normalize
    np.testing.assert_allclose(again.predict_logits(test.inputs[:8]), out.predictor.predict_logits(test.inputs[:8]), atol=1e-5)


def test_an_interrupted_fit_resumes_to_the_same_model(tiny_bert, reviews, tmp_path):
    """The body trains in the one loop: a fit killed after a checkpoint resumes from it to the uninterrupted result."""
    train, val, test = split(reviews)
    params = {"lr": 2e-3, "pairs_per_example": 2, "epochs": 3, "loss": "cosine"}
    settings = {"checkpoint_every_steps": 4, "early_stopping": EarlyStoppingConfig(metric="accuracy", patience=3)}
    clean = make_strategy("contrastive", params).fit(train, val, ctx_for(tiny_bert, tmp_path / "clean", **settings))

    class Crash(Callback):
        def on_step_end(self, trainer, loss):
            if trainer.step == 30:  # mid-epoch 3 (12 steps each), after the checkpoint at step 28
                raise KeyboardInterrupt

    def crashing(cfg, **kw):
        return Trainer(cfg, callbacks=[Crash()], **kw)

    with pytest.raises(KeyboardInterrupt):
        make_strategy("contrastive", params).fit(train, val, ctx_for(tiny_bert, tmp_path / "run", crashing, **settings))
    assert (tmp_path / "run" / "checkpoint" / "state.json").is_file()
    torch.manual_seed(12345)  # a new process: the strategy reseeds, the checkpoint restores the RNG states
    resumed = make_strategy("contrastive", params).fit(train, val, ctx_for(tiny_bert, tmp_path / "run", **settings))
    assert not (tmp_path / "run" / "checkpoint").exists()  # removed once the fit finished
    strip = lambda hs: [{k: v for k, v in h.items() if k != "elapsed_s"} for h in hs]  # noqa: E731
    assert strip(resumed.history) == strip(clean.history) and len(clean.history) == 3
    assert clean.info["best_epoch"] < 3  # validated before the interruption: the resumed fit refits that body's head
    for key in ("best_epoch", "C", "steps", "stop_reason"):
        assert resumed.info[key] == clean.info[key], key
    np.testing.assert_array_equal(resumed.predictor.predict_logits(test.inputs), clean.predictor.predict_logits(test.inputs))
