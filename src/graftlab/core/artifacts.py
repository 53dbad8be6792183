"""Safe artifacts: safetensors for tensors, JSON for everything else, a sha256 manifest over a folder.

Nothing here unpickles. A folder written with :func:`write_manifest` is verified by
:func:`verify_manifest` before anything in it is used.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtifactError

__all__ = [
    "MANIFEST",
    "sha256_file",
    "save_json",
    "strict_json",
    "load_json",
    "save_arrays",
    "load_arrays",
    "write_manifest",
    "verify_manifest",
]

MANIFEST = "manifest.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if callable(getattr(obj, "to_dict", None)):  # a typed record (core.results)
        return obj.to_dict()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def strict_json(x: Any) -> Any:
    """``x`` with NaN and infinities as None and typed records as dicts, for strict JSON (json.dumps(allow_nan=False))."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if callable(getattr(x, "to_dict", None)):
        x = x.to_dict()
    if isinstance(x, Mapping):
        return {str(k): strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict_json(v) for v in x]
    if isinstance(x, np.generic):
        return strict_json(x.item())
    return x


def save_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_default, allow_nan=True) + "\n")
    tmp.replace(path)  # atomic: a killed process never leaves half a JSON file
    return path


def load_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing.") from None
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path} is not valid JSON ({e}).") from None


def save_arrays(arrays: dict[str, np.ndarray], path: str | Path) -> Path:
    """Save numpy arrays with safetensors (no pickle)."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
    return path


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing.") from None
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ArtifactError(f"{path} is not a readable safetensors file ({e}).") from None


def write_manifest(folder: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record the sha256 and size of every file under ``folder`` in ``manifest.json``."""
    folder = Path(folder)
    files = {}
    for rel in _files_under(folder):
        p = folder / rel
        files[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    manifest = {"format": "graftlab-artifact/1", "files": files, **(extra or {})}
    save_json(manifest, folder / MANIFEST)
    return manifest


def _files_under(folder: Path) -> list[str]:
    """Every file under ``folder`` (recursively, as posix paths relative to it), the manifest itself excluded."""
    return [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*"))
            if not p.is_dir() and p.relative_to(folder).as_posix() != MANIFEST]


def verify_manifest(folder: str | Path) -> dict[str, Any]:
    """Check that the folder holds exactly the files its manifest lists, each with its recorded size and sha256.

    Raises:
        ArtifactError: naming the first file that is not listed, missing, or changed.
    """
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        raise ArtifactError(f"{folder} has no {MANIFEST}: it is not a graftlab artifact folder.")
    manifest = load_json(folder / MANIFEST)
    listed = manifest.get("files", {})
    # A file nobody listed (a tokenizer map, a config) can change what the model does as surely as a changed weight.
    for rel in _files_under(folder):
        if rel not in listed:
            raise ArtifactError(
                f"{folder / rel} is not listed in {folder / MANIFEST}: every file of an artifact folder must be. "
                "Refusing to load it; remove that file, or re-export the model from its run."
            )
    for rel, info in listed.items():
        p = folder / rel
        if not p.is_file():
            raise ArtifactError(
                f"{p} is listed in {MANIFEST} but missing: the artifact is incomplete. "
                "Copy the whole folder again, or re-export the model from its run."
            )
        if p.stat().st_size != info["bytes"] or sha256_file(p) != info["sha256"]:
            raise ArtifactError(
                f"{p} does not match its sha256 in {MANIFEST}: the file was modified or truncated. "
                "Refusing to load it; re-export the model from its run."
            )
    return manifest
