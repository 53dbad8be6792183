"""The training loop: freezing, parameter groups, early stopping, determinism and resume."""

import numpy as np
import torch

from graftlab.backbones import get_backbone
from graftlab.core.config import TrainConfig
from graftlab.data.dataset import LabeledData
from graftlab.strategies.neural import EncoderClassifier, freeze_all_but_top, param_groups
from graftlab.training import Trainer, seed_everything
from graftlab.training.batching import bucketed_batches


def encoded(bb, df, lo, hi):
    names = sorted(df.score.unique())
    y = df.score.map({n: i for i, n in enumerate(names)}).to_numpy()[lo:hi]
    return bb.encode(df.review.tolist()[lo:hi], y, max_length=32)


def build(bb, k, seed=0):
    seed_everything(seed)
    model = EncoderClassifier(bb, bb.load_encoder(), 2, 0.1)
    freeze_all_but_top(model, k)
    return model


def test_bucketed_batches_cover_every_index_once_and_group_lengths():
    lengths = np.random.default_rng(0).integers(1, 100, size=1000)
    batches = bucketed_batches(lengths, 16, np.random.default_rng(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 4  # sorted within buckets: far less padding than random batches


def test_frozen_layers_do_not_change_and_param_groups_follow_layer_decay(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    model = build(bb, 1)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    groups = param_groups(model, lr=1e-3, weight_decay=0.01, head_lr=1e-2, layer_lr_decay=0.5)
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs["head"] == 1e-2 and lrs["block1"] == 1e-3
    assert "block0" not in lrs and "embeddings" not in lrs  # frozen groups get no optimizer group
    assert all(g["weight_decay"] == 0.0 for g in groups if g["name"].endswith("no_decay"))

    cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=16, max_length=32)
    Trainer(cfg, progress=False).fit(model, groups, encoded(bb, reviews, 0, 160), encoded(bb, reviews, 160, 200))
    after = model.encoder.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("encoder.layer.1.") for k in changed)

    full = build(bb, None)
    decayed = {g["name"]: g["lr"] for g in param_groups(full, 1e-3, 0.0, None, layer_lr_decay=0.5)}
    assert decayed["block1"] == 1e-3 and decayed["block0"] == 5e-4 and decayed["embeddings"] == 2.5e-4


def test_same_seed_gives_identical_training(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=16, max_length=32)
    runs = []
    for _ in range(2):
        model = build(bb, None, seed=3)
        res = Trainer(cfg, seed=3, progress=False).fit(model, param_groups(model, 3e-3, 0.01), encoded(bb, reviews, 0, 160), encoded(bb, reviews, 160, 200))
        runs.append(([{k: v for k, v in h.items() if k != "elapsed_s"} for h in res.history], model.head.weight.detach().clone()))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_early_stopping_restores_the_best_checkpoint(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    cfg = TrainConfig(epochs=30, lr=5e-2, batch_size=16, max_length=32, early_stopping={"patience": 2, "metric": "loss"})
    model = build(bb, None)
    val = encoded(bb, reviews, 160, 200)
    res = Trainer(cfg, progress=False).fit(model, param_groups(model, 5e-2, 0.0), encoded(bb, reviews, 0, 160), val)
    assert res.stopped_early and res.steps < 30 * 10
    best = min(res.history, key=lambda h: h["val_loss"])
    assert res.best_step == best["step"]
    from graftlab.training import predict_logits

    logits = torch.from_numpy(predict_logits(model, val, 64))
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(val.labels)).item()
    assert abs(loss - best["val_loss"]) < 1e-5  # the weights in the model are the best ones, not the last


def test_time_budget_stops_training(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    cfg = TrainConfig(epochs=1000, lr=1e-3, batch_size=16, max_length=32, time_budget_s=0.5, early_stopping=None)
    model = build(bb, None)
    res = Trainer(cfg, progress=False).fit(model, param_groups(model, 1e-3, 0.0), encoded(bb, reviews, 0, 160), encoded(bb, reviews, 160, 200))
    assert "time budget" in res.stop_reason and res.steps < 1000 * 10


def test_resume_from_a_mid_epoch_checkpoint_gives_the_same_result(tiny_bert, reviews, tmp_path):
    """Interrupt after a checkpoint (simulated by a callback raising), resume, compare with a clean run."""
    from graftlab.training import Callback

    bb = get_backbone(tiny_bert)
    cfg = TrainConfig(epochs=3, lr=3e-3, batch_size=16, max_length=32, checkpoint_every_steps=4, early_stopping=None)
    train, val = encoded(bb, reviews, 0, 160), encoded(bb, reviews, 160, 200)

    clean = build(bb, None, seed=1)
    ref = Trainer(cfg, seed=1, work_dir=tmp_path / "clean", progress=False).fit(clean, param_groups(clean, 3e-3, 0.01), train, val)

    class Crash(Callback):
        def on_step_end(self, trainer, loss):
            if trainer.step == 14:  # mid-epoch 2, after the checkpoint at step 12
                raise KeyboardInterrupt

    model = build(bb, None, seed=1)
    try:
        Trainer(cfg, seed=1, work_dir=tmp_path / "run", progress=False, callbacks=[Crash()]).fit(model, param_groups(model, 3e-3, 0.01), train, val)
    except KeyboardInterrupt:
        pass
    assert (tmp_path / "run" / "checkpoint" / "state.json").is_file()
    resumed_model = build(bb, None, seed=1)
    torch.manual_seed(12345)  # the resumed process starts with a different RNG state; the checkpoint restores it
    res = Trainer(cfg, seed=1, work_dir=tmp_path / "run", progress=False).fit(resumed_model, param_groups(resumed_model, 3e-3, 0.01), train, val)
    strip = lambda hs: [{k: v for k, v in h.items() if k != "elapsed_s"} for h in hs]  # noqa: E731
    assert strip(res.history) == strip(ref.history)
    for (k, a), b in zip(clean.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_without_validation_rows_nothing_stops_early_and_the_last_weights_are_kept(tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=16, max_length=32, early_stopping={"patience": 1})
    train, no_val = encoded(bb, reviews, 0, 160), encoded(bb, reviews, 0, 0)
    model = build(bb, None, seed=1)
    res = Trainer(cfg, seed=1, progress=False).fit(model, param_groups(model, 3e-3, 0.01), train, no_val)
    assert res.best_metric is None and res.steps == 2 * 10 and not res.stopped_early
    assert [h["epoch"] for h in res.history] == [1.0, 2.0] and all("val_" not in k for h in res.history for k in h)
