"""Synthetic but realistic study results, shaped like the results.json a study writes."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

SEEDS = [0, 1, 2]


def _ci(value: float, half: float) -> dict[str, float]:
    return {"value": round(value, 4), "ci_low": round(value - half, 4), "ci_high": round(value + half, 4)}


def _history(rng: np.random.Generator, final: float, steps: int = 12) -> list[list[dict[str, Any]]]:
    runs = []
    for _ in SEEDS:
        run = []
        for k in range(1, steps + 1):
            progress = 1 - np.exp(-k / 3)
            run.append({
                "step": k * 25, "epoch": k // 4, "lr": 5e-5,
                "train_loss": float(0.7 * np.exp(-k / 4) + 0.05 + rng.normal(0, 0.01)),
                "val_loss": float(0.6 * np.exp(-k / 5) + 0.15 + rng.normal(0, 0.01)),
                "val_macro_f1": float(0.5 + (final - 0.5) * progress + rng.normal(0, 0.008)),
                "val_accuracy": float(0.55 + (final - 0.5) * progress + rng.normal(0, 0.008)),
                "elapsed_s": k * 1.7,
            })
        runs.append(run)
    return runs


def _reliability(rng: np.random.Generator, skew: float) -> dict[str, list[float]]:
    lower = [i / 10 for i in range(10)]
    upper = [(i + 1) / 10 for i in range(10)]
    conf = [lo + 0.05 for lo in lower]
    acc = [float(np.clip(c - skew * (c - 0.5) + rng.normal(0, 0.01), 0, 1)) for c in conf]
    count = [0, 0, 0, 0, 0, 40, 60, 90, 160, 650]
    return {"bin_lower": lower, "bin_upper": upper, "confidence": conf, "accuracy": acc, "count": count}


def _confusion(labels: list[str], accuracy: float, n_per_class: int) -> list[list[int]]:
    k = len(labels)
    cm = []
    for i in range(k):
        correct = int(n_per_class * accuracy)
        row = [0] * k
        row[i] = correct
        wrong = n_per_class - correct
        for j in range(k):
            if j != i:
                # the next class takes most of the errors, so there is a clear worst pair
                share = 0.75 if j == (i + 1) % k or k == 2 else 0.25 / max(1, k - 2)
                row[j] = int(round(wrong * share))
        cm.append(row)
    return cm


def _strategy(rng, kind, strategy, params, f1, labels, neural=True, **extra) -> dict[str, Any]:
    acc = f1 + 0.02
    k = len(labels)
    entry = {
        "kind": kind, "strategy": strategy, "params": params, "seeds": SEEDS,
        "test": {
            "accuracy": _ci(acc, 0.02), "macro_f1": _ci(f1, 0.025), "roc_auc": _ci(min(0.99, f1 + 0.06), 0.015),
            "log_loss": _ci(1.1 - f1, 0.04), "brier": _ci((1 - f1) / 2, 0.02), "ece": _ci(0.02 + (1 - f1) / 8, 0.01),
        },
        "seed_stats": {
            "macro_f1": {"mean": f1, "std": 0.011, "values": [f1 - 0.01, f1, f1 + 0.01]},
            "accuracy": {"mean": acc, "std": 0.01, "values": [acc - 0.01, acc, acc + 0.01]},
        },
        "val": {"macro_f1": round(f1 + 0.013, 4), "accuracy": round(acc + 0.01, 4)},
        "per_class": {lbl: {"precision": round(f1 + 0.01 * i, 3), "recall": round(f1 - 0.01 * i, 3),
                            "f1": round(f1, 3), "support": 1000 // k} for i, lbl in enumerate(labels)},
        "confusion_matrix": _confusion(labels, acc, 1000 // k),
        "latency_ms_b1": 0.05 if not neural else 6.2, "latency_ms_b32": 0.4 if not neural else 31.5,
        "model_bytes": 2_000 if not neural else 90_867_000,
        "trainable_params": 0 if strategy == "majority" else 1_538 if strategy == "linear_probe" else 22_700_000,
        "total_params": 22_713_216 if neural else 0, "fit_seconds": 0.02 if not neural else 41.3,
        "stopped_early": False, "best_step": 250,
    }
    if neural:
        entry["history"] = _history(rng, f1)
        entry["calibration"] = {
            "temperature": round(1.31 + (0.861 - f1), 2), "ece_before": round(0.081 + (0.861 - f1) / 4, 3),
            "ece_after": round(0.023 + (0.861 - f1) / 10, 3),
            "reliability_before": _reliability(rng, 0.4), "reliability_after": _reliability(rng, 0.05),
        }
    entry.update(extra)
    return entry


def make_results(n_classes: int = 2) -> dict[str, Any]:
    """A complete results dict: every optional section present, one gate failing."""
    rng = np.random.default_rng(n_classes)
    labels = ["great", "other"] if n_classes == 2 else ["negative", "neutral", "positive"][:n_classes]
    winner, runner_up = "finetune[trainable_layers=2]", "full"
    strategies = {
        "majority": _strategy(rng, "baseline", "majority", {}, 0.389, labels, neural=False),
        "tfidf_logreg": _strategy(rng, "baseline", "tfidf_logreg", {"C": 1.0}, 0.742, labels, neural=False),
        "scratch": _strategy(rng, "baseline", "scratch", {}, 0.701, labels),
        "linear_probe": _strategy(rng, "transfer", "linear_probe", {}, 0.803, labels),
        winner: _strategy(rng, "transfer", "finetune", {"trainable_layers": 2}, 0.861, labels),
        runner_up: _strategy(rng, "transfer", "full", {}, 0.853, labels),
    }
    counts = {s: {lbl: n // n_classes for lbl in labels} for s, n in (("train", 800), ("val", 200), ("test", 1000))}
    comparisons = [
        {"a": winner, "b": b, "metric": "macro_f1", "diff": d, "ci_low": lo, "ci_high": hi, "p_value": p, "mcnemar_p": mp}
        for b, d, lo, hi, p, mp in (
            (runner_up, 0.0081, -0.0123, 0.0279, 0.4312, 0.5127),
            ("linear_probe", 0.0583, 0.0312, 0.0841, 0.0004, 0.0009),
            ("scratch", 0.1604, 0.1297, 0.1912, 0.0001, 0.0001),
            ("tfidf_logreg", 0.1192, 0.0886, 0.1487, 0.0002, 0.0003),
            ("majority", 0.4721, 0.4415, 0.5018, 0.0001, 0.0001),
        )
    ]
    return {
        "study": "fine-foods", "run_id": "20261122-051500", "created": "2026-11-22T05:15:00+00:00",
        "graftlab_version": "0.1.0",
        "config": {"name": "fine-foods", "data": {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review",
                                                   "label": "score", "slices": ["product_type"]},
                   "backbones": ["minilm-l6"], "strategies": ["majority", "tfidf_logreg", {"finetune": {"trainable_layers": 2}}],
                   "train": {"epochs": 10, "lr": 5e-5}, "eval": {"seeds": 3, "gates": ["macro_f1 >= 0.8", "ece <= 0.02"]}},
        "data": {
            "fingerprint": "3f9a2c7be1d04f56a8e9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1",
            "label_names": labels, "splits": {"train": 800, "val": 200, "test": 1000}, "class_counts": counts,
            "length_stats": {"tokens": {"mean": 58.4, "p95": 171, "max": 512}, "truncated": 12},
            "checks": [
                {"name": "exact_duplicates_across_splits", "status": "pass", "count": 0, "detail": "no shared rows", "action": ""},
                {"name": "near_duplicates_across_splits", "status": "warn", "count": 3,
                 "detail": "3 test rows are near-duplicates of training rows", "action": "kept; listed in data_checks.json"},
                {"name": "class_imbalance", "status": "pass", "count": 0, "detail": "ratio 1.9", "action": ""},
            ],
        },
        "backbone": {"name": "minilm-l6", "source_package": "graftlab-assets-minilm", "package_version": "1.0.0",
                     "weights_sha256": "ab12" * 16, "license": "Apache-2.0", "params": 22_713_216, "hidden_size": 384,
                     "max_length": 256},
        "environment": {"python": "3.11.9", "platform": "Linux-6.1-x86_64", "cpu": "x86_64", "threads": 2,
                        "packages": {"torch": "2.4.1", "transformers": "4.45.2", "scikit-learn": "1.5.2"}},
        "headline_metric": "macro_f1",
        "strategies": strategies,
        "winner": winner, "runner_up": runner_up,
        "selection": {"rule": "highest validation macro_f1 (mean over seeds) among transfer strategies",
                      "selection_method": "validation split",
                      "why": f"{winner} had the highest mean validation macro_f1 (0.874)"},
        "comparisons": comparisons,
        "transfer_gain": {"over_scratch": {"diff": 0.1604, "ci_low": 0.1297, "ci_high": 0.1912, "p_value": 0.0001},
                          "over_tfidf_logreg": {"diff": 0.1192, "ci_low": 0.0886, "ci_high": 0.1487, "p_value": 0.0002}},
        "gates": [
            {"gate": "macro_f1 >= 0.8", "passed": True, "evidence": "macro_f1 0.861 [0.836, 0.886] >= 0.8"},
            {"gate": "beats: tfidf_logreg", "passed": True, "evidence": "diff +0.119 [0.089, 0.149], p<0.001"},
            {"gate": "ece <= 0.02", "passed": False, "evidence": "ece 0.037 > 0.02"},
        ],
        "slices": [
            {"slice_column": "product_type", "slice": "snacks", "n": 412, "metric": "macro_f1", "value": 0.874,
             "ci_low": 0.842, "ci_high": 0.903, "overall": 0.861, "flagged": False},
            {"slice_column": "product_type", "slice": "coffee", "n": 391, "metric": "macro_f1", "value": 0.869,
             "ci_low": 0.835, "ci_high": 0.9, "overall": 0.861, "flagged": False},
            {"slice_column": "product_type", "slice": "pet_food", "n": 197, "metric": "macro_f1", "value": 0.712,
             "ci_low": 0.655, "ci_high": 0.768, "overall": 0.861, "flagged": True},
        ],
        "robustness": [
            {"perturbation": "typos", "metric": "macro_f1", "clean": 0.861, "perturbed": 0.822, "drop": 0.039},
            {"perturbation": "lowercase", "metric": "macro_f1", "clean": 0.861, "perturbed": 0.858, "drop": 0.003},
        ],
        "learning_curve": {
            "metric": "macro_f1", "sizes": [8, 32, 128, "all"],
            "points": {
                name: [{"size": s, "n_train": n, "mean": m, "std": 0.02, "ci_low": m - 0.03, "ci_high": m + 0.03}
                       for s, n, m in zip([8, 32, 128, "all"], [16, 64, 256, 800], means)]
                for name, means in (("linear_probe", [0.62, 0.72, 0.78, 0.803]),
                                    ("full", [0.55, 0.70, 0.81, 0.853]),
                                    ("tfidf_logreg", [0.51, 0.60, 0.69, 0.742]))
            },
            "reading": "linear_probe leads below 32/class; full above",
        },
        "bakeoff": {
            "candidates": [
                {"backbone": "minilm-l6", "logme": 0.412, "probe_cv_accuracy": 0.811, "latency_ms_b1": 6.2,
                 "license": "Apache-2.0", "allowed": True, "score": 0.8},
                {"backbone": "distilroberta", "logme": 0.398, "probe_cv_accuracy": 0.806, "latency_ms_b1": 11.9,
                 "license": "Apache-2.0", "allowed": True, "score": 0.71},
                {"backbone": "bert-nc", "logme": 0.44, "probe_cv_accuracy": 0.83, "latency_ms_b1": 14.0,
                 "license": "CC-BY-NC-4.0", "allowed": False, "score": None},
            ],
            "winner": "minilm-l6", "rule": "highest LogME among allowed licenses, latency as tie-break",
        },
        "ablation": [
            {"strategy": "finetune", "knob": "trainable_layers 2 → 4", "metric": "macro_f1", "diff": 0.004,
             "ci_low": -0.011, "ci_high": 0.019},
            {"strategy": "finetune", "knob": "no layer-wise lr decay", "metric": "macro_f1", "diff": -0.021,
             "ci_low": -0.036, "ci_high": -0.007},
        ],
        "explanations": [
            {"label": labels[0], "kind": "confident_correct", "text": "absolutely delicious, will buy again",
             "tokens": ["[CLS]", "absolutely", "del", "##icious", ",", "will", "buy", "again", "[SEP]"],
             "attributions": [0.0, 0.31, 0.62, 0.55, 0.01, 0.08, 0.12, 0.2, 0.0], "prob": 0.981},
            {"label": labels[-1], "kind": "confident_wrong", "text": "not great, the bag arrived torn",
             "tokens": ["not", "great", ",", "the", "bag", "arrived", "torn"],
             "attributions": [-0.41, 0.77, 0.0, 0.01, -0.05, -0.02, -0.3], "prob": 0.912},
        ],
        "timings": {"total_s": 512.4, "per_strategy_s": {name: 100.0 for name in strategies}},
        "exit": {"gates_passed": False},
    }


@pytest.fixture(params=[2, 3], ids=["binary", "three_class"])
def results(request) -> dict[str, Any]:
    return make_results(request.param)


@pytest.fixture
def binary_results() -> dict[str, Any]:
    return make_results(2)


@pytest.fixture
def minimal_results() -> dict[str, Any]:
    """What an early study writes: no optional sections at all."""
    full = make_results(2)
    keep = {"majority", "tfidf_logreg", "linear_probe"}
    strategies = {}
    for name in keep:
        entry = full["strategies"][name]
        strategies[name] = {"kind": entry["kind"], "test": copy.deepcopy(entry["test"]), "val": dict(entry["val"])}
    return {"study": "early", "run_id": "20261101-000000", "headline_metric": "macro_f1",
            "strategies": strategies, "winner": "linear_probe"}
