"""Frozen-prefix cache: the hidden states entering the first trainable block, computed once per example.

When the bottom of an encoder is frozen (and inputs are not augmented), every epoch, seed and
validation pass would recompute the same prefix. Instead the states at the freeze boundary are
computed once in eval mode (no dropout, as the frozen prefix runs while training) and training runs
only the blocks above. Each example keeps its own length; batches are padded when collated, so
dynamic padding and the attention mask behave exactly as on the uncached path.

Entries are keyed by the prefix's weights (a digest of the frozen tensors and the backbone's weight
hash), the token ids of the data, the boundary and the max length. They live in memory (the most recent,
up to :data:`MEMORY_BYTES`) and on disk (safetensors) under ``$GRAFT_CACHE_DIR/prefix`` beside the pooled embeddings.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .base import EncodedSet
from .embedding_cache import cache_dir
from .hf_text import find_blocks

if TYPE_CHECKING:
    from .base import Backbone

__all__ = ["MEMORY_BYTES", "STATS", "HiddenSet", "cached_prefix", "clear_memory", "prefix_key", "supports_prefix"]

_MEMORY: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
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


def supports_prefix(backbone: Backbone, encoder: nn.Module) -> bool:
    check = getattr(backbone, "supports_prefix_cache", None)
    return bool(check and check(encoder))


def _digest_tensors(tensors: list[torch.Tensor]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def _digest_tokens(items: list[Any]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for x in items:
        h.update(np.asarray(x, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()


def prefix_key(backbone: Backbone, encoder: nn.Module, data: EncodedSet, stop: int, max_length: int | None) -> str:
    """Cache key: backbone weights hash + digest of the prefix weights, data fingerprint, boundary, max length."""
    prefix = [encoder.embeddings, *list(find_blocks(encoder))[:stop]]
    weights = _digest_tensors([t for m in prefix for t in m.state_dict().values()])
    raw = f"prefix|{backbone.card.weights_sha256 or backbone.card.name}|{weights}|{stop}|{max_length}|{_digest_tokens(data.items)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@torch.no_grad()
def compute_prefix(backbone: Backbone, encoder: nn.Module, data: EncodedSet, stop: int,
                   batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden (total tokens, hidden), offsets (n + 1,)) entering block ``stop``, in eval mode, input order."""
    was_training = encoder.training
    encoder.eval()
    try:
        order = np.argsort(-data.lengths, kind="stable")  # similar lengths together: little padding
        per_example: list[torch.Tensor | None] = [None] * len(data)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            states = backbone.prefix_states(encoder, data.collate(idx), stop)  # (batch, seq, hidden)
            for row, i in enumerate(idx):
                per_example[i] = states[row, : data.lengths[i]].clone()
    finally:
        encoder.train(was_training)
    lengths = torch.as_tensor(data.lengths, dtype=torch.long)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    return torch.cat(per_example), offsets


def cached_prefix(backbone: Backbone, encoder: nn.Module, data: EncodedSet, stop: int, max_length: int | None,
                  batch_size: int = 64) -> HiddenSet:
    """``data`` as hidden states entering block ``stop`` of ``encoder``: from memory, disk, or computed once.

    The caller guarantees that the embeddings and blocks below ``stop`` stay frozen while the result is used.
    """
    import time

    from safetensors.torch import load_file, save_file

    key = prefix_key(backbone, encoder, data, stop, max_length)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        STATS["memory_hits"] += 1
        return HiddenSet(*_MEMORY[key], data.labels, stop)
    path = cache_dir() / "prefix" / f"{key}.safetensors"
    entry = None
    if path.is_file():
        try:
            arrays = load_file(str(path))
            entry = (arrays["hidden"], arrays["offsets"])
            STATS["disk_hits"] += 1
        except Exception:  # noqa: BLE001  (whatever is wrong with an entry, it is recomputed, never trusted)
            path.unlink(missing_ok=True)
    if entry is None:
        t0 = time.perf_counter()
        entry = compute_prefix(backbone, encoder, data, stop, batch_size)
        STATS["computed"] += 1
        STATS["seconds"] += time.perf_counter() - t0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file({"hidden": entry[0].contiguous(), "offsets": entry[1]}, str(tmp))
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache folder only costs speed
    _MEMORY[key] = entry
    while len(_MEMORY) > 1 and sum(h.numel() * h.element_size() for h, _ in _MEMORY.values()) > MEMORY_BYTES:
        _MEMORY.popitem(last=False)
    return HiddenSet(*entry, data.labels, stop)


def clear_memory() -> None:
    """Forget the in-memory entries (the disk cache stays)."""
    _MEMORY.clear()
