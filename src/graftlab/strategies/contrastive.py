"""``contrastive``: SetFit-style few-shot learning — tune the encoder body on sentence pairs, then fit a
logistic head on the tuned embeddings (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts").

1. Pairs (:func:`sample_pairs`): same label = positive (target 1), different labels = negative (target 0);
   unique unordered pairs, as many positives as negatives, spread evenly over classes (positives) and
   class pairs (negatives), at most ``pairs_per_example`` x n (and ``max_pairs``), drawn with the trial's seed.
2. Body: trained by the one training loop (``graftlab.training.Trainer``: AdamW with warm-up and linear decay,
   clipping, early stopping, time budget, progress bar, checkpoints and resume) on :class:`PairObjective`:
   ``loss='cosine'`` (SetFit's CosineSimilarityLoss: the squared error between cos(u, v) and the pair's target)
   or ``loss='supcon'`` (supervised contrastive loss over the distinct sentences of each pair batch). Each batch
   runs every distinct sentence once; with ``trainable_layers`` set, the frozen prefix is computed once and
   cached as for ``finetune``.
3. Head: standardised embeddings, a logistic regression with C chosen on val, the scaler folded into the
   linear head. After every body epoch the head is refit and scored on val; the loop keeps the best epoch's body
   (``train.early_stopping``). Without validation rows (the refit on every labeled example after k-fold
   selection) the last epoch's body is kept and the head is fitted once on its L2-normalised embeddings
   (``selection.embedding_head``).

The result is an :class:`~graftlab.strategies.neural.EncoderClassifier` in a
:class:`~graftlab.strategies.neural.NeuralPredictor`: it saves, reloads and serves like every strategy.
sentence-transformers / setfit are not needed: the backbone abstraction gives the pooled embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ..backbones.base import batched_outputs
from ..core.config import TrainConfig
from ..core.errors import ConfigError, DataError
from ..data.dataset import LabeledData
from .base import STRATEGIES, FitContext, FitOutcome, Strategy, StrategyParams, effective_lr
from .neural import (
    EncoderClassifier,
    NeuralPredictor,
    count_params,
    freeze_all_but_top,
    param_groups,
    training_sets,
)
from .overrides import trainer_for
from .selection import embedding_head, val_score

__all__ = ["Contrastive", "ContrastiveParams", "PairObjective", "Pairs", "encoded_features", "pair_loss", "sample_pairs",
           "supcon_loss"]

Rate = Annotated[float, Field(gt=0.0, lt=1.0)]


class ContrastiveParams(StrategyParams):
    lr: Rate | None = Field(default=None, description="this strategy's own body rate; default: 0.4 x train.lr")
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


class PairObjective:
    """What the body trains for, as the training loop takes it (``graftlab.training.Objective``): batches of pairs in a
    seeded random order, the pair loss, and validation by the logistic head refit on the current body's features.

    Args:
        params: the strategy's parameters (``batch_size`` pairs per step, ``loss``, ``temperature``, ``C``).
        pairs: the sampled pairs, as rows of ``train_set``.
        train_set, val_set: the encoded sets (token ids, or states at a cached freeze boundary).
        train, val: the labeled data (the head's labels).
        seed: the head's seed.
        cfg: the training settings (``eval_batch_size``; the early-stopping metric chooses C).
    """

    def __init__(self, params: ContrastiveParams, pairs: Pairs, train_set: Any, val_set: Any, train: LabeledData,
                 val: LabeledData, seed: int, cfg: TrainConfig) -> None:
        self.params, self.pairs, self.train_set, self.val_set = params, pairs, train_set, val_set
        self.train, self.val, self.seed, self.cfg = train, val, seed, cfg
        self.heads: dict[int, dict[str, Any]] = {}  # step -> the head validated there

    def __len__(self) -> int:
        return len(self.pairs)

    def batches(self, rng: np.random.Generator) -> list[list[int]]:
        """One pass over the pairs in a random order, ``batch_size`` pairs per step."""
        order, size = rng.permutation(len(self.pairs)), self.params.batch_size
        return [order[start : start + size].tolist() for start in range(0, len(order), size)]

    def loss(self, model: EncoderClassifier, index: list[int]) -> torch.Tensor:
        return pair_loss(model, self.train_set, self.pairs, np.asarray(index), self.params.loss, self.params.temperature)

    def validate(self, model: EncoderClassifier, step: int) -> dict[str, Any]:
        """Refit the head on the body as it is and score it on val (the chosen C's predictions: loss, macro-F1,
        accuracy, whichever early stopping reads)."""
        head = self.fit_head(model)
        self.heads[step] = head
        y, proba = self.val.labels, head["val_proba"]
        return {"val_loss": -val_score("log_loss", y, proba), "val_macro_f1": val_score("macro_f1", y, proba),
                "val_accuracy": val_score("accuracy", y, proba), "C": head["C"]}

    def fit_head(self, model: EncoderClassifier) -> dict[str, Any]:
        """Logistic regression on the current body's features (``selection.embedding_head``): standardised with C
        chosen on val, or L2-normalised with the refit C when there are no validation rows."""
        x_train = encoded_features(model, self.train_set, self.cfg.eval_batch_size)
        x_val = encoded_features(model, self.val_set, self.cfg.eval_batch_size)  # (0, hidden) without validation rows
        head = embedding_head(x_train, self.train.labels, x_val, self.val.labels, self.train.n_classes, self.params.C,
                              self.seed, self.cfg)
        return {**head, "metric": head["selection_metric"]}

    def final_head(self, model: EncoderClassifier, step: int) -> dict[str, Any]:
        """The head of the body the loop left in ``model`` (validated at ``step``); refit on it when that validation
        ran before a resume, or never ran (no validation rows, or a time budget spent within the first epoch)."""
        return self.heads.get(step) or self.fit_head(model)


@STRATEGIES.register("contrastive")
class Contrastive(Strategy):
    """Pair-tuned body + logistic head: the few-shot strategy (see the module docstring)."""

    name = "contrastive"
    fits_without_val = True
    Params = ContrastiveParams
    lr_multiplier = 0.4  # SetFit's body rate, 2e-5, at the default train.lr

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        p, bb = self.params, ctx.backbone
        # pairs of raw sentences (no token augmentation), `batch_size` pairs per step, the head refit once per epoch
        cfg = ctx.train.model_copy(update={"augment": None, "batch_size": p.batch_size, "eval_every_steps": None})
        n_blocks = bb.card.num_layers
        if p.trainable_layers is not None and p.trainable_layers > n_blocks:
            raise ConfigError(
                f"The 'trainable_layers' parameter of contrastive must be at most {n_blocks} for backbone {bb.name!r} "
                f"({n_blocks} blocks), or null for the whole body. Got {p.trainable_layers} instead."
            )
        pairs = sample_pairs(train.labels, p.pairs_per_example, p.max_pairs, ctx.seed)
        torch.manual_seed(ctx.seed)  # dropout in the body depends on the trial's seed
        model = EncoderClassifier(bb, bb.load_encoder(pretrained=True), train.n_classes, dropout=0.0)
        freeze_all_but_top(model, p.trainable_layers)
        model.head.requires_grad_(False)  # the head is fitted afterwards, in closed form
        body_params = count_params(model)[0]
        train_set, val_set, cache_info = training_sets(model, train, val, cfg)
        objective = PairObjective(p, pairs, train_set, val_set, train, val, ctx.seed, cfg)
        lr = effective_lr(self, cfg, n_blocks)
        result = trainer_for(ctx, cfg).fit(model, param_groups(model, lr.value, cfg.weight_decay), train_set, val_set,
                                           name=self.name, epochs=p.epochs, objective=objective)
        # the loop restored the best validated body; without validation rows it kept the last one
        body_step = result.best_step if result.best_metric is not None else result.steps
        head = objective.final_head(model, body_step)
        self._set_head(model, head)
        model.eval()
        head_params = int(model.head.weight.numel() + model.head.bias.numel())
        steps_per_epoch = math.ceil(len(pairs) / p.batch_size)
        info = {"loss": p.loss, "lr": lr.value, "lr_source": lr.source, "pairs": len(pairs), "positive_pairs": pairs.n_positive,
                "negative_pairs": len(pairs) - pairs.n_positive, "steps": result.steps, "best_step": body_step,
                "best_epoch": math.ceil(body_step / steps_per_epoch), "epochs_run": len(result.history),
                "stop_reason": result.stop_reason, "stopped_early": result.stopped_early, "C": head["C"],
                "val_scores": head["val_scores"], "selection_metric": head["metric"], "body_trainable_params": body_params,
                **cache_info}
        pred = NeuralPredictor(model, train.label_names, cfg.max_length, dropout=0.0)
        return FitOutcome(pred, history=result.history, trainable_params=body_params + head_params,
                          total_params=count_params(model)[1], info=info)

    @staticmethod
    def _set_head(model: EncoderClassifier, head: dict[str, Any]) -> None:
        with torch.no_grad():
            model.head.weight.copy_(torch.as_tensor(head["w"], dtype=torch.float32))
            model.head.bias.copy_(torch.as_tensor(head["b"], dtype=torch.float32))
        model.normalize = bool(head["normalize"])
