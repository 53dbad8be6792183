"""``contrastive``: SetFit-style few-shot learning — tune the encoder body on sentence pairs, then fit a
logistic head on the tuned embeddings (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts").

1. Pairs (:func:`sample_pairs`): same label = positive (target 1), different labels = negative (target 0);
   unique unordered pairs, as many positives as negatives, spread evenly over classes (positives) and
   class pairs (negatives), at most ``pairs_per_example`` x n (and ``max_pairs``), drawn with the trial's seed.
2. Body: AdamW with warm-up and linear decay on ``loss='cosine'`` (SetFit's CosineSimilarityLoss: the
   squared error between cos(u, v) and the pair's target) or ``loss='supcon'`` (supervised contrastive loss
   over the distinct sentences of each pair batch). Each batch runs every distinct sentence once; with
   ``trainable_layers`` set, the frozen prefix is computed once and cached as for ``finetune``.
3. Head: standardised embeddings, a logistic regression with C chosen on val, the scaler folded into the
   linear head. After every body epoch the head is refit and scored on val; the best epoch's body is kept.
   Without validation rows (the refit on every labeled example after k-fold selection) the head is fitted on
   L2-normalised embeddings and the last epoch is kept (``selection.embedding_head``).

The result is an :class:`~graftlab.strategies.neural.EncoderClassifier` in a
:class:`~graftlab.strategies.neural.NeuralPredictor`: it saves, reloads and serves like every strategy.
sentence-transformers / setfit are not needed: the backbone abstraction gives the pooled embeddings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ..backbones.base import batched_outputs
from ..core.errors import ConfigError, DataError
from ..core.schedules import warmup_linear
from ..data.dataset import LabeledData
from .base import STRATEGIES, FitContext, FitOutcome, Strategy, StrategyParams
from .neural import (
    EncoderClassifier,
    NeuralPredictor,
    count_params,
    freeze_all_but_top,
    param_groups,
    training_sets,
)
from .selection import embedding_head

__all__ = ["Contrastive", "ContrastiveParams", "Pairs", "encoded_features", "pair_loss", "sample_pairs", "supcon_loss"]

Rate = Annotated[float, Field(gt=0.0, lt=1.0)]


class ContrastiveParams(StrategyParams):
    lr: Rate = Field(default=2e-5, description="body learning rate (SetFit's default)")
    epochs: Annotated[int, Field(ge=1, le=100)] = Field(default=1, description="passes over the sampled pairs")
    batch_size: Annotated[int, Field(ge=2, le=1024)] = Field(default=16, description="pairs per step")
    pairs_per_example: Annotated[int, Field(ge=1, le=10_000)] = Field(default=20, description="pair budget per training example")
    max_pairs: Annotated[int, Field(ge=2)] | None = Field(default=10_000, description="cap on the number of pairs; null = none")
    trainable_layers: Annotated[int, Field(ge=0, le=128)] | None = Field(default=None, description="top blocks tuned; null = the whole body")
    loss: Literal["cosine", "supcon"] = Field(
        default="supcon", description="supcon (supervised contrastive) or cosine (SetFit's); see docs/benchmarks.md#few-shot"
    )
    temperature: Annotated[float, Field(gt=0.0, le=10.0)] = Field(default=0.07, description="supcon only")
    C: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0], min_length=1)


@dataclass(frozen=True)
class Pairs:
    """Sentence pairs as row indices into the training data: ``a[i] < b[i]``, ``target[i]`` 1.0 (same label) or 0.0."""

    a: np.ndarray
    b: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    @property
    def n_positive(self) -> int:
        return int(self.target.sum())


def _spread(capacity: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` draws as evenly as possible over groups without exceeding any group's capacity."""
    take = np.zeros(len(capacity), dtype=np.int64)
    left = int(total)
    while left > 0:
        open_ = np.flatnonzero(take < capacity)
        if not len(open_):
            break
        share = left // len(open_)
        if share == 0:  # fewer draws left than groups: one each to randomly chosen groups
            take[rng.choice(open_, left, replace=False)] += 1
            break
        add = np.minimum(share, capacity[open_] - take[open_])
        take[open_] += add
        left -= int(add.sum())
    return take


def _triangle(t: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear index t in [0, m(m-1)/2) -> (i, j), i < j, row-major over the upper triangle of an m x m matrix."""
    t = t.astype(np.int64)
    i = np.floor((2 * m - 1 - np.sqrt((2.0 * m - 1) ** 2 - 8.0 * t)) / 2).astype(np.int64)

    def start(r: np.ndarray) -> np.ndarray:  # linear index of the first pair in row r
        return r * (2 * m - r - 1) // 2

    i = np.clip(i, 0, m - 2)
    for _ in range(2):  # correct floating-point rounding for very large m
        i = np.where(start(i) > t, i - 1, i)
        i = np.where(start(i + 1) <= t, i + 1, i)
    return i, t - start(i) + i + 1


def sample_pairs(labels: np.ndarray, pairs_per_example: int = 20, max_pairs: int | None = None, seed: int = 0) -> Pairs:
    """Balanced, unique sentence pairs within a budget.

    Args:
        labels: (n,) class indices of the training examples.
        pairs_per_example: the budget is ``pairs_per_example * n`` pairs (capped by ``max_pairs``).
        max_pairs: an absolute cap, or None.
        seed: the draw's seed.

    Returns:
        :class:`Pairs` with as many positives as negatives (min of half the budget and what exists of each),
        no pair twice (unordered), positives spread evenly over classes and negatives over class pairs.

    Raises:
        DataError: when no positive or no negative pair exists (fewer than two classes, or no class with two examples).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    budget = int(pairs_per_example) * len(labels)
    if max_pairs is not None:
        budget = min(budget, int(max_pairs))
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    pos_groups = [(m, m) for m in members]
    neg_groups = [(members[i], members[j]) for i in range(len(members)) for j in range(i + 1, len(members))]
    pos_cap = np.array([len(m) * (len(m) - 1) // 2 for m, _ in pos_groups], dtype=np.int64)
    neg_cap = np.array([len(u) * len(v) for u, v in neg_groups], dtype=np.int64)
    per_side = min(budget // 2, int(pos_cap.sum()), int(neg_cap.sum()))
    if per_side == 0:
        raise DataError(
            f"The contrastive strategy needs at least one positive and one negative pair; the training labels have "
            f"class counts {[len(m) for m in members]} and a budget of {budget} pairs. Give it at least two classes with "
            "two examples each (or raise 'pairs_per_example')."
        )
    out_a, out_b, out_t = [], [], []
    for groups, cap, target in ((pos_groups, pos_cap, 1.0), (neg_groups, neg_cap, 0.0)):
        for (u, v), c, k in zip(groups, cap, _spread(cap, per_side, rng), strict=True):
            if k == 0:
                continue
            t = rng.choice(int(c), int(k), replace=False)
            if u is v:  # within one class: the upper triangle
                i, j = _triangle(t, len(u))
            else:  # across two classes: the full rectangle
                i, j = t // len(v), t % len(v)
            x, y = u[i], v[j]
            out_a.append(np.minimum(x, y))
            out_b.append(np.maximum(x, y))
            out_t.append(np.full(int(k), target, dtype=np.float32))
    a, b, t = np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_t)
    order = rng.permutation(len(t))
    return Pairs(a[order], b[order], t[order])


def supcon_loss(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020). emb (n, hidden), labels (n,) -> scalar."""
    z = F.normalize(emb, dim=1)
    sim = z @ z.T / temperature  # (n, n)
    self_mask = torch.eye(len(z), dtype=torch.bool)
    log_prob = sim.masked_fill(self_mask, float("-inf"))
    log_prob = log_prob - torch.logsumexp(log_prob, dim=1, keepdim=True)  # log softmax over all others
    pos = (labels[:, None] == labels[None, :]) & ~self_mask  # (n, n)
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        return emb.sum() * 0.0
    per_anchor = log_prob.masked_fill(~pos, 0.0).sum(1)[has] / n_pos[has]
    return -per_anchor.mean()


def pair_loss(model: EncoderClassifier, data: Any, pairs: Pairs, index: np.ndarray, kind: str, temperature: float) -> torch.Tensor:
    """Loss of one batch of pairs; every distinct sentence of the batch runs through the encoder once."""
    a, b = pairs.a[index], pairs.b[index]
    rows, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    emb = model.features(data.collate(rows))  # (distinct sentences, hidden)
    if kind == "supcon":
        return supcon_loss(emb, torch.as_tensor(data.labels[rows]), temperature)
    cos = F.cosine_similarity(emb[inverse[: len(a)]], emb[inverse[len(a) :]], dim=1)  # (pairs,)
    return F.mse_loss(cos, torch.as_tensor(pairs.target[index]))


def encoded_features(model: EncoderClassifier, data: Any, batch_size: int) -> np.ndarray:
    """Pooled features (n, hidden) of an encoded set (token ids or cached prefix states), in eval mode, input order."""
    model.eval()
    return batched_outputs(data, model.features, batch_size, model.backbone.hidden_size)


@STRATEGIES.register("contrastive")
class Contrastive(Strategy):
    """Pair-tuned body + logistic head: the few-shot strategy (see the module docstring)."""

    name = "contrastive"
    fits_without_val = True
    Params = ContrastiveParams

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        p, bb = self.params, ctx.backbone
        cfg = ctx.train.model_copy(update={"augment": None})  # pairs of raw sentences: no token augmentation
        n_blocks = bb.card.num_layers
        if p.trainable_layers is not None and p.trainable_layers > n_blocks:
            raise ConfigError(
                f"The 'trainable_layers' parameter of contrastive must be at most {n_blocks} for backbone {bb.name!r} "
                f"({n_blocks} blocks), or null for the whole body. Got {p.trainable_layers} instead."
            )
        t_start = time.perf_counter()
        pairs = sample_pairs(train.labels, p.pairs_per_example, p.max_pairs, ctx.seed)
        torch.manual_seed(ctx.seed)  # dropout in the body depends on the trial's seed
        model = EncoderClassifier(bb, bb.load_encoder(pretrained=True), train.n_classes, dropout=0.0)
        freeze_all_but_top(model, p.trainable_layers)
        model.head.requires_grad_(False)  # the head is fitted afterwards, in closed form
        body_params = count_params(model)[0]
        train_set, val_set, cache_info = training_sets(model, train, val, cfg)

        optimizer = torch.optim.AdamW(param_groups(model, p.lr, cfg.weight_decay))
        steps_per_epoch = -(-len(pairs) // p.batch_size)
        total = steps_per_epoch * p.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear(int(cfg.warmup_ratio * total), total))
        rng = np.random.default_rng(ctx.seed)
        patience = cfg.early_stopping.patience if cfg.early_stopping else None
        history: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        stop_reason = "finished all epochs"
        for epoch in range(1, p.epochs + 1):
            train_loss = self._train_epoch(model, train_set, pairs, optimizer, scheduler, rng, cfg.grad_clip)
            head = self._fit_head(model, train_set, val_set, train, val, ctx.seed, cfg)
            record = {"epoch": epoch, "step": epoch * steps_per_epoch, "train_loss": train_loss,
                      "C": head["C"], "elapsed_s": round(time.perf_counter() - t_start, 3)}
            if head["score"] is not None:
                record[f"val_{head['metric']}"] = head["score"]
            history.append(record)
            # without validation rows (the refit on every labeled example) the last epoch is kept
            if best is None or head["score"] is None or head["score"] > best["head"]["score"] + 1e-12:
                state = {k: v.detach().clone() for k, v in model.encoder.state_dict().items()} if p.epochs > 1 else None
                best = {"epoch": epoch, "head": head, "state": state}
            elif patience is not None and epoch - best["epoch"] >= patience:
                stop_reason = f"no val improvement for {patience} epochs"
                break
            if cfg.time_budget_s and time.perf_counter() - t_start > cfg.time_budget_s:
                stop_reason = f"time budget of {cfg.time_budget_s:g} s reached"
                break
        if best["state"] is not None and best["epoch"] != len(history):
            model.encoder.load_state_dict(best["state"])
        self._set_head(model, best["head"])
        model.eval()
        head_params = int(model.head.weight.numel() + model.head.bias.numel())
        info = {"loss": p.loss, "lr": p.lr, "pairs": len(pairs), "positive_pairs": pairs.n_positive,
                "negative_pairs": len(pairs) - pairs.n_positive, "steps": steps_per_epoch * len(history),
                "best_epoch": best["epoch"], "epochs_run": len(history), "stop_reason": stop_reason,
                "C": best["head"]["C"], "val_scores": best["head"]["val_scores"], "selection_metric": best["head"]["metric"],
                "body_trainable_params": body_params, **cache_info}
        pred = NeuralPredictor(model, train.label_names, cfg.max_length, dropout=0.0)
        return FitOutcome(pred, history=history, trainable_params=body_params + head_params,
                          total_params=count_params(model)[1], info=info)

    def _train_epoch(self, model: EncoderClassifier, train_set: Any, pairs: Pairs, optimizer: torch.optim.Optimizer,
                     scheduler: Any, rng: np.random.Generator, grad_clip: float | None) -> float:
        """One pass over the pairs in a seeded random order; returns the mean batch loss."""
        p, losses, order = self.params, [], rng.permutation(len(pairs))
        model.train()
        for start in range(0, len(order), p.batch_size):
            loss = pair_loss(model, train_set, pairs, order[start : start + p.batch_size], p.loss, p.temperature)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_([q for g in optimizer.param_groups for q in g["params"]], grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
        return float(np.mean(losses))

    def _fit_head(self, model: EncoderClassifier, train_set: Any, val_set: Any, train: LabeledData, val: LabeledData,
                  seed: int, cfg: Any) -> dict[str, Any]:
        """Logistic regression on the current body's features (``selection.embedding_head``): standardised with C
        chosen on val, or L2-normalised with the refit C when there are no validation rows."""
        x_train = encoded_features(model, train_set, cfg.eval_batch_size)
        x_val = encoded_features(model, val_set, cfg.eval_batch_size)  # (0, hidden) without validation rows
        head = embedding_head(x_train, train.labels, x_val, val.labels, train.n_classes, self.params.C, seed, cfg)
        return {**head, "metric": head["selection_metric"]}

    @staticmethod
    def _set_head(model: EncoderClassifier, head: dict[str, Any]) -> None:
        with torch.no_grad():
            model.head.weight.copy_(torch.as_tensor(head["w"], dtype=torch.float32))
            model.head.bias.copy_(torch.as_tensor(head["b"], dtype=torch.float32))
        model.normalize = bool(head["normalize"])
