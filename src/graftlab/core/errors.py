"""Every error graftlab raises on purpose derives from :class:`GraftError` and a built-in.

The CLI prints a ``GraftError`` as one paragraph with exit code 2 (no traceback unless ``--debug``);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "GraftError",
    "ConfigError",
    "DataError",
    "DataCheckError",
    "AssetMissingError",
    "ArtifactError",
    "GateFailure",
]


class GraftError(Exception):
    """Base class of every error that is the user's to fix."""


class ConfigError(GraftError, ValueError):
    """A study config (or a parameter) is invalid."""


class DataError(GraftError, ValueError):
    """Data cannot be read or does not have the shape the config says."""


class DataCheckError(DataError):
    """A pre-training data check failed and the config does not say how to resolve it."""


class AssetMissingError(GraftError, FileNotFoundError):
    """A pretrained asset (model weights, dataset) is not installed; the message names the package."""


class ArtifactError(GraftError, ValueError):
    """A saved model or run folder is missing, tampered with, or of an unknown format."""


class GateFailure(GraftError):
    """A success gate declared in the config failed (the study still writes its report)."""
