"""Study results for the reporting tests: synthetic but realistic records built field by field (every optional
section present), and the results of a tiny real study run once per session."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from graftlab.core.config import StudyConfig
from graftlab.core.results import (
    AblationRow,
    BackboneInfo,
    Bakeoff,
    BakeoffCandidate,
    Calibration,
    ClassScores,
    Comparison,
    CurvePoint,
    DataCheckResult,
    DataSection,
    Environment,
    Exit,
    GateResult,
    Interval,
    LearningCurve,
    SeedStats,
    Selection,
    SliceResult,
    StrategySummary,
    StudyResults,
    Timings,
    unknown_keys,
)
from graftlab.study import Study
from graftlab.testing import make_tiny_bert, synthetic_reviews

SEEDS = [0, 1, 2]


def _ci(value: float, half: float) -> Interval:
    return Interval(value=round(value, 4), ci_low=round(value - half, 4), ci_high=round(value + half, 4))


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


def _strategy(rng, kind, strategy, params, f1, labels, neural=True) -> StrategySummary:
    acc = f1 + 0.02
    k = len(labels)
    summary = StrategySummary(
        kind=kind, strategy=strategy, params=params, seeds=SEEDS,
        test={
            "accuracy": _ci(acc, 0.02), "macro_f1": _ci(f1, 0.025), "roc_auc": _ci(min(0.99, f1 + 0.06), 0.015),
            "log_loss": _ci(1.1 - f1, 0.04), "brier": _ci((1 - f1) / 2, 0.02), "ece": _ci(0.02 + (1 - f1) / 8, 0.01),
        },
        seed_stats={
            "macro_f1": SeedStats(mean=f1, std=0.011, values=[f1 - 0.01, f1, f1 + 0.01]),
            "accuracy": SeedStats(mean=acc, std=0.01, values=[acc - 0.01, acc, acc + 0.01]),
        },
        val={"macro_f1": round(f1 + 0.013, 4), "accuracy": round(acc + 0.01, 4)},
        per_class={lbl: ClassScores(precision=round(f1 + 0.01 * i, 3), recall=round(f1 - 0.01 * i, 3),
                                    f1=round(f1, 3), support=1000 // k) for i, lbl in enumerate(labels)},
        confusion_matrix=_confusion(labels, acc, 1000 // k),
        latency_ms_b1=0.05 if not neural else 6.2, latency_ms_b32=0.4 if not neural else 31.5,
        model_bytes=2_000 if not neural else 90_867_000,
        trainable_params=0 if strategy == "majority" else 1_538 if strategy == "linear_probe" else 22_700_000,
        total_params=22_713_216 if neural else 0, fit_seconds=0.02 if not neural else 41.3,
        stopped_early=False,
    )
    if neural:
        summary.history = _history(rng, f1)
        summary.calibration = Calibration(
            temperature=round(1.31 + (0.861 - f1), 2), ece_before=round(0.081 + (0.861 - f1) / 4, 3),
            ece_after=round(0.023 + (0.861 - f1) / 10, 3),
            reliability_before=_reliability(rng, 0.4), reliability_after=_reliability(rng, 0.05),
        )
    return summary


def _comparisons(winner: str, runner_up: str) -> list[Comparison]:
    return [
        Comparison(a=winner, b=b, metric="macro_f1", diff=d, ci_low=lo, ci_high=hi, p_value=p, mcnemar_p=mp)
        for b, d, lo, hi, p, mp in (
            (runner_up, 0.0081, -0.0123, 0.0279, 0.4312, 0.5127),
            ("linear_probe", 0.0583, 0.0312, 0.0841, 0.0004, 0.0009),
            ("scratch", 0.1604, 0.1297, 0.1912, 0.0001, 0.0001),
            ("tfidf_logreg", 0.1192, 0.0886, 0.1487, 0.0002, 0.0003),
            ("majority", 0.4721, 0.4415, 0.5018, 0.0001, 0.0001),
        )
    ]


def _data(labels: list[str]) -> DataSection:
    n_classes = len(labels)
    counts = {s: {lbl: n // n_classes for lbl in labels} for s, n in (("train", 800), ("val", 200), ("test", 1000))}
    return DataSection(
        fingerprint="3f9a2c7be1d04f56a8e9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1",
        label_names=labels, splits={"train": 800, "val": 200, "test": 1000}, class_counts=counts,
        checks=[
            DataCheckResult(name="exact_duplicates_across_splits", status="pass", count=0, detail="no shared rows",
                            action=""),
            DataCheckResult(name="near_duplicates_across_splits", status="warn", count=3,
                            detail="3 test rows are near-duplicates of training rows",
                            action="kept; listed in data_checks.json"),
            DataCheckResult(name="class_imbalance", status="pass", count=0, detail="ratio 1.9", action=""),
        ],
    )


def _learning_curve() -> LearningCurve:
    sizes = [8, 32, 128, "all"]
    return LearningCurve(
        metric="macro_f1", sizes=sizes,
        points={
            name: [CurvePoint(size=s, n_train=n, mean=m, std=0.02, ci_low=m - 0.03, ci_high=m + 0.03)
                   for s, n, m in zip(sizes, [16, 64, 256, 800], means)]
            for name, means in (("linear_probe", [0.62, 0.72, 0.78, 0.803]),
                                ("full", [0.55, 0.70, 0.81, 0.853]),
                                ("tfidf_logreg", [0.51, 0.60, 0.69, 0.742]))
        },
        reading="linear_probe leads below 32/class; full above",
    )


def _bakeoff() -> Bakeoff:
    return Bakeoff(
        candidates=[
            BakeoffCandidate(backbone="minilm-l6", logme=0.412, probe_cv_accuracy=0.811, latency_ms_b1=6.2,
                             license="Apache-2.0", allowed=True, score=0.8),
            BakeoffCandidate(backbone="distilroberta", logme=0.398, probe_cv_accuracy=0.806, latency_ms_b1=11.9,
                             license="Apache-2.0", allowed=True, score=0.71),
            BakeoffCandidate(backbone="bert-nc", logme=0.44, probe_cv_accuracy=0.83, latency_ms_b1=14.0,
                             license="CC-BY-NC-4.0", allowed=False, score=None),
        ],
        winner="minilm-l6", rule="highest LogME among allowed licenses, latency as tie-break",
    )


def _explanations(labels: list[str]) -> list[dict[str, Any]]:
    return [
        {"label": labels[0], "kind": "confident_correct", "text": "absolutely delicious, will buy again",
         "tokens": ["[CLS]", "absolutely", "del", "##icious", ",", "will", "buy", "again", "[SEP]"],
         "attributions": [0.0, 0.31, 0.62, 0.55, 0.01, 0.08, 0.12, 0.2, 0.0], "prob": 0.981},
        {"label": labels[-1], "kind": "confident_wrong", "text": "not great, the bag arrived torn",
         "tokens": ["not", "great", ",", "the", "bag", "arrived", "torn"],
         "attributions": [-0.41, 0.77, 0.0, 0.01, -0.05, -0.02, -0.3], "prob": 0.912},
    ]


def make_results(n_classes: int = 2) -> StudyResults:
    """Complete results: every optional section present, one gate failing."""
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
    results = StudyResults(
        study="fine-foods", run_id="20261122-051500", created="2026-11-22T05:15:00+00:00", graftlab_version="0.1.0",
        config={"name": "fine-foods", "data": {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review",
                                                "label": "score", "slices": ["product_type"]},
                "backbones": ["minilm-l6"], "strategies": ["majority", "tfidf_logreg", {"finetune": {"trainable_layers": 2}}],
                "train": {"epochs": 10, "lr": 5e-5}, "eval": {"seeds": 3, "gates": ["macro_f1 >= 0.8", "ece <= 0.02"]}},
        data=_data(labels),
        backbone=BackboneInfo(name="minilm-l6", source_package="graftlab-assets-minilm", package_version="1.0.0",
                              weights_sha256="ab12" * 16, license="Apache-2.0", params=22_713_216, hidden_size=384,
                              max_length=256),
        environment=Environment(python="3.11.9", platform="Linux-6.1-x86_64", cpu="x86_64", threads=2,
                                packages={"torch": "2.4.1", "transformers": "4.45.2", "scikit-learn": "1.5.2"}),
        headline_metric="macro_f1",
        strategies=strategies,
        winner=winner, runner_up=runner_up,
        selection=Selection(rule="highest validation macro_f1 (mean over seeds) among transfer strategies",
                            selection_method="validation split",
                            why=f"{winner} had the highest mean validation macro_f1 (0.874)"),
        comparisons=_comparisons(winner, runner_up),
        transfer_gain={"over_scratch": Comparison(diff=0.1604, ci_low=0.1297, ci_high=0.1912, p_value=0.0001),
                       "over_tfidf_logreg": Comparison(diff=0.1192, ci_low=0.0886, ci_high=0.1487, p_value=0.0002)},
        gates=[
            GateResult(gate="macro_f1 >= 0.8", passed=True, evidence="macro_f1 0.861 [0.836, 0.886] >= 0.8"),
            GateResult(gate="beats: tfidf_logreg", passed=True, evidence="diff +0.119 [0.089, 0.149], p<0.001"),
            GateResult(gate="ece <= 0.02", passed=False, evidence="ece 0.037 > 0.02"),
        ],
        slices=[
            SliceResult(slice_column="product_type", slice=name, n=n, metric="macro_f1", value=value, ci_low=low,
                        ci_high=high, overall=0.861, flagged=flagged)
            for name, n, value, low, high, flagged in (("snacks", 412, 0.874, 0.842, 0.903, False),
                                                       ("coffee", 391, 0.869, 0.835, 0.9, False),
                                                       ("pet_food", 197, 0.712, 0.655, 0.768, True))
        ],
        robustness=[
            {"perturbation": "typos", "metric": "macro_f1", "clean": 0.861, "perturbed": 0.822, "drop": 0.039},
            {"perturbation": "lowercase", "metric": "macro_f1", "clean": 0.861, "perturbed": 0.858, "drop": 0.003},
        ],
        learning_curve=_learning_curve(),
        bakeoff=_bakeoff(),
        ablation=[
            AblationRow(strategy="finetune", knob="trainable_layers 2 → 4", metric="macro_f1", diff=0.004,
                        ci_low=-0.011, ci_high=0.019),
            AblationRow(strategy="finetune", knob="no layer-wise lr decay", metric="macro_f1", diff=-0.021,
                        ci_low=-0.036, ci_high=-0.007),
        ],
        explanations=_explanations(labels),
        timings=Timings(total_s=512.4, per_strategy_s={name: 100.0 for name in strategies}),
        exit=Exit(gates_passed=False),
    )
    assert unknown_keys(results) == []  # only what a study writes
    return results


@pytest.fixture(params=[2, 3], ids=["binary", "three_class"])
def results(request) -> StudyResults:
    return make_results(request.param)


@pytest.fixture
def binary_results() -> StudyResults:
    return make_results(2)


@pytest.fixture
def minimal_results() -> StudyResults:
    """What an early study writes: no optional sections at all."""
    full = make_results(2)
    strategies = {name: StrategySummary(kind=s.kind, test=dict(s.test), val=dict(s.val))
                  for name, s in full.strategies.items() if name in ("majority", "tfidf_logreg", "linear_probe")}
    results = StudyResults(study="early", run_id="20261101-000000", headline_metric="macro_f1",
                           strategies=strategies, winner="linear_probe")
    assert unknown_keys(results) == []
    return results


@pytest.fixture(scope="session")
def real_results(tmp_path_factory) -> StudyResults:
    """The results of a tiny real study (text, four strategies, a slice column, two gates), run once per session:
    what the readers get from a study rather than from this file. Shared by the tests: do not change it."""
    root = tmp_path_factory.mktemp("real-study")
    synthetic_reviews(240, seed=0).to_csv(root / "reviews.csv", index=False)
    cfg = StudyConfig.from_dict({
        "name": "real",
        "data": {"source": {"kind": "csv", "path": str(root / "reviews.csv")}, "text": "review", "label": "score",
                 "slices": ["product"]},
        "backbones": [str(make_tiny_bert(root / "tiny-bert"))],
        "strategies": ["majority", "tfidf_logreg", "linear_probe", {"finetune": {"trainable_layers": 1}}],
        "train": {"epochs": 1, "batch_size": 16, "max_length": 32},
        "eval": {"seeds": 2, "bootstrap": 100, "fractions": [0.5], "gates": ["macro_f1 >= 0.5", "beats: majority"]},
        "tracking": {"enabled": False},
        "output_dir": str(root / "runs"),
    })
    with pytest.MonkeyPatch.context() as patch:  # the study's cache and any ./.graft stay in the session's folder
        patch.setenv("GRAFT_CACHE_DIR", str(root / "cache"))
        patch.chdir(root)
        return Study(cfg, progress=False).run().results
