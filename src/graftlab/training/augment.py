"""Token-level text augmentation for training batches: random deletion, random swap, token masking.

Works on token id lists (what text backbones put in an :class:`~graftlab.backbones.EncodedSet`), so
it needs no second tokenisation. Special tokens ([CLS], [SEP], padding) are never touched, and an
example always keeps at least one ordinary token. Only the trainer's training step calls this:
validation and test inputs are never augmented.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from ..core.config import AugmentConfig

__all__ = ["augment_batch", "augment_tokens"]


def augment_tokens(ids: Sequence[int], rng: np.random.Generator, cfg: AugmentConfig, special: Collection[int],
                   mask_id: int | None) -> list[int]:
    """One example, augmented with probability ``cfg.p`` (otherwise returned unchanged).

    Args:
        ids: token ids of one example, special tokens included.
        rng: the trainer's generator (checkpointed, so a resumed run draws the same augmentations).
        cfg: probabilities of each operation.
        special: ids that are never deleted, swapped or masked.
        mask_id: the tokenizer's mask token (required when ``cfg.mask > 0``).
    """
    ids = list(ids)
    if rng.random() >= cfg.p:
        return ids
    content = [i for i, t in enumerate(ids) if t not in special]  # positions of ordinary tokens
    if not content:
        return ids
    if cfg.deletion > 0 and len(content) > 1:
        drop = rng.random(len(content)) < cfg.deletion
        if drop.all():
            drop[rng.integers(len(content))] = False  # keep one ordinary token
        dropped = {p for p, d in zip(content, drop, strict=True) if d}
        ids = [t for i, t in enumerate(ids) if i not in dropped]
        content = [i for i, t in enumerate(ids) if t not in special]
    n_swaps = round(cfg.swap * len(content))
    for _ in range(n_swaps if len(content) > 1 else 0):
        a, b = rng.choice(len(content), size=2, replace=False)
        pa, pb = content[a], content[b]
        ids[pa], ids[pb] = ids[pb], ids[pa]
    if cfg.mask > 0 and mask_id is not None:
        for p in np.asarray(content)[rng.random(len(content)) < cfg.mask]:
            ids[int(p)] = mask_id
    return ids


def augment_batch(items: Sequence[Sequence[int]], rng: np.random.Generator, cfg: AugmentConfig,
                  special: Collection[int], mask_id: int | None) -> list[list[int]]:
    """:func:`augment_tokens` applied to every example of a batch."""
    special = set(special)
    return [augment_tokens(x, rng, cfg, special, mask_id) for x in items]
