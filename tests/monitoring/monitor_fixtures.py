"""Helpers for the monitoring tests: a reference profile like graft study writes, a small TF-IDF model, and a
writer that fills a prediction log with scored traffic (and feedback)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np

from graftlab.testing import synthetic_reviews


def reference_profile(texts: list[str], proba: np.ndarray, labels: np.ndarray, label_names: list[str],
                      embeddings: np.ndarray | None = None, backbone: str | None = None) -> dict:
    """What graft study writes to reference.json (see Study._reference), from validation predictions."""
    from graftlab.evaluation import classification_metrics

    words = np.array([len(t.split()) for t in texts])
    m = classification_metrics(labels, proba)
    ref = {
        "n": len(texts), "label_names": label_names, "confidences": proba.max(1).round(6).tolist(),
        "predicted_distribution": np.bincount(proba.argmax(1), minlength=len(label_names)).tolist(),
        "true_distribution": np.bincount(labels, minlength=len(label_names)).tolist(),
        "input_words": {"mean": float(words.mean()), "std": float(words.std()),
                        "quantiles": np.quantile(words, [0, 0.25, 0.5, 0.75, 1]).tolist()},
        "empty_rate": float(np.mean([not t.strip() for t in texts])),
        "val_metrics": {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "log_loss": m["log_loss"]},
    }
    if embeddings is not None:
        ref["embeddings"] = np.round(embeddings, 5).tolist()
        ref["embedding_backbone"] = backbone
    return ref


def fit_tfidf(n: int = 300, seed: int = 0):
    """(predictor, val texts, val labels, label names) of a TF-IDF + logistic regression on synthetic reviews."""
    from graftlab.core.config import TrainConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.strategies import FitContext, make_strategy

    df = synthetic_reviews(n, seed=seed)
    names = sorted(df.score.unique())
    y = df.score.map({c: i for i, c in enumerate(names)}).to_numpy()
    data = LabeledData(df.review.tolist(), y, names, np.arange(n))
    cut = int(n * 0.6)
    fitted = make_strategy("tfidf_logreg").fit(data.subset(range(cut)), data.subset(range(cut, n)),
                                               FitContext(train=TrainConfig(), seed=0))
    return fitted.predictor, df.review.tolist()[cut:], y[cut:], names


def write_traffic(db: Path, model_folder: Path, texts: list[str], *, log_inputs: bool = True,
                  labels: list[str] | None = None, start: float | None = None, step: float = 1.0) -> list[str]:
    """Score ``texts`` with the packaged model and log them as served requests (and ``labels`` as feedback).

    Returns the request ids.
    """
    from graftlab.packaging import load_model
    from graftlab.serving.predlog import PredictionLog, PredictionRow
    from graftlab.serving.resolve import manifest_digest

    model = load_model(model_folder)
    proba = model.predict_proba(texts)
    version = f"{model.name}#{manifest_digest(model.folder)}"
    start = time.time() - step * len(texts) if start is None else start
    ids = [f"req-{start:.0f}-{i}" for i in range(len(texts))]
    rows = [PredictionRow(rid, "champion", version, t, model.label_names[int(p.argmax())],
                          {n: float(v) for n, v in zip(model.label_names, p)}, 3.0, start + i * step)
            for i, (rid, t, p) in enumerate(zip(ids, texts, proba))]
    log = PredictionLog(db, log_inputs=log_inputs)
    try:
        log.write_sync(rows)
    finally:
        log.close()
    if labels is not None:
        conn = sqlite3.connect(db)
        with conn:
            conn.executemany("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?)",
                             [(rid, start + i * step + 0.5, lab) for i, (rid, lab) in enumerate(zip(ids, labels))])
        conn.close()
    return ids
