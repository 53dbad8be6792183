"""What every backbone offers: preprocessing, layer groups, pooled embeddings and a card.

A backbone is a *source* of pretrained encoders. ``load_encoder()`` returns a fresh ``nn.Module``
each time (a strategy may modify it); ``embed()`` gives frozen pooled features for probes, bake-offs
and drift monitoring.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.registry import Registry

__all__ = ["BACKBONES", "REBUILDERS", "REFERENCE_SCHEMES", "BackboneCard", "Backbone", "LayerGroup", "EncodedSet",
           "batched_outputs", "length_sorted_batches"]

#: name -> zero-argument factory returning a :class:`Backbone`.
BACKBONES: Registry = Registry("backbone")

#: scheme -> callable(rest) returning a :class:`Backbone` for a reference ``scheme:rest`` (``hf:org/name``).
REFERENCE_SCHEMES: Registry = Registry("backbone reference scheme")


@dataclass
class BackboneCard:
    """Provenance and size of a pretrained backbone, recorded with every result."""

    name: str
    modality: str
    architecture: str
    source_package: str | None
    package_version: str | None
    weights_sha256: str | None
    license: str
    commercial_use: bool | None
    params: int
    hidden_size: int
    num_layers: int
    max_length: int
    pretraining_data: str = "unknown"
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerGroup:
    """A named slice of an encoder that is frozen or unfrozen as a unit (bottom to top)."""

    name: str
    modules: list[nn.Module]

    def parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules for p in m.parameters()]


class EncodedSet:
    """Preprocessed examples ready for batching: variable-length token ids (or fixed tensors) + labels.

    ``lengths`` drives length-bucketed batching; ``collate(idx)`` pads one batch dynamically.
    """

    def __init__(self, items: list[Any], labels: np.ndarray | None, lengths: np.ndarray, collate_fn) -> None:
        self.items = items
        self.labels = labels
        self.lengths = np.asarray(lengths)
        self._collate = collate_fn

    def __len__(self) -> int:
        return len(self.items)

    def collate(self, index: Sequence[int]) -> dict[str, torch.Tensor]:
        return self._collate([self.items[i] for i in index])


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Inference batches of row indices, longest inputs first: similar lengths share a batch, so padding is short."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


@torch.no_grad()
def batched_outputs(data: EncodedSet, fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], batch_size: int,
                    width: int | None = None) -> np.ndarray:
    """``fn`` run on every example of ``data`` in :func:`length_sorted_batches`, without gradients (the caller puts
    the model in eval mode).

    Args:
        fn: one collated batch -> (batch, width) rows: logits, pooled features.
        width: the row width when known; an empty set then gives (0, width), else (0, 0).

    Returns:
        (n, width) float32, in input order.
    """
    out = np.zeros((len(data), width), dtype=np.float32) if width is not None else None
    for idx in length_sorted_batches(data.lengths, batch_size):
        rows = fn(data.collate(idx)).float().cpu().numpy()  # (batch, width)
        if out is None:
            out = np.zeros((len(data), rows.shape[1]), dtype=np.float32)
        out[idx] = rows
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


class Backbone(ABC):
    """A pretrained model family member with the same surface for every modality."""

    name: str
    modality: str = "text"

    @property
    @abstractmethod
    def card(self) -> BackboneCard: ...

    @property
    @abstractmethod
    def hidden_size(self) -> int: ...

    @abstractmethod
    def load_encoder(self, pretrained: bool = True) -> nn.Module:
        """A fresh encoder: pretrained weights, or the same architecture randomly initialised."""

    @abstractmethod
    def layer_groups(self, encoder: nn.Module) -> list[LayerGroup]:
        """Groups bottom to top: embeddings, each block, pooler (when the encoder has one)."""

    @abstractmethod
    def encode(self, inputs: Sequence, labels: np.ndarray | None = None, max_length: int | None = None) -> EncodedSet:
        """Preprocess raw inputs (texts, images) into an :class:`EncodedSet`."""

    @abstractmethod
    def pooled(self, encoder: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Run ``encoder`` on one collated batch and pool: (batch, hidden)."""

    @abstractmethod
    def lengths(self, inputs: Sequence) -> np.ndarray:
        """Model-specific input lengths (tokens for text) for the overlong-input check."""

    @abstractmethod
    def export(self, folder) -> dict[str, Any]:
        """Write what is needed to rebuild the encoder architecture and preprocessing without this
        backbone's package (config, tokenizer) into ``folder``; return a JSON spec for :meth:`rebuild`."""

    def embed(self, inputs: Sequence, max_length: int | None = None, batch_size: int = 64) -> np.ndarray:
        """Frozen pooled embeddings, (n, hidden) float32. Cached per instance and input list."""
        from .embedding_cache import cached_embeddings

        if len(inputs) == 0:  # e.g. the validation split of a refit on every labeled example
            return np.zeros((0, self.hidden_size), dtype=np.float32)

        return cached_embeddings(self, inputs, max_length, batch_size)


#: exported-spec kind -> callable(folder, spec) rebuilding a backbone (architecture + preprocessing, no
#: pretrained weights) from what :meth:`Backbone.export` wrote. Used to load saved models.
REBUILDERS: Registry = Registry("backbone export kind")
