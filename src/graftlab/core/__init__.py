"""Core: errors, registries, configuration and safe artifacts. Imports nothing above it."""

from .errors import (
    ArtifactError,
    AssetMissingError,
    ConfigError,
    DataCheckError,
    DataError,
    GateFailure,
    GraftError,
)
from .metrics import METRICS, Gate, Metric
from .registry import Registry

__all__ = [
    "ArtifactError",
    "AssetMissingError",
    "ConfigError",
    "DataCheckError",
    "DataError",
    "Gate",
    "GateFailure",
    "GraftError",
    "METRICS",
    "Metric",
    "Registry",
]
