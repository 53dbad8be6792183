"""Tracking on MLflow: log a study (:func:`log_study`), the model registry (versions, ``champion`` /
``challenger``, promote, rollback, :func:`resolve_model`), evidence-carrying model cards and
``graft reproduce`` (:func:`graftlab.tracking.reproduce.reproduce`; the function is not re-exported here
so that it does not shadow its module). MLflow is imported only when one of these functions runs.
"""

from .card import (
    MODEL_CARD_JSON,
    MODEL_CARD_MD,
    attach_model_card,
    build_model_card,
    write_model_card,
)
from .mlflow_log import git_commit, log_study
from .registry import (
    CHALLENGER,
    CHAMPION,
    list_models,
    parse_ref,
    promote,
    resolve_model,
    rollback,
    show,
)
from .reproduce import ReproduceReport, compare_results
from .store import TrackingError, default_tracking_uri, resolve_tracking_uri

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MODEL_CARD_JSON",
    "MODEL_CARD_MD",
    "ReproduceReport",
    "TrackingError",
    "attach_model_card",
    "build_model_card",
    "compare_results",
    "default_tracking_uri",
    "git_commit",
    "list_models",
    "log_study",
    "parse_ref",
    "promote",
    "resolve_model",
    "resolve_tracking_uri",
    "rollback",
    "show",
    "write_model_card",
]
