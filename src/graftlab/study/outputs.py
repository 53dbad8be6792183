"""What a study writes beside its results: each strategy's predictions and the packaged model's monitoring reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.results import StrategySummary
from ..data.images import brightness
from ..data.prepare import PreparedData
from ..evaluation import softmax
from .trials import TrialRecord

__all__ = ["monitoring_reference", "write_predictions"]


def write_predictions(trials: dict[str, list[TrialRecord]], prepared: PreparedData, run_dir: Path) -> None:
    """``predictions/<strategy>.parquet``: each val and test example's true and predicted class and probability per
    class, for every seed."""
    out = run_dir / "predictions"
    out.mkdir(exist_ok=True)
    for name, recs in trials.items():
        frames = []
        for split, data in (("val", prepared.val), ("test", prepared.test)):
            for t in recs:
                p = softmax(t.val_logits if split == "val" else t.test_logits)
                # every column at once: one insert per class fragments the frame (pandas warns from 100 classes)
                frames.append(pd.DataFrame({"id": data.ids, "split": split, "seed": t.key.seed, "y_true": data.labels,
                                            "y_pred": p.argmax(1),
                                            **{f"p_{label}": p[:, j] for j, label in enumerate(prepared.label_names)}}))
        pd.concat(frames).to_parquet(out / f"{name.replace('/', '_')}.parquet", index=False)


def monitoring_reference(shipped: TrialRecord, prepared: PreparedData, bb, w: StrategySummary, max_length: int) -> dict[str, Any]:
    """Reference profile for drift monitoring, from the validation split the model never trained on."""
    val = prepared.val
    proba = softmax(shipped.val_logits, w.calibration.temperature)
    images = val.modality == "image"
    texts = [] if images else [str(x) for x in val.inputs]  # images have no words: their embeddings profile them
    lengths = np.array([len(t.split()) for t in texts] or [0])
    ref: dict[str, Any] = {
        "n": len(val),
        "label_names": prepared.label_names,
        "confidences": proba.max(1).round(6).tolist(),
        "predicted_distribution": np.bincount(proba.argmax(1), minlength=len(prepared.label_names)).tolist(),
        "true_distribution": val.class_counts().tolist(),
        "input_words": None if images else _profile(lengths),
        "empty_rate": float(np.mean([not t.strip() for t in texts])) if texts else 0.0,
        "input_brightness": _profile(brightness(list(val.inputs))) if images else None,
        "val_metrics": dict(w.val),
        # a sample of validation texts: serving checks a quantized model's agreement on them at load
        "texts": texts[:256],
    }
    if bb is not None:
        sample = list(val.inputs)[:256] if images else texts[:256]
        ref["embeddings"] = np.round(bb.embed(sample, max_length=max_length), 5).tolist()
        ref["embedding_backbone"] = bb.card.name
    return ref


def _profile(values: np.ndarray) -> dict[str, Any]:
    """Mean, std and quantiles of a per-input statistic (words per text, brightness of an image)."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()),
            "quantiles": np.quantile(values, [0, 0.25, 0.5, 0.75, 1]).tolist()}
