"""Paired bootstrap of every strategy against pixel_logreg at each learning-curve size of a finished image study.

The study reports paired comparisons for the full training set; this reads the saved test logits of every
trial (runs/<study>/<run>/trials/*/size-*/seed-0) to give the same comparison at each curve size.
Usage: python bench/fashion_mnist_paired.py runs/fashion-mnist/<run-id>
"""
import json, sys, numpy as np
from pathlib import Path
from graftlab.core.artifacts import load_arrays
from graftlab.evaluation import softmax
from graftlab.evaluation.bootstrap import paired_bootstrap
run = Path(sys.argv[1]); r = json.load(open(run / "results.json"))
import pandas as pd
# test labels: from predictions parquet of any strategy
df = pd.read_parquet(run / "predictions" / "pixel_logreg.parquet"); y = df[df.split == "test"].y_true.to_numpy()
def proba(folder, size): return softmax(load_arrays(run / "trials" / folder / f"size-{size}" / "seed-0" / "logits.safetensors")["test"])
folders = {p.name: p.name for p in (run / "trials").iterdir()}
for size in ("20", "all"):
    base = proba("pixel_logreg", size)
    for f in sorted(folders):
        if f in ("pixel_logreg", "majority"): continue
        for m in ("accuracy", "macro_f1"):
            res = paired_bootstrap(y, proba(f, size), base, m, n_boot=1000, seed=0)
            print(size, f, "-", "pixel_logreg", m, f"{res['diff']:+.3f} [{res['ci_low']:+.3f}, {res['ci_high']:+.3f}] p={res['p_value']:.3g}")
    for f in ("pixel_logreg", *sorted(x for x in folders if x not in ("pixel_logreg","majority"))):
        p = proba(f, size); print(size, f, "acc", round(float((p.argmax(1)==y).mean()),3))
