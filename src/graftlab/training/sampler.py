"""Class-balanced batches: every class is drawn equally often (with replacement), still length-bucketed."""

from __future__ import annotations

import numpy as np

from .batching import bucketed_batches

__all__ = ["balanced_batches"]


def balanced_batches(labels: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     bucket_factor: int = 50) -> list[list[int]]:
    """One epoch of ``len(labels)`` indices drawn with probability 1 / (k * count of their class).

    Each class then fills about 1/k of every epoch: minority examples repeat, majority ones are
    skipped at random. The drawn indices are bucketed by length like :func:`bucketed_batches`.
    """
    labels = np.asarray(labels, dtype=np.int64)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    p = 1.0 / (len(classes) * counts[inverse])  # (n,) sums to 1
    drawn = rng.choice(len(labels), size=len(labels), replace=True, p=p / p.sum())
    batches = bucketed_batches(np.asarray(lengths)[drawn], batch_size, rng, bucket_factor)
    return [[int(drawn[j]) for j in b] for b in batches]
