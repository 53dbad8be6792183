"""What ``Study.run()`` returns: the run folder and its typed results, with the questions a user asks of them from
Python: which strategy won and by how much (:meth:`StudyResult.leaderboard`), and how the packaged model does on new
labeled rows (:meth:`StudyResult.evaluate`, also :func:`evaluate_model` for any packaged model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.config import DataConfig, SourceConfig, StudyConfig, table_kind
from ..core.errors import DataError
from ..core.metrics import METRICS, REPORTED_METRICS
from ..core.results import StudyResults
from ..data.load import load_frame, load_frame_like, to_labeled
from ..evaluation.evaluate import Evaluation, evaluate_predictions
from ..packaging import PackagedModel, load_model

__all__ = ["StudyResult", "evaluate_model", "leaderboard", "reported_metrics"]


@dataclass
class StudyResult:
    """A finished study: its run folder, its typed results (``results``, a :class:`StudyResults`), the winner and
    whether every gate passed."""

    run_dir: Path
    results: StudyResults
    winner: str
    gates_passed: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """What ``graft study`` exits with: 0 when every gate passed, else 1."""
        return 0 if self.gates_passed else 1

    @property
    def model_dir(self) -> Path:
        """The packaged winner (:func:`graftlab.load_model` loads it)."""
        return self.run_dir / "model"

    def metric(self, strategy: str, metric: str = "accuracy") -> float:
        """A strategy's test score on ``metric`` (mean over seeds)."""
        return float(self.results.strategies[strategy].test[metric].value)

    def leaderboard(self) -> pd.DataFrame:
        """One row per strategy, in the order the selection ranked them; see :func:`leaderboard`."""
        return leaderboard(self.results)

    def evaluate(self, data: Any, label: str | None = None) -> Evaluation:
        """The packaged model's metrics, with bootstrap CIs as the study measured them, on new labeled rows.

        Args:
            data: a DataFrame, or the path of a table file (.csv, .tsv, .jsonl, .parquet, .xlsx), holding the study's
                input column and a label column.
            label: the label column (default: the study's ``data.label``).

        Raises:
            DataError: the file cannot be read, a column is missing, or a label is not one of the model's classes.
        """
        cfg = StudyConfig.from_dict(self.results.config)
        return evaluate_model(load_model(self.model_dir), data, label=label or cfg.data.label,
                              metrics=reported_metrics(self.results), n_boot=cfg.eval.bootstrap,
                              confidence=cfg.eval.confidence, seed=cfg.seed)


def reported_metrics(results: StudyResults) -> list[str]:
    """The metrics the study measured on test, in the catalogue's order."""
    measured = {m for s in results.strategies.values() for m in s.test}
    return [m for m in METRICS if m in measured]


def leaderboard(results: StudyResults) -> pd.DataFrame:
    """A study's strategies as a table, in the order the selection ranked them (the winner first).

    Columns: ``strategy``, ``kind``; each reported test metric with ``<metric>_ci_low`` / ``<metric>_ci_high`` (mean
    over seeds, bootstrap CI); ``val_<headline metric>`` (what ranked them, mean over seeds); ``fit_seconds``;
    ``latency_ms_b1`` (ms per example at batch 1); ``trainable_params``; ``chosen`` (True for the winner). A number
    that was not measured is NaN (or ``<NA>``). Strategies that failed are left out (``results.failed``).
    """
    ranked = results.selection.ranking
    order = [s for s in ranked if s in results.strategies] + [s for s in results.strategies if s not in ranked]
    metrics, headline = reported_metrics(results), results.headline_metric
    rows = []
    for name in order:
        s = results.strategies[name]
        row: dict[str, Any] = {"strategy": name, "kind": s.kind}
        for m in metrics:
            ci = s.score(m)
            row |= {m: _number(ci and ci.value), f"{m}_ci_low": _number(ci and ci.ci_low),
                    f"{m}_ci_high": _number(ci and ci.ci_high)}
        row |= {f"val_{headline}": _number(s.val.get(headline)), "fit_seconds": _number(s.fit_seconds),
                "latency_ms_b1": _number(s.latency_ms_b1), "trainable_params": s.trainable_params,
                "chosen": name == results.winner}
        rows.append(row)
    board = pd.DataFrame(rows)
    board["trainable_params"] = board["trainable_params"].astype("Int64")  # a count: no 1.2e+04, NA where not known
    return board


def evaluate_model(model: PackagedModel, data: Any, *, label: str = "label", column: str | None = None,
                   metrics: Sequence[str] = REPORTED_METRICS, n_boot: int = 1000, confidence: float = 0.95,
                   seed: int = 0) -> Evaluation:
    """A packaged model's metrics with bootstrap CIs, per-class table and calibration on labeled rows.

    Args:
        model: the packaged model (:func:`graftlab.load_model`).
        data: a DataFrame, or the path of a table file (.csv, .tsv, .jsonl, .parquet, .xlsx).
        label: the column of true labels (the model's class names).
        column: the input column (default: the one the model was trained on).
        metrics, n_boot, confidence, seed: see :func:`graftlab.evaluation.evaluate.evaluate_predictions`.

    Raises:
        DataError: the file cannot be read, a column is missing or a label is not one of the model's classes.
    """
    frame, name = _read_labeled(data)
    images = model.modality == "image"
    column = column or model.meta.get("input_column") or ("image" if images else "text")
    columns = DataConfig(image=column, label=label) if images else DataConfig(text=column, label=label)
    rows = to_labeled(frame, columns, name=name, label_names=model.label_names)
    proba = model.predict_proba(rows.inputs)
    return evaluate_predictions(rows.labels, proba, model.label_names, metrics, n_boot=n_boot, confidence=confidence,
                                seed=seed)


def _read_labeled(data: Any) -> tuple[pd.DataFrame, str]:
    """The rows to evaluate and their name in messages."""
    if not isinstance(data, str | Path):
        return load_frame_like(data, what="the data to evaluate"), "the data to evaluate"
    path = Path(data).expanduser()
    if not path.is_file():
        raise DataError(f"The file {path} does not exist. Pass the path of a labeled table file, or a DataFrame.")
    kind = table_kind(path)
    if kind is None:
        raise DataError(f"Cannot tell how to read {path}: end its name in .csv, .tsv, .jsonl, .parquet or .xlsx, or "
                        "pass a DataFrame.")
    return load_frame(SourceConfig(kind=kind, path=str(path)), key="data"), path.name


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)
