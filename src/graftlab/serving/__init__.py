"""Serving: a packaged model behind HTTP, with micro-batching, a durable prediction log and safe rollout.

Loads packaged artifacts only (:mod:`graftlab.packaging`), never training or study code. Entry points:
:func:`create_app` (FastAPI) and ``graft serve``; :func:`read_predictions` reads the log for monitoring.
"""

from .app import create_app
from .batching import MicroBatcher
from .config import (
    ADMIN_TOKEN_ENV,
    DEFAULT_LOG_DB,
    BatchingConfig,
    RolloutPolicy,
    ServeConfig,
    ServeLimits,
)
from .predlog import (
    PredictionLog,
    PredictionRow,
    read_feedback,
    read_predictions,
    redact,
)
from .quantize import QuantizationReport, quantize_model
from .resolve import ModelRef, resolve_ref
from .rollout import RolloutGuard, in_canary
from .service import Service, ServiceConflict, load_served_model

__all__ = [
    "ADMIN_TOKEN_ENV",
    "DEFAULT_LOG_DB",
    "BatchingConfig",
    "MicroBatcher",
    "ModelRef",
    "PredictionLog",
    "PredictionRow",
    "QuantizationReport",
    "RolloutGuard",
    "RolloutPolicy",
    "ServeConfig",
    "ServeLimits",
    "Service",
    "ServiceConflict",
    "create_app",
    "in_canary",
    "load_served_model",
    "quantize_model",
    "read_feedback",
    "read_predictions",
    "redact",
    "resolve_ref",
]
