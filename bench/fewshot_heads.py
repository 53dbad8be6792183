"""The logistic head of the few-shot strategies (linear_probe, contrastive): which features, which C, which rows.

On frozen MiniLM-L6 embeddings (mean-pooled, ``max_length`` 128) of the samples and test rows of ``bench/peers.py``
(same datasets, same draws), for each size and seed, heads that differ in one choice at a time:

* ``split-std-Cval``: what linear_probe did: the study's 82/18 train/validation split of the sample, standardised
  features, C in {0.01, 0.1, 1, 10} chosen on the validation rows (macro-F1).
* ``all-std-Ccv``: every sampled row, standardised, C from the same grid by stratified 3-fold CV on the sample.
* ``all-norm-C1``: every sampled row, L2-normalised features, C = 1 (SetFit's head, a plain probe).
* ``all-norm-Ccv``: every sampled row, L2-normalised, C in {0.1, 1, 10, 100} by stratified 3-fold CV.
* ``all-norm-C10``: every sampled row, L2-normalised, C = 10.
* ``all-scale-C10``: every sampled row divided by the sample's mean L2 norm (one number, so it folds into a linear
  head as the per-row normalisation cannot), C = 10.

``--variants`` runs a subset.

Prints mean test macro-F1 per dataset and size, and each variant's paired difference from ``--reference``
averaged over datasets (95% CI: test rows resampled per dataset, seeds averaged).

    python bench/fewshot_heads.py [--sizes 8 16 32] [--seeds 10] [--datasets ...] [--variants ...] [--reference NAME]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from peers import DATASETS, draw_sample, load_dataset, macro_f1, paired  # noqa: E402

GRID = [0.01, 0.1, 1.0, 10.0]
NORM_GRID = [0.1, 1.0, 10.0, 100.0]
VARIANTS = ["split-std-Cval", "all-std-Ccv", "all-norm-C1", "all-norm-Ccv", "all-norm-C10", "all-scale-C10"]


def _fit(x, y, c, seed=0):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)


def _cv_c(x, y, grid, seed):
    from sklearn.model_selection import StratifiedKFold

    folds = min(3, int(np.bincount(y).min()))
    best, best_s = grid[0], -1.0
    for c in grid:
        s = []
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
            s.append(macro_f1(y[te], _fit(x[tr], y[tr], c, seed).predict_proba(x[te])))
        if np.mean(s) > best_s + 1e-12:
            best, best_s = c, float(np.mean(s))
    return best


def heads(x, y, xt, seed, variants) -> dict[str, np.ndarray]:
    from sklearn.preprocessing import StandardScaler, normalize

    from graftlab.data.dataset import LabeledData
    from graftlab.study.fewshot import inner_split

    out = {}
    want = set(variants)
    data = LabeledData(list(range(len(y))), y, [str(i) for i in range(y.max() + 1)], np.arange(len(y)))
    tr, va = inner_split(data, 0.18, seed)
    itr, iva = np.asarray(tr.inputs), np.asarray(va.inputs)
    if "split-std-Cval" in want:
        sc = StandardScaler().fit(x[itr])
        best, best_s = None, -1.0
        for c in GRID:
            m = _fit(sc.transform(x[itr]), y[itr], c, seed)
            s = macro_f1(y[iva], m.predict_proba(sc.transform(x[iva])))
            if s > best_s + 1e-12:
                best, best_s = m, s
        out["split-std-Cval"] = best.predict_proba(sc.transform(xt))
    if "all-std-Ccv" in want:
        sc = StandardScaler().fit(x)
        out["all-std-Ccv"] = _fit(sc.transform(x), y, _cv_c(sc.transform(x), y, GRID, seed), seed).predict_proba(sc.transform(xt))
    xn, xtn = normalize(x), normalize(xt)
    if "all-norm-C1" in want:
        out["all-norm-C1"] = _fit(xn, y, 1.0, seed).predict_proba(xtn)
    if "all-norm-Ccv" in want:
        out["all-norm-Ccv"] = _fit(xn, y, _cv_c(xn, y, NORM_GRID, seed), seed).predict_proba(xtn)
    if "all-norm-C10" in want:
        out["all-norm-C10"] = _fit(xn, y, 10.0, seed).predict_proba(xtn)
    if "all-scale-C10" in want:
        s = float(np.linalg.norm(x, axis=1).mean())
        out["all-scale-C10"] = _fit(x / s, y, 10.0, seed).predict_proba(xt / s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    ap.add_argument("--sizes", nargs="+", type=int, default=[8, 16, 32])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--test-rows", type=int, default=500)
    ap.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    ap.add_argument("--reference", default="all-norm-C1", choices=VARIANTS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from graftlab.backbones import get_backbone

    bb = get_backbone("minilm-l6")
    acc: dict[int, dict[str, list]] = {}
    for dataset in args.datasets:
        pool, test = load_dataset(dataset, args.test_rows)
        names = sorted(pool.label.unique())
        y_pool = pool.label.map({n: i for i, n in enumerate(names)}).to_numpy()
        yt = test.label.map({n: i for i, n in enumerate(names)}).to_numpy()
        xt = bb.embed(test.text.tolist(), max_length=128)
        for n in args.sizes:
            per: dict[str, list[np.ndarray]] = {}
            for seed in range(args.seeds):
                sample = draw_sample(pool, n, seed)
                if sample is None:
                    break
                x = bb.embed(sample.text.tolist(), max_length=128)
                y = sample.label.map({n: i for i, n in enumerate(names)}).to_numpy()
                for k, p in heads(x, y, xt, seed, args.variants).items():
                    per.setdefault(k, []).append(p)
            if not per:
                continue
            line = "  ".join(f"{k} {np.mean([macro_f1(yt, p) for p in ps]):.3f}" for k, ps in per.items())
            print(f"{dataset:<10} n={n:<3} {line}", flush=True)
            for k, ps in per.items():
                slot = acc.setdefault(n, {}).setdefault(k, [[], []])
                slot[0].append(yt)
                slot[1].append(ps)
        del y_pool
    print(f"\nminus {args.reference}, macro-F1 averaged over datasets (95% CI):")
    for n, by in sorted(acc.items()):
        ref = by[args.reference]
        for k, (ys, ps) in by.items():
            if k == args.reference:
                continue
            d, lo, hi = paired(ys, ps, ref[1], 500)
            print(f"  n={n:<3} {k:<16} {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")


if __name__ == "__main__":
    main()
