"""The chosen model's test predictions, from the files a study writes next to its report: ROC and precision-recall
curves from ``predictions/<strategy>.parquet``, and the misclassified test examples as ``test_errors.csv``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.results import StudyResults

__all__ = ["TEST_ERRORS_CSV", "ClassCurve", "class_curves", "read_test_errors", "shipped_test_predictions",
           "write_test_errors"]

TEST_ERRORS_CSV = "test_errors.csv"


@dataclass(frozen=True)
class ClassCurve:
    """One class against the rest: its ROC and precision-recall curves, their areas and the class's test rows."""

    label: str
    positives: int
    prevalence: float
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float
    recall: np.ndarray
    precision: np.ndarray
    ap: float


def class_curves(y_true: np.ndarray, proba: np.ndarray, label_names: Sequence[str]) -> list[ClassCurve]:
    """One-vs-rest curves of each class (of a binary task, the second class only, as its ROC AUC is scored).

    Args:
        y_true: (n,) class indices.
        proba: (n, k) predicted probabilities.
        label_names: the k class names.

    Returns:
        A curve per class that has both positive and negative rows in ``y_true`` (the others have none).
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=np.float64)
    curves = []
    for c in [1] if len(label_names) == 2 else range(len(label_names)):
        positive, score = y_true == c, proba[:, c]
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, score)
        precision, recall, _ = precision_recall_curve(positive, score)
        curves.append(ClassCurve(
            label=str(label_names[c]), positives=int(positive.sum()), prevalence=float(positive.mean()),
            fpr=fpr, tpr=tpr, auc=float(roc_auc_score(positive, score)),
            recall=recall, precision=precision, ap=float(average_precision_score(positive, score)),
        ))
    return curves


def shipped_test_predictions(run_dir: str | Path, results: StudyResults) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(y_true, proba, seed) of the winner's shipped seed on the test split, read from ``predictions/<winner>.parquet``
    in ``run_dir``; None when the run folder has no such predictions."""
    import pandas as pd

    path = Path(run_dir) / "predictions" / f"{results.winner.replace('/', '_')}.parquet"  # named as the study names it
    columns = [f"p_{label}" for label in results.label_names]
    if not path.is_file() or not columns:
        return None
    frame = pd.read_parquet(path)
    test = frame[frame["split"] == "test"]
    seeds = sorted(set(test["seed"]))
    if not seeds or any(c not in test.columns for c in columns):
        return None
    seed = results.champion.shipped_seed if results.champion.shipped_seed in seeds else seeds[0]
    rows = test[test["seed"] == seed]
    return rows["y_true"].to_numpy(dtype=np.int64), rows[columns].to_numpy(dtype=np.float64), int(seed)


def write_test_errors(run_dir: str | Path, ids: Sequence[Any], inputs: Sequence[Any], y_true: Sequence[int],
                      proba: np.ndarray, label_names: Sequence[str]) -> Path:
    """Write ``test_errors.csv`` into ``run_dir``: each misclassified example, most confident first.

    Columns: ``id`` (the row in the data source), ``input`` (texts only: an image is known by its id),
    ``true_label``, ``predicted_label`` and ``confidence`` (the probability of the predicted label).
    """
    import pandas as pd

    names = np.asarray([str(n) for n in label_names], dtype=object)
    y_true, proba = np.asarray(y_true, dtype=np.int64), np.asarray(proba, dtype=np.float64)
    predicted = proba.argmax(1)
    wrong = np.flatnonzero(predicted != y_true)
    columns: dict[str, Any] = {"id": np.asarray(ids)[wrong]}
    if all(isinstance(x, str) for x in inputs):
        columns["input"] = [inputs[i] for i in wrong]
    columns.update(true_label=names[y_true[wrong]], predicted_label=names[predicted[wrong]],
                   confidence=proba[wrong, predicted[wrong]].round(4))
    path = Path(run_dir) / TEST_ERRORS_CSV
    pd.DataFrame(columns).sort_values("confidence", ascending=False, kind="stable").to_csv(path, index=False)
    return path


def read_test_errors(run_dir: str | Path) -> tuple[Any, bytes] | None:
    """(the table, the file's bytes) of ``test_errors.csv`` in ``run_dir``; None when there is none."""
    import io

    import pandas as pd

    path = Path(run_dir) / TEST_ERRORS_CSV
    if not path.is_file():
        return None
    raw = path.read_bytes()
    return pd.read_csv(io.BytesIO(raw), keep_default_na=False), raw
