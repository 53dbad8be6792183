"""A tiny model and data sets for loop-level tests that need no transformer."""

import numpy as np
import torch
from torch import nn

from graftlab.backbones.base import EncodedSet
from graftlab.backbones.hf_text import TokenSet

CLS, SEP, MASK, PAD = 2, 3, 4, 0


def token_set(n=48, seed=0, minority=0.5):
    """Token lists [CLS, w..., SEP] with labels; class-1 rows start with word 10, class-0 rows with 20."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < minority).astype(np.int64)
    items = [[CLS, 10 if y else 20, *rng.integers(5, 30, size=rng.integers(3, 9)).tolist(), SEP] for y in labels]
    return TokenSet(items, labels, PAD, (PAD, CLS, SEP, MASK), MASK)


def vector_set(labels):
    """A plain EncodedSet of fixed vectors (no token ids: cannot be augmented)."""
    labels = np.asarray(labels, dtype=np.int64)
    items = [torch.full((4,), float(y)) for y in labels]
    return EncodedSet(items, labels, np.ones(len(labels), dtype=np.int64), lambda xs: {"x": torch.stack(xs)})


class Recorder(nn.Module):
    """Bag-of-tokens (or linear) classifier that records every batch it sees and the mode it was in."""

    def __init__(self, vocab=40, k=2):
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, k, mode="mean")
        self.lin = nn.Linear(4, k)
        self.seen: list[tuple[bool, dict]] = []

    def forward(self, batch):
        self.seen.append((self.training, {k: v.clone() for k, v in batch.items()}))
        if "x" in batch:
            return self.lin(batch["x"])
        return self.emb(batch["input_ids"])

    def groups(self, lr=1e-2):
        return [{"params": list(self.parameters()), "lr": lr, "weight_decay": 0.0}]
