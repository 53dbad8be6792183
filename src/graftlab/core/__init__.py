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
from .registry import Registry

__all__ = [
    "ArtifactError",
    "AssetMissingError",
    "ConfigError",
    "DataCheckError",
    "DataError",
    "GateFailure",
    "GraftError",
    "Registry",
]
