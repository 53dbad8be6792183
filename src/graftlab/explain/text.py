"""Token attributions for text classifiers.

Two families:

* token models (a :class:`~graftlab.strategies.neural.NeuralPredictor` over a Hugging Face text
  encoder): layer integrated gradients over the word-embedding layer, or occlusion of one word at a
  time; both use the same baseline, the ``[PAD]`` token in place of each word ([CLS]/[SEP] kept);
* any other text predictor (tf-idf + logistic regression, the prior): occlusion by removing one
  word at a time from the text and re-running ``predict_logits``.

Every attribution explains the *log-odds of the target class*, log(p_t / (1 - p_t)) = z_t - logsumexp of
the other logits z_j, before temperature scaling. Unlike a raw logit it does not depend on how a model
shifts its logits (a binary logistic regression stores [0, w]: its first logit never moves), and for two
classes it is simply z_t - z_other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "integrated_gradients",
    "is_token_model",
    "log_odds",
    "occlude_tokens",
    "occlude_words",
    "split_words",
    "top_words",
]

# Words as a person reads them: runs of word characters, or single punctuation marks.
_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


def is_token_model(predictor: Any) -> bool:
    """True for a neural predictor over a Hugging Face text encoder (token ids in, logits out)."""
    model = getattr(predictor, "model", None)
    encoder = getattr(model, "encoder", None)
    backbone = getattr(predictor, "backbone", None)
    return (
        encoder is not None
        and hasattr(encoder, "get_input_embeddings")
        and getattr(backbone, "modality", None) == "text"
        and hasattr(backbone, "tokenizer")
    )


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans of the words (and punctuation marks) of ``text``."""
    return [m.span() for m in _WORD.finditer(text)]


# -- token models ---------------------------------------------------------------------------------
class _Encoded:
    """One text as token ids with the word each piece belongs to (special tokens: word None)."""

    def __init__(self, predictor: Any, text: str) -> None:
        bb = predictor.backbone
        tok = bb.tokenizer
        limit = min(predictor.max_length or bb.max_length, bb.max_length)
        # the same call as Backbone.encode, so the ids are those the model sees when predicting
        fast = bool(getattr(tok, "is_fast", False))
        enc = tok(text, truncation=True, max_length=limit, return_offsets_mapping=fast, return_special_tokens_mask=True)
        self.ids: list[int] = list(enc["input_ids"])
        self.tokens: list[str] = tok.convert_ids_to_tokens(self.ids)
        self.pad_id: int = tok.pad_token_id if tok.pad_token_id is not None else 0
        # the tokens the tokenizer added ([CLS], [SEP]); [UNK] stands for a real word and is not one of them
        self.special = [bool(m) for m in enc["special_tokens_mask"]]
        self.truncated = len(tok(text, truncation=False)["input_ids"]) > len(self.ids)
        if fast:
            word_ids, offsets = enc.word_ids(), enc["offset_mapping"]
        else:  # slow tokenizer: WordPiece continuations start with '##'; no character offsets
            word_ids, offsets, w = [], [], -1
            for t, s in zip(self.tokens, self.special, strict=True):
                if not s and (w < 0 or not t.startswith("##")):
                    w += 1
                word_ids.append(None if s else w)
                offsets.append((0, 0))
        self.word_of: list[int | None] = [None if s else w for w, s in zip(word_ids, self.special, strict=True)]
        self.words: list[list[int]] = []  # token positions of each word, in order
        self.spans: list[tuple[int, int]] = []
        seen: dict[int, int] = {}
        for pos, w in enumerate(self.word_of):
            if w is None:
                continue
            if w not in seen:
                seen[w] = len(self.words)
                self.words.append([])
                self.spans.append(tuple(offsets[pos]))
            k = seen[w]
            self.words[k].append(pos)
            self.spans[k] = (self.spans[k][0], int(offsets[pos][1]))

    def word_texts(self, text: str) -> list[str]:
        out = []
        for (start, end), positions in zip(self.spans, self.words, strict=True):
            piece = text[start:end] if end > start else "".join(self.tokens[p].removeprefix("##") for p in positions)
            out.append(piece)
        return out

    def baseline_ids(self) -> list[int]:
        """The input with every non-special token replaced by [PAD] (same length, same mask)."""
        return [i if s else self.pad_id for i, s in zip(self.ids, self.special, strict=True)]


def log_odds(logits: np.ndarray, target: int) -> np.ndarray:
    """(n, k) logits -> (n,) log-odds of class ``target``: z_t - logsumexp_{j != t} z_j."""
    z = np.asarray(logits, dtype=np.float64)
    others = np.delete(z, target, axis=1)
    m = others.max(1)
    return z[:, target] - (m + np.log(np.exp(others - m[:, None]).sum(1)))


def _log_odds_torch(logits: Any, target: int) -> Any:
    """Torch version of :func:`log_odds`, differentiable: (batch, k) -> (batch,)."""
    import torch

    others = logits.masked_fill(torch.arange(logits.shape[1], device=logits.device) == target, float("-inf"))
    return logits[:, target] - torch.logsumexp(others, dim=1)


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def _logits(model: Any):
    """logits = f(input_ids, attention_mask): (batch, n_classes)."""

    def f(input_ids, attention_mask):
        return model({"input_ids": input_ids, "attention_mask": attention_mask})

    return f


def _word_result(enc: _Encoded, text: str, token_attr: np.ndarray) -> dict[str, Any]:
    words = enc.word_texts(text)
    word_attr = [float(sum(token_attr[p] for p in positions)) for positions in enc.words]
    return {"words": words, "word_attributions": word_attr, "word_spans": [list(s) for s in enc.spans]}


def integrated_gradients(predictor: Any, text: str, target: int | None = None, n_steps: int = 32) -> dict[str, Any]:
    """Layer integrated gradients over the word embeddings, from an all-[PAD] baseline.

    Per-token attributions sum (over tokens) to F(text) - F(baseline), F the target's log-odds, up to
    the integral's approximation error, which is returned as ``completeness_error`` (captum's
    convergence delta, absolute value).

    Returns:
        dict with target, tokens, attributions, words, word_attributions, word_spans, logits,
        baseline_log_odds, log_odds_difference, completeness_error, n_steps, truncated.
    """
    import torch
    from captum.attr import LayerIntegratedGradients

    model = predictor.model
    model.eval()
    enc = _Encoded(predictor, text)
    ids = torch.tensor([enc.ids], dtype=torch.long, device=_device(model))  # (1, seq)
    base = torch.tensor([enc.baseline_ids()], dtype=torch.long, device=ids.device)
    mask = torch.ones_like(ids)  # the baseline keeps the input's mask: [PAD] tokens are attended to
    f = _logits(model)
    with torch.no_grad():
        logits = f(ids, mask)[0]  # (n_classes,)
        base_logits = f(base, mask)  # (1, n_classes)
    target = int(logits.argmax()) if target is None else int(target)
    base_odds = float(_log_odds_torch(base_logits, target)[0])
    odds = float(_log_odds_torch(logits[None], target)[0])

    def g(input_ids, attention_mask):  # (batch,): the explained quantity
        return _log_odds_torch(f(input_ids, attention_mask), target)

    lig = LayerIntegratedGradients(g, model.encoder.get_input_embeddings())
    with torch.enable_grad():
        attr, delta = lig.attribute(ids, baselines=base, additional_forward_args=(mask,),
                                    n_steps=n_steps, internal_batch_size=min(n_steps, 32),
                                    return_convergence_delta=True)
    token_attr = attr.sum(-1)[0].detach().double().cpu().numpy()  # (seq,): sum over the embedding dimension
    return {
        "target": target,
        "tokens": enc.tokens,
        "attributions": [float(a) for a in token_attr],
        **_word_result(enc, text, token_attr),
        "logits": [float(z) for z in logits],
        "log_odds": odds,
        "baseline_log_odds": base_odds,
        "log_odds_difference": odds - base_odds,
        "completeness_error": float(abs(delta.item())),
        "n_steps": int(n_steps),
        "baseline": "pad",
        "truncated": enc.truncated,
    }


def occlude_tokens(predictor: Any, text: str, target: int | None = None, batch_size: int = 32) -> dict[str, Any]:
    """Occlusion for token models: each word's pieces become [PAD]; attribution = drop in the target's log-odds.

    One forward pass per word (batched), no gradients. Every piece of a word carries the word's
    score divided by its number of pieces, so a word's pieces sum to the word's score.
    """
    import torch

    model = predictor.model
    model.eval()
    enc = _Encoded(predictor, text)
    f = _logits(model)
    variants = []
    for positions in enc.words:
        ids = list(enc.ids)
        for p in positions:
            ids[p] = enc.pad_id
        variants.append(ids)
    with torch.no_grad():
        ids = torch.tensor([enc.ids], dtype=torch.long, device=_device(model))
        logits = f(ids, torch.ones_like(ids))[0]
        target = int(logits.argmax()) if target is None else int(target)
        odds = float(_log_odds_torch(logits[None], target)[0])
        occluded = np.zeros(len(variants))
        for start in range(0, len(variants), batch_size):
            chunk = torch.tensor(variants[start : start + batch_size], dtype=torch.long, device=ids.device)  # (b, seq)
            occluded[start : start + len(chunk)] = _log_odds_torch(f(chunk, torch.ones_like(chunk)), target).double().cpu().numpy()
    word_scores = odds - occluded  # (n_words,)
    token_attr = np.zeros(len(enc.ids))
    for score, positions in zip(word_scores, enc.words, strict=True):
        token_attr[positions] = score / len(positions)
    return {
        "target": target,
        "tokens": enc.tokens,
        "attributions": [float(a) for a in token_attr],
        **_word_result(enc, text, token_attr),
        "logits": [float(z) for z in logits],
        "log_odds": odds,
        "completeness_error": None,
        "baseline": "pad",
        "truncated": enc.truncated,
    }


def occlude_words(predictor: Any, text: str, target: int | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Occlusion for any text predictor: remove one word at a time; attribution = drop in the target's log-odds.

    Works through ``predict_logits`` only, so it explains tf-idf models and the prior alike (the prior
    ignores its input: every attribution is 0).
    """
    spans = split_words(text)
    variants = [text[:s] + " " + text[e:] for s, e in spans]
    logits = np.asarray(predictor.predict_logits([text] + variants, batch_size), dtype=np.float64)  # (1+n, k)
    target = int(logits[0].argmax()) if target is None else int(target)
    odds = log_odds(logits, target)  # (1+n,)
    scores = odds[0] - odds[1:]
    words = [text[s:e] for s, e in spans]
    return {
        "target": target,
        "tokens": words,
        "attributions": [float(a) for a in scores],
        "words": words,
        "word_attributions": [float(a) for a in scores],
        "word_spans": [[s, e] for s, e in spans],
        "logits": [float(z) for z in logits[0]],
        "log_odds": float(odds[0]),
        "completeness_error": None,
        "baseline": "word removed",
        "truncated": False,
    }


def top_words(words: Sequence[str], scores: Sequence[float], n: int = 5) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The ``n`` words with the largest positive and the largest negative scores."""
    pairs = [(w, float(s)) for w, s in zip(words, scores, strict=True)]
    pos = sorted((p for p in pairs if p[1] > 0), key=lambda p: -p[1])[:n]
    neg = sorted((p for p in pairs if p[1] < 0), key=lambda p: p[1])[:n]
    return pos, neg
