"""Length-bucketed batches: examples of similar length share a batch, so dynamic padding wastes little."""

from __future__ import annotations

import numpy as np

__all__ = ["bucketed_batches"]


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, bucket_factor: int = 50) -> list[list[int]]:
    """Shuffle, sort within chunks of ``batch_size * bucket_factor`` by length, cut into batches, shuffle
    the batches. Every index appears exactly once."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * bucket_factor
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size].tolist() for i in range(0, len(part), batch_size)]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]
