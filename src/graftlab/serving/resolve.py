"""Model references: a packaged model folder, or NAME / NAME@alias / NAME:version in the registry.

A folder is used as is. Anything else goes to :func:`graftlab.tracking.registry.resolve_model`, imported
only then, so serving a folder never needs MLflow.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..core.errors import ArtifactError, GraftError

__all__ = ["ModelRef", "is_registry_ref", "manifest_digest", "registry_module", "resolve_ref"]


@dataclass(frozen=True)
class ModelRef:
    """Where a served model came from: its folder and, for a registry reference, name/alias/version."""

    ref: str
    path: Path
    registry_name: str | None = None
    alias: str | None = None
    version: str | None = None

    @property
    def from_registry(self) -> bool:
        return self.registry_name is not None


def registry_module() -> ModuleType:
    """``graftlab.tracking.registry``, or a :class:`GraftError` saying how to get it."""
    try:
        return importlib.import_module("graftlab.tracking.registry")
    except ImportError as e:
        raise GraftError(
            f"Resolving a registry reference needs graftlab.tracking.registry, which could not be imported ({e}). "
            "Serve a packaged model folder instead, or install graftlab with its tracking dependencies (mlflow)."
        ) from None


def _looks_like_path(ref: str) -> bool:
    return not ref.startswith("models:/") and ("/" in ref or "\\" in ref or ref.startswith("."))


def is_registry_ref(ref: str) -> bool:
    """Whether ``ref`` names a registered model (NAME, NAME@alias, NAME:version, models:/...), not a model folder:
    what :func:`resolve_ref` sends to the registry."""
    return not Path(ref).expanduser().exists() and not _looks_like_path(ref)


def resolve_ref(ref: str, tracking_uri: str | None = None) -> ModelRef:
    """Turn ``ref`` into a local model folder (downloaded from the registry when it is not a path).

    Raises:
        ArtifactError: ``ref`` looks like a path but does not exist.
        GraftError: the registry cannot be used or does not know ``ref``.
    """
    path = Path(ref).expanduser()
    if path.exists():
        return ModelRef(ref=ref, path=path)
    if _looks_like_path(ref):
        raise ArtifactError(f"The model folder {ref!r} does not exist. Pass a packaged model folder "
                            "(runs/<study>/<run>/model) or a registry reference NAME, NAME@alias or NAME:version.")
    registry = registry_module()
    name, kind, value = registry.parse_ref(ref)
    folder = Path(registry.resolve_model(ref, tracking_uri=tracking_uri))
    alias, version = (value, None) if kind == "alias" else (None, str(value))
    if alias is not None:  # which version the alias points at now (promotion needs the number)
        pointed = registry.show(name, tracking_uri=tracking_uri)["aliases"].get(alias)
        version = str(pointed) if pointed is not None else None
    return ModelRef(ref=ref, path=folder, registry_name=name, alias=alias, version=version)


def manifest_digest(folder: Path) -> str:
    """First 12 hex digits of the sha256 of the model's manifest: a version label for unregistered models."""
    for candidate in (folder / "manifest.json", folder / "model" / "manifest.json"):
        if candidate.is_file():
            return hashlib.sha256(candidate.read_bytes()).hexdigest()[:12]
    return "unknown"
