"""The catalogue of metrics, and the gates on them: every number a study config may rank by, stop training on or gate.

One entry per metric says its name (the key in configs and results.json), the report's label for it, which direction
is better, where it is measured and, for a metric of predictions, how it is scored. The config validates
``eval.metric``, ``train.early_stopping.metric`` and each gate against it; ``graftlab.evaluation`` computes it (and
bootstraps it); ranking, the shipped seed, early stopping and the report read its direction and label here. Adding a
metric usable in gates and ranking is one entry in ``METRICS``.

Gates are parsed here, once, into :class:`Gate` objects; ``graftlab.evaluation.gates`` checks them.

It lives in ``core`` so that the config can validate against it without importing the evaluation layer; sklearn is
imported when a metric is first scored, not when a config is read.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError

__all__ = [
    "Metric",
    "METRICS",
    "PREDICTION_METRICS",
    "REPORTED_METRICS",
    "EARLY_STOPPING_METRICS",
    "Gate",
    "parse_gate",
    "check_metric",
    "of_labels",
    "Score",
]

Measured = Literal["predictions", "latency", "size"]
Score = Callable[[Any, Any], float]


def of_labels(function: str, **kwargs: Any) -> Score:
    """``score(y_true, proba)``: ``sklearn.metrics.<function>(y_true, arg-max labels, **kwargs)``, as a float."""

    def score(y_true: Any, proba: Any) -> float:
        import sklearn.metrics  # at the first score: reading a config stays fast

        return float(getattr(sklearn.metrics, function)(y_true, proba.argmax(axis=1), **kwargs))

    score.__name__ = score.__qualname__ = function
    return score


@dataclass(frozen=True)
class Metric:
    """A metric a study config may name.

    Attributes:
        name: its key in configs, gates and results.json.
        label: its name in the report.
        higher_is_better: its direction, read by ranking, the shipped seed, early stopping, paired tests and the report.
        measured: ``predictions``: scored from (labels, probabilities) on validation and test, so it can rank
            strategies (``eval.metric``), be bootstrapped and be gated; ``latency`` / ``size``: measured on the
            trained model, so it can be gated.
        score: for a metric of predictions, ``score(y_true, proba) -> float`` on checked arrays (``y_true`` (n,) class
            indices, ``proba`` (n, k)); None when ``graftlab.evaluation.metrics`` scores it under this name (metrics
            of the probabilities that need every class, or the calibration code).
        reported: measured on test for every strategy and shown in the report; otherwise measured when the config
            names it (``eval.metric`` or a gate).
        in_training: the training loop measures it on validation at each evaluation, so early stopping may use it.
    """

    name: str
    label: str
    higher_is_better: bool = True
    measured: Measured = "predictions"
    score: Score | None = None
    reported: bool = False
    in_training: bool = False

    @property
    def sign(self) -> float:
        """+1 or -1: a value times its metric's sign is larger when it is better (for sorting and arg-max)."""
        return 1.0 if self.higher_is_better else -1.0


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "Accuracy", score=of_labels("accuracy_score"), reported=True, in_training=True),
        Metric("macro_f1", "Macro F1", score=of_labels("f1_score", average="macro", zero_division=0), reported=True,
               in_training=True),
        Metric("macro_precision", "Macro precision", score=of_labels("precision_score", average="macro", zero_division=0)),
        Metric("macro_recall", "Macro recall", score=of_labels("recall_score", average="macro", zero_division=0)),
        Metric("weighted_f1", "Weighted F1", score=of_labels("f1_score", average="weighted", zero_division=0)),
        Metric("roc_auc", "ROC AUC", reported=True),
        Metric("log_loss", "Log loss", higher_is_better=False, reported=True, in_training=True),
        Metric("brier", "Brier", higher_is_better=False, reported=True),
        Metric("ece", "ECE", higher_is_better=False, reported=True),  # a gate reads the calibrated model's
        Metric("latency_ms_b1", "Latency, batch 1 (ms)", higher_is_better=False, measured="latency"),
        Metric("latency_ms_b32", "Latency, batch 32 (ms)", higher_is_better=False, measured="latency"),
        Metric("model_bytes", "Model size (bytes)", higher_is_better=False, measured="size"),
        Metric("trainable_params", "Trainable parameters", higher_is_better=False, measured="size"),
    )
}
"""Metric name -> :class:`Metric`: the one list of metrics a config, a gate or the report may name."""

PREDICTION_METRICS = tuple(name for name, m in METRICS.items() if m.measured == "predictions")
"""What ``eval.metric`` may rank by: the metrics scored from predictions on validation and test."""

REPORTED_METRICS = tuple(name for name, m in METRICS.items() if m.reported)
"""Measured on test for every strategy, in this order, whatever the config names."""

EARLY_STOPPING_METRICS = (*(name for name, m in METRICS.items() if m.in_training), "loss")
"""What ``train.early_stopping.metric`` may name; ``loss`` is ``log_loss`` under the training loop's own name."""


def check_metric(name: str, allowed: Iterable[str], use: str) -> str:
    """``name`` when it is one of ``allowed``; else a ConfigError saying what ``use`` (e.g. "a gate") can name.

    Raises:
        ConfigError: naming the closest allowed metric, if any, and every allowed one.
    """
    allowed = list(allowed)
    if name in allowed:
        return name
    known = METRICS.get(name)
    if known is None:
        hint = difflib.get_close_matches(name, allowed, n=1)
        why = f"{name!r} is not a known metric" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    elif known.measured != "predictions":
        why = f"{name!r} is measured on the model, not from predictions"
    else:
        why = f"{name!r} is not measured by the training loop"
    raise ConfigError(f"{why}; {use} can use {', '.join(allowed)}")


_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_METRIC_GATE = re.compile(rf"^\s*([A-Za-z0-9_]+)\s*(>=|<=|>|<)\s*({_NUMBER})\s*$")
_BEATS_GATE = re.compile(r"^\s*beats\s*:\s*([\w\-\[\]=,.]+)\s*$")
_GRAMMAR = ("write 'METRIC >= NUMBER' (or <=, >, <), e.g. 'macro_f1 >= 0.8', or 'beats: STRATEGY', "
            "e.g. 'beats: tfidf_logreg'")


@dataclass(frozen=True)
class Gate:
    """A success criterion declared before the run: ``metric operator threshold``, or ``beats`` a strategy.

    ``text`` is the gate as written (stripped); it is how the gate is saved and shown.
    """

    text: str
    metric: str | None = None
    operator: str | None = None
    threshold: float | None = None
    beats: str | None = None

    def holds(self, value: float) -> bool:
        """Whether a measured value of the gate's metric meets its threshold (a metric gate only)."""
        return bool(_OPERATORS[self.operator](value, self.threshold))

    def __str__(self) -> str:
        return self.text


def parse_gate(text: str | Gate) -> Gate:
    """Parse ``'METRIC OP NUMBER'`` (a metric of the catalogue) or ``'beats: STRATEGY'``; a Gate is parsed again.

    Raises:
        ConfigError: for any other text, or a metric not in the catalogue (the message lists what a gate can use).
    """
    if isinstance(text, Gate):
        text = text.text
    if not isinstance(text, str):
        raise ConfigError(f"A gate must be a string, not {type(text).__name__}; {_GRAMMAR}")
    if m := _BEATS_GATE.match(text):
        return Gate(text.strip(), beats=m.group(1))
    if not (m := _METRIC_GATE.match(text)):
        raise ConfigError(f"gate {text!r} is not understood; {_GRAMMAR}")
    try:
        check_metric(m.group(1), METRICS, "a gate")
    except ConfigError as e:
        raise ConfigError(f"gate {text.strip()!r}: {e}, or 'beats: STRATEGY'") from None
    return Gate(text.strip(), metric=m.group(1), operator=m.group(2), threshold=float(m.group(3)))
