"""Frozen pooled embeddings, computed once per (backbone weights, inputs, max length) and reused.

Kept in memory for the process and on disk (safetensors) under ``$GRAFT_CACHE_DIR`` (default
``.graft/cache``) so later trials, seeds and runs skip the forward passes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .base import batched_outputs

if TYPE_CHECKING:
    from .base import Backbone

__all__ = ["cache_dir", "embedding_key", "cached_embeddings", "compute_embeddings", "STATS"]

_MEMORY: dict[str, np.ndarray] = {}
#: counters for tests and benchmarks: forward batches run and cache hits
STATS = {"forward_batches": 0, "memory_hits": 0, "disk_hits": 0}


def cache_dir() -> Path:
    return Path(os.environ.get("GRAFT_CACHE_DIR", ".graft/cache"))


def _inputs_digest(inputs: Sequence) -> str:
    h = hashlib.sha256()
    for x in inputs:
        if isinstance(x, str):
            h.update(x.encode("utf-8"))
        else:
            arr = np.ascontiguousarray(np.asarray(x))
            h.update(str(arr.shape).encode())  # same bytes, other shape: another image
            h.update(arr.tobytes())
        h.update(b"\x00")
    return h.hexdigest()


def embedding_key(backbone: Backbone, inputs: Sequence, max_length: int | None, kind: str = "pooled") -> str:
    weights = backbone.card.weights_sha256 or backbone.card.name
    tag = getattr(backbone, "cache_tag", "")  # image backbones: input size and normalisation
    raw = f"{kind}|{weights}|{max_length}|{_inputs_digest(inputs)}" + (f"|{tag}" if tag else "")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def compute_embeddings(backbone: Backbone, encoder, inputs: Sequence, max_length: int | None, batch_size: int) -> np.ndarray:
    """Pooled features from ``encoder`` in eval mode, batched by length, returned in input order."""
    encoder.eval()

    def pooled(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        STATS["forward_batches"] += 1
        return backbone.pooled(encoder, batch)  # (batch, hidden)

    return batched_outputs(backbone.encode(inputs, max_length=max_length), pooled, batch_size, backbone.hidden_size)


def cached_embeddings(backbone: Backbone, inputs: Sequence, max_length: int | None, batch_size: int = 64) -> np.ndarray:
    key = embedding_key(backbone, inputs, max_length)
    if key in _MEMORY:
        STATS["memory_hits"] += 1
        return _MEMORY[key]
    path = cache_dir() / "embeddings" / f"{key}.safetensors"
    if path.is_file():
        from safetensors.numpy import load_file

        try:
            arr = load_file(str(path))["embeddings"]
            STATS["disk_hits"] += 1
            _MEMORY[key] = arr
            return arr
        except Exception:
            path.unlink(missing_ok=True)  # a corrupt cache entry is recomputed, never trusted
    encoder = backbone.load_encoder(pretrained=True)
    arr = compute_embeddings(backbone, encoder, inputs, max_length, batch_size)
    _MEMORY[key] = arr
    try:
        from safetensors.numpy import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"embeddings": arr}, str(tmp))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache folder only costs speed
    return arr
