"""Text backbones from a local Hugging Face folder (BERT-like encoders), including any folder by path."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.artifacts import sha256_file
from ..core.errors import AssetMissingError, ConfigError
from .base import REBUILDERS, Backbone, BackboneCard, EncodedSet, LayerGroup

__all__ = ["HFTextBackbone", "TokenSet", "mean_pool", "find_blocks", "pad_batch", "PREFIX_MODEL_TYPES"]

#: encoders whose forward is exactly embeddings -> bidirectional mask -> blocks(hidden, mask), so a frozen
#: prefix can be cut off and its output cached (checked against the full forward in the tests)
PREFIX_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average over real tokens. hidden (batch, seq, dim), mask (batch, seq) -> (batch, dim)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def find_blocks(encoder: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a HF encoder (BERT, RoBERTa, MPNet, DistilBERT...)."""
    for path in ("encoder.layer", "layer", "transformer.layer", "encoder.layers", "layers"):
        obj: Any = encoder
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ConfigError(f"Cannot find the transformer blocks of {type(encoder).__name__}; it is not a supported encoder.")


def _offline() -> None:
    # Never reach a hub: everything is local (set here, when a model is loaded, not at import time).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # graftlab shows its own progress
    hf_logging.set_verbosity_error()


class HFTextBackbone(Backbone):
    """A BERT-like encoder stored as a local HF folder (config.json, weights, tokenizer)."""

    modality = "text"

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        *,
        source_package: str | None = None,
        package_version: str | None = None,
        license: str = "unknown",
        commercial_use: bool | None = None,
        pretraining_data: str = "unknown",
        pooling: str = "mean",
    ) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise AssetMissingError(
                f"{self.path} is not a Hugging Face model folder (no config.json). Pass a registered backbone "
                "name (see `graft models list`) or a folder saved with save_pretrained()."
            )
        self.name = name or self.path.name
        self.source_package = source_package
        self.package_version = package_version
        self.license = license
        self.commercial_use = commercial_use
        self.pretraining_data = pretraining_data
        if pooling not in ("mean", "cls"):
            raise ConfigError(f"The 'pooling' parameter must be 'mean' or 'cls'. Got {pooling!r} instead.")
        self.pooling = pooling

    # -- preprocessing -------------------------------------------------------------------------
    @cached_property
    def tokenizer(self):
        _offline()
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)

    @cached_property
    def config(self):
        _offline()
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(str(self.path), local_files_only=True)

    @property
    def max_length(self) -> int:
        limit = getattr(self.config, "max_position_embeddings", 512)
        # RoBERTa-style models reserve 2 positions for the padding offset
        if getattr(self.config, "model_type", "") in ("roberta", "mpnet", "xlm-roberta"):
            limit -= 2
        tok_max = getattr(self.tokenizer, "model_max_length", limit) or limit
        return int(min(limit, tok_max))

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    def lengths(self, inputs: Sequence[str]) -> np.ndarray:
        _require_text(self.name, inputs)
        enc = self.tokenizer(list(inputs), add_special_tokens=True, truncation=False)["input_ids"]
        return np.array([len(ids) for ids in enc], dtype=np.int64)

    def encode(self, inputs: Sequence[str], labels: np.ndarray | None = None, max_length: int | None = None) -> TokenSet:
        _require_text(self.name, inputs)
        max_length = min(max_length or self.max_length, self.max_length)
        tok = self.tokenizer
        ids = tok(list(inputs), truncation=True, max_length=max_length)["input_ids"] if len(inputs) else []  # no rows: no call
        mask_id = tok.mask_token_id if tok.mask_token_id is not None else tok.unk_token_id
        return TokenSet(ids, labels, tok.pad_token_id or 0, tuple(tok.all_special_ids), mask_id)

    # -- model -----------------------------------------------------------------------------------
    def load_encoder(self, pretrained: bool = True) -> nn.Module:
        _offline()
        from transformers import AutoModel

        if pretrained:
            return AutoModel.from_pretrained(str(self.path), local_files_only=True)
        return AutoModel.from_config(self.config)

    def layer_groups(self, encoder: nn.Module) -> list[LayerGroup]:
        groups = []
        emb = getattr(encoder, "embeddings", None)
        if emb is not None:
            groups.append(LayerGroup("embeddings", [emb]))
        for i, block in enumerate(find_blocks(encoder)):
            groups.append(LayerGroup(f"block{i}", [block]))
        pooler = getattr(encoder, "pooler", None)
        if pooler is not None:
            groups.append(LayerGroup("pooler", [pooler]))
        return groups

    def pooled(self, encoder: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return self.pool(out.last_hidden_state, batch["attention_mask"])

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, seq, hidden) -> (batch, hidden) by this backbone's pooling."""
        if self.pooling == "cls":
            return hidden[:, 0]
        return mean_pool(hidden, attention_mask)

    # -- frozen-prefix cache support -----------------------------------------------------------
    def supports_prefix_cache(self, encoder: nn.Module) -> bool:
        """Whether :meth:`prefix_states` / :meth:`pooled_from` reproduce ``encoder``'s own forward."""
        config = getattr(encoder, "config", None)
        return (
            getattr(config, "model_type", None) in PREFIX_MODEL_TYPES
            and not getattr(config, "is_decoder", False)
            and hasattr(encoder, "embeddings")
            and type(encoder).__module__.startswith("transformers.")  # a plain HF model, not a peft wrapper
        )

    @staticmethod
    def _block_mask(encoder: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor):
        # the same 4D mask (or None when nothing is padded) that the model's own forward builds
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)

    def prefix_modules(self, encoder: nn.Module, stop: int) -> list[nn.Module]:
        """The modules that compute the states entering block ``stop``: the embeddings and the blocks below."""
        return [encoder.embeddings, *list(find_blocks(encoder))[:stop]]

    def prefix_states(self, encoder: nn.Module, batch: dict[str, torch.Tensor], stop: int) -> torch.Tensor:
        """Hidden states entering block ``stop``: embeddings, then blocks ``[0, stop)``. (batch, seq, hidden)."""
        hidden = encoder.embeddings(input_ids=batch["input_ids"])
        mask = self._block_mask(encoder, hidden, batch["attention_mask"])
        for block in find_blocks(encoder)[:stop]:
            hidden = block(hidden, mask)
        return hidden

    def pooled_from(self, encoder: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled features from cached hidden states: runs blocks ``[start_block, n)`` only. (batch, hidden).

        ``batch`` holds ``hidden_states`` (batch, seq, hidden), ``attention_mask`` (batch, seq) and
        ``start_block`` (a 0-d tensor), as collated by :class:`graftlab.backbones.prefix_cache.HiddenSet`.
        """
        hidden, attention_mask = batch["hidden_states"], batch["attention_mask"]
        mask = self._block_mask(encoder, hidden, attention_mask)
        for block in find_blocks(encoder)[int(batch["start_block"]) :]:
            hidden = block(hidden, mask)
        return self.pool(hidden, attention_mask)

    # -- provenance ------------------------------------------------------------------------------
    @cached_property
    def card(self) -> BackboneCard:
        weights = next((self.path / n for n in ("model.safetensors", "pytorch_model.bin") if (self.path / n).is_file()), None)
        n_params = _count_params(self.config)
        return BackboneCard(
            name=self.name,
            modality="text",
            architecture=(getattr(self.config, "architectures", None) or [self.config.model_type])[0],
            source_package=self.source_package,
            package_version=self.package_version,
            weights_sha256=sha256_file(weights) if weights else None,
            license=self.license,
            commercial_use=self.commercial_use,
            params=n_params,
            hidden_size=self.hidden_size,
            num_layers=int(getattr(self.config, "num_hidden_layers", 0)),
            max_length=self.max_length,
            pretraining_data=self.pretraining_data,
            path=str(self.path),
            extra={"pooling": self.pooling, "model_type": self.config.model_type},
        )

    def export(self, folder) -> dict[str, Any]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))
        return {"kind": "hf_text", "pooling": self.pooling, "max_length": self.max_length, "name": self.name}


class TokenSet(EncodedSet):
    """Token id lists plus what text augmentation needs: the special ids and the mask token."""

    def __init__(self, items: list[list[int]], labels: np.ndarray | None, pad_id: int, special_ids: tuple[int, ...],
                 mask_id: int | None) -> None:
        super().__init__(items, labels, np.array([len(x) for x in items]), lambda batch: pad_batch(batch, pad_id))
        self.pad_id = pad_id
        self.special_ids = special_ids
        self.mask_id = mask_id

    def collate_items(self, items: list[list[int]]) -> dict[str, torch.Tensor]:
        """Pad token lists that are not (or no longer) those of this set, e.g. augmented copies."""
        return pad_batch(items, self.pad_id)


def _require_text(name: str, inputs: Sequence) -> None:
    first = next((x for x in inputs if not isinstance(x, str)), None)
    if first is not None:
        raise ConfigError(
            f"The text backbone {name!r} got {type(first).__name__} inputs (images?); it takes text. For image data "
            "choose an image backbone in 'backbones', e.g. efficientnet-lite0 (see `graft models list`)."
        )


def pad_batch(items: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Dynamic padding to the longest sequence of the batch."""
    width = max(len(x) for x in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, x in enumerate(items):
        ids[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _count_params(config) -> int:
    """Parameter count without loading weights (meta device)."""
    from transformers import AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return int(sum(p.numel() for p in model.parameters()))


@REBUILDERS.register("hf_text")
def _rebuild(folder, spec: dict[str, Any]) -> HFTextBackbone:
    return HFTextBackbone(folder, name=spec.get("name"), pooling=spec.get("pooling", "mean"))
