"""One trial = one strategy × one seed (× one training-set size): fit, predict val and test, measure.

A finished trial leaves ``result.json`` + ``logits.safetensors`` (+ ``model/``) in its folder and is
never run again; an unfinished one resumes from the checkpoint the trainer left there.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import load_arrays, load_json, save_arrays, save_json
from ..core.config import StrategySpec, StudyConfig
from ..data.dataset import LabeledData
from ..strategies import Strategy, save_predictor, trial_context
from ..strategies.base import Predictor
from ..training import Trainer, seed_everything

__all__ = ["TrialKey", "TrialRecord", "run_trial", "load_trial", "measure_latency", "folder_bytes", "slug"]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


@dataclass(frozen=True)
class TrialKey:
    strategy: str  # display name
    seed: int
    size: str = "all"  # learning-curve size label

    def folder(self, run_dir: Path) -> Path:
        return run_dir / "trials" / slug(self.strategy) / f"size-{self.size}" / f"seed-{self.seed}"


@dataclass
class TrialRecord:
    key: TrialKey
    result: dict[str, Any]
    val_logits: np.ndarray
    test_logits: np.ndarray
    folder: Path

    @property
    def model_dir(self) -> Path:
        return self.folder / "model"


def load_trial(key: TrialKey, run_dir: Path) -> TrialRecord | None:
    folder = key.folder(run_dir)
    if not (folder / "result.json").is_file():
        return None
    arrays = load_arrays(folder / "logits.safetensors")
    return TrialRecord(key, load_json(folder / "result.json"), arrays["val"], arrays["test"], folder)


def measure_latency(predictor: Predictor, inputs: list, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per example at batch size 1 and 32, after a warm-up, on this machine."""
    if not inputs:
        return {}
    sample = (list(inputs) * (1 + 64 // max(len(inputs), 1)))[:64]
    predictor.predict_logits(sample[:2], batch_size=1)  # warm-up: lazy init, allocator
    t = time.perf_counter()
    for x in sample[:repeats]:
        predictor.predict_logits([x], batch_size=1)
    b1 = (time.perf_counter() - t) / repeats * 1000
    t = time.perf_counter()
    predictor.predict_logits(sample, batch_size=32)
    b32 = (time.perf_counter() - t) / len(sample) * 1000
    return {"latency_ms_b1": round(b1, 3), "latency_ms_b32": round(b32, 3)}


def folder_bytes(folder: Path) -> int:
    return int(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()))


def run_trial(
    key: TrialKey,
    spec: StrategySpec,
    strategy: Strategy,
    train: LabeledData,
    val: LabeledData,
    test: LabeledData,
    cfg: StudyConfig,
    backbone: Any,
    run_dir: Path,
    *,
    keep_model: bool = True,
    measure: bool = True,
    progress: bool = True,
) -> TrialRecord:
    """Fit ``strategy`` with ``key.seed``, predict val and test, save everything the study needs."""
    folder = key.folder(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    seed_everything(key.seed)
    ctx = trial_context(cfg.train, key.seed, Trainer, backbone=backbone if strategy.uses_backbone else None,
                        work_dir=folder, progress=progress)
    strategy.check_data(train, ctx.backbone)  # a text-only strategy on images fails here, with what to do
    t0 = time.perf_counter()
    outcome = strategy.fit(train, val, ctx)
    fit_s = time.perf_counter() - t0

    def predict(inputs: list) -> np.ndarray:
        if outcome.logits_for is not None:  # from the fit's caches: the same logits without the frozen forward
            return outcome.logits_for(inputs)
        return outcome.predictor.predict_logits(inputs, cfg.train.eval_batch_size)

    t0 = time.perf_counter()
    # no validation rows: the refit on every labeled example (Study._refit)
    val_logits = predict(list(val.inputs)) if len(val) else np.zeros((0, train.n_classes), dtype=np.float32)
    test_logits = predict(list(test.inputs))
    predict_s = time.perf_counter() - t0

    result: dict[str, Any] = {
        "strategy": key.strategy, "name": spec.name, "params": spec.params, "seed": key.seed, "size": key.size,
        "kind": strategy.kind, "n_train": len(train), "fit_seconds": round(fit_s, 3), "predict_seconds": round(predict_s, 3),
        "history": outcome.history, "trainable_params": outcome.trainable_params, "total_params": outcome.total_params,
        "info": outcome.info,
    }
    if measure:
        result.update(measure_latency(outcome.predictor, list(test.inputs[:64])))
    if keep_model:
        save_predictor(outcome.predictor, folder / "model.tmp")
        shutil.rmtree(folder / "model", ignore_errors=True)
        (folder / "model.tmp").rename(folder / "model")
        result["model_bytes"] = folder_bytes(folder / "model")
    save_arrays({"val": val_logits, "test": test_logits}, folder / "logits.safetensors")
    save_json(result, folder / "result.json")  # written last: its presence marks the trial finished
    return TrialRecord(key, result, val_logits, test_logits, folder)
