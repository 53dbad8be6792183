"""Evaluation: pure functions from (labels, probabilities, metadata) to JSON-ready numbers.

Imports only numpy, scipy, scikit-learn and ``graftlab.core``; never training, strategies or torch.
Conventions: ``y_true`` (n,) int class indices 0..k-1, ``proba`` (n, k) rows summing to 1,
``label_names`` k strings.
"""

from .bootstrap import bootstrap_ci, mcnemar, metrics_with_ci, paired_bootstrap, seed_averaged
from .calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    logits_from_proba,
    reliability_curve,
    separates,
    softmax,
)
from .evaluate import Evaluation, evaluate_predictions
from .gates import Gate, evaluate_gates, parse_gate
from .learning_curves import learning_curve_reading
from .metrics import HEADLINE_METRICS, Metric, classification_metrics, get_metric
from .slices import auto_slices, slice_metrics

__all__ = [
    "HEADLINE_METRICS",
    "Evaluation",
    "Gate",
    "Metric",
    "apply_temperature",
    "auto_slices",
    "bootstrap_ci",
    "classification_metrics",
    "evaluate_gates",
    "evaluate_predictions",
    "expected_calibration_error",
    "fit_temperature",
    "get_metric",
    "learning_curve_reading",
    "logits_from_proba",
    "mcnemar",
    "metrics_with_ci",
    "paired_bootstrap",
    "parse_gate",
    "reliability_curve",
    "separates",
    "seed_averaged",
    "slice_metrics",
    "softmax",
]
