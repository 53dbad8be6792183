"""The one shape of a prediction, shared by ``graft predict``, ``graft explain``, HTTP ``/v1/predict`` and ``/v1/explain``.

A prediction is ``label`` (the most probable label), ``confidence`` (its probability) and ``probabilities`` (every
label's, in the model's label order). Only a tabular file (CSV, TSV, Parquet, Excel) flattens ``probabilities`` into
one ``p_<label>`` column per label (:func:`flat`); JSON keeps the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PREDICTION_KEYS", "flat", "prediction", "predictions"]

PREDICTION_KEYS = ("label", "confidence", "probabilities")


def prediction(probabilities: Mapping[str, float]) -> dict[str, Any]:
    """``{"label", "confidence", "probabilities"}`` from every label's probability (ties go to the first label, as
    numpy's argmax)."""
    probabilities = {str(name): float(p) for name, p in probabilities.items()}
    label = max(probabilities, key=probabilities.__getitem__)
    return {"label": label, "confidence": probabilities[label], "probabilities": probabilities}


def predictions(label_names: Sequence[str], proba: Any) -> list[dict[str, Any]]:
    """One :func:`prediction` per row of ``proba`` (n, k), whose columns are ``label_names``."""
    return [prediction(dict(zip(label_names, row, strict=True))) for row in proba.tolist()]


def flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its ``probabilities`` mapping spread into ``p_<label>`` entries, for a table's columns."""
    out = {k: v for k, v in record.items() if k != "probabilities"}
    out.update({f"p_{name}": p for name, p in record["probabilities"].items()})
    return out
