"""Frozen-prefix cache: the hidden states entering the first trainable block, computed once per example.

When the bottom of an encoder is frozen (and inputs are not augmented), every epoch, seed and
validation pass would recompute the same prefix. Instead the states at the freeze boundary are
computed once in eval mode (no dropout, as the frozen prefix runs while training) and training runs
only the blocks above. Text: each example keeps its own length; batches are padded when collated, so
dynamic padding and the attention mask behave exactly as on the uncached path. Images: the feature maps
entering the first trainable stage, one fixed-size tensor per image (frozen BatchNorm layers are in eval
mode on both paths, so the maps do not depend on the batch).

A backbone opts in with ``supports_prefix_cache(encoder)``, ``prefix_modules(encoder, stop)`` (what the
key digests), ``prefix_states(encoder, batch, stop)`` and ``pooled_from(encoder, batch)``.

Entries are keyed by the prefix's weights (a digest of the frozen tensors and the backbone's weight
hash), the data (token ids, or pixels with their shape), the preprocessing, the boundary and the max
length. They live in memory (the most recent, up to :data:`MEMORY_BYTES`) and on disk (safetensors) under
``$GRAFT_CACHE_DIR/prefix`` beside the pooled embeddings. :func:`states_bytes` tells a caller beforehand how
large an entry would be, so that a set too large to hold is not cached (:func:`memory_budget`).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .base import EncodedSet, length_sorted_batches
from .embedding_cache import cache_dir

if TYPE_CHECKING:
    from .base import Backbone

__all__ = ["MEMORY_BYTES", "STATS", "FeatureMapSet", "HiddenSet", "cached_prefix", "clear_memory", "memory_budget",
           "prefix_key", "states_bytes", "supports_prefix"]

#: an entry: text {"hidden": (total tokens, hidden), "offsets": (n + 1,)}; images {"maps": (n, c, h, w)}
_MEMORY: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
#: in-memory budget: the most recent entries up to this many bytes (the newest is always kept)
MEMORY_BYTES = 2 << 30
#: counters for tests and benchmarks
STATS = {"computed": 0, "memory_hits": 0, "disk_hits": 0, "seconds": 0.0}


class HiddenSet(EncodedSet):
    """Per-example hidden states at a freeze boundary; ``collate`` pads them like token batches.

    Args:
        hidden: (total tokens, hidden) states of all examples, concatenated.
        offsets: (n + 1,) start of each example in ``hidden``.
        labels: (n,) class indices or None.
        start_block: the first block to run on these states.
    """

    def __init__(self, hidden: torch.Tensor, offsets: torch.Tensor, labels: np.ndarray | None, start_block: int) -> None:
        self.hidden, self.offsets, self.start_block = hidden, offsets, int(start_block)
        bounds = offsets.tolist()
        items = [hidden[a:b] for a, b in pairwise(bounds)]  # views, no copies
        super().__init__(items, labels, np.diff(np.asarray(bounds)), self._pad)

    def _pad(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        width = max(len(x) for x in items)
        states = torch.zeros((len(items), width, self.hidden.shape[1]), dtype=self.hidden.dtype)  # (batch, seq, hidden)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, x in enumerate(items):
            states[i, : len(x)] = x
            mask[i, : len(x)] = 1
        return {"hidden_states": states, "attention_mask": mask, "start_block": torch.tensor(self.start_block)}


class FeatureMapSet(EncodedSet):
    """Per-image feature maps at a freeze boundary, (n, channels, h, w); ``collate`` stacks them.

    Args:
        maps: (n, channels, h, w) feature maps entering block group ``start_block``.
        labels: (n,) class indices or None.
        start_block: the first block group to run on these maps.
    """

    def __init__(self, maps: torch.Tensor, labels: np.ndarray | None, start_block: int) -> None:
        self.maps, self.start_block = maps, int(start_block)
        super().__init__(list(maps), labels, np.ones(len(maps), dtype=np.int64), self._stack)

    def _stack(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"feature_maps": torch.stack(items), "start_block": torch.tensor(self.start_block)}


def _as_set(entry: dict[str, torch.Tensor], labels: np.ndarray | None, stop: int) -> HiddenSet | FeatureMapSet:
    if "maps" in entry:
        return FeatureMapSet(entry["maps"], labels, stop)
    return HiddenSet(entry["hidden"], entry["offsets"], labels, stop)


def supports_prefix(backbone: Backbone, encoder: nn.Module) -> bool:
    check = getattr(backbone, "supports_prefix_cache", None)
    return bool(check and check(encoder))


@torch.no_grad()
def states_bytes(backbone: Backbone, encoder: nn.Module, data: EncodedSet, stop: int) -> int:
    """Bytes the states of ``data`` entering block ``stop`` would take once cached, measured on its shortest
    example (text: per token, times the set's tokens; images: per image, times the set's images)."""
    if len(data) == 0:
        return 0
    was_training = encoder.training
    encoder.eval()
    try:
        one = backbone.prefix_states(encoder, data.collate([int(np.argmin(data.lengths))]), stop)
    finally:
        encoder.train(was_training)
    if one.ndim == 4:  # (1, channels, h, w)
        return len(data) * one[0].numel() * one.element_size()
    return int(np.asarray(data.lengths).sum()) * one.shape[-1] * one.element_size()  # (1, seq, hidden)


def memory_budget() -> int:
    """The most the states of one training run may take: a quarter of this machine's memory (2 GiB when
    the machine does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return MEMORY_BYTES


def _digest_tensors(tensors: list[torch.Tensor]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def _digest_items(items: list[Any]) -> str:
    """Token ids (text) or uint8 pixels with their shape (images)."""
    h = hashlib.blake2b(digest_size=16)
    for x in items:
        a = np.asarray(x)
        if a.dtype == np.uint8:
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(np.asarray(x, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()


def prefix_key(backbone: Backbone, encoder: nn.Module, data: EncodedSet, stop: int, max_length: int | None) -> str:
    """Cache key: backbone weights hash + digest of the prefix weights, preprocessing, data fingerprint,
    boundary, max length."""
    weights = _digest_tensors([t for m in backbone.prefix_modules(encoder, stop) for t in m.state_dict().values()])
    tag = getattr(backbone, "cache_tag", "")
    raw = (f"prefix-v2|{backbone.card.weights_sha256 or backbone.card.name}|{weights}|{tag}|{stop}|{max_length}|"
           f"{_digest_items(data.items)}")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@torch.no_grad()
def compute_prefix(backbone: Backbone, encoder: nn.Module, data: EncodedSet, stop: int,
                   batch_size: int = 64) -> dict[str, torch.Tensor]:
    """States entering block ``stop``, in eval mode, input order: text {"hidden": (total tokens, hidden),
    "offsets": (n + 1,)}; images {"maps": (n, channels, h, w)}."""
    was_training = encoder.training
    encoder.eval()
    try:
        per_example: list[torch.Tensor | None] = [None] * len(data)
        for idx in length_sorted_batches(data.lengths, batch_size):
            states = backbone.prefix_states(encoder, data.collate(idx), stop)  # (batch, seq, hidden) or (batch, c, h, w)
            for row, i in enumerate(idx):
                per_example[i] = states[row].clone() if states.ndim == 4 else states[row, : data.lengths[i]].clone()
    finally:
        encoder.train(was_training)
    if per_example and per_example[0].ndim == 3:  # feature maps: one fixed-size tensor per image
        return {"maps": torch.stack(per_example)}
    lengths = torch.as_tensor(data.lengths, dtype=torch.long)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    return {"hidden": torch.cat(per_example), "offsets": offsets}


def _check_entry(entry: dict[str, torch.Tensor], data: EncodedSet) -> None:
    """Raise ValueError unless ``entry`` holds one state per example of ``data`` (text: with its length)."""
    if set(entry) == {"maps"}:
        ok = entry["maps"].ndim == 4 and len(entry["maps"]) == len(data)
    elif set(entry) == {"hidden", "offsets"}:
        offsets, hidden = entry["offsets"], entry["hidden"]
        ok = (offsets.ndim == 1 and len(offsets) == len(data) + 1 and hidden.ndim == 2
              and int(offsets[-1]) == len(hidden) and np.array_equal(np.diff(offsets.numpy()), data.lengths))
    else:
        ok = False
    if not ok:
        raise ValueError(f"the entry ({ {k: tuple(v.shape) for k, v in entry.items()} }) does not fit the data")


def cached_prefix(backbone: Backbone, encoder: nn.Module, data: EncodedSet, stop: int, max_length: int | None,
                  batch_size: int = 64) -> HiddenSet | FeatureMapSet:
    """``data`` as the states entering block ``stop`` of ``encoder``: from memory, disk, or computed once.

    The caller guarantees that the embeddings and blocks below ``stop`` stay frozen while the result is used.
    """
    import time

    from safetensors.torch import load_file, save_file

    key = prefix_key(backbone, encoder, data, stop, max_length)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        STATS["memory_hits"] += 1
        return _as_set(_MEMORY[key], data.labels, stop)
    path = cache_dir() / "prefix" / f"{key}.safetensors"
    entry = None
    if path.is_file():
        try:
            entry = load_file(str(path))
            _check_entry(entry, data)
            STATS["disk_hits"] += 1
        except Exception:  # noqa: BLE001  (whatever is wrong with an entry, it is recomputed, never trusted)
            entry = None
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only cache folder: the entry is rewritten below if it can be
    if entry is None:
        t0 = time.perf_counter()
        entry = compute_prefix(backbone, encoder, data, stop, batch_size)
        STATS["computed"] += 1
        STATS["seconds"] += time.perf_counter() - t0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file({name: t.contiguous() for name, t in entry.items()}, str(tmp))
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache folder only costs speed
    _MEMORY[key] = entry
    while len(_MEMORY) > 1 and sum(t.nbytes for e in _MEMORY.values() for t in e.values()) > MEMORY_BYTES:
        _MEMORY.popitem(last=False)
    return _as_set(entry, data.labels, stop)


def clear_memory() -> None:
    """Forget the in-memory entries (the disk cache stays)."""
    _MEMORY.clear()
