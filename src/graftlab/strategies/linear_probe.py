"""``linear_probe``: frozen backbone, pooled embeddings, a logistic-regression head.

The embeddings come from the backbone's cache (computed once per data and reused by every seed and
strategy). Features are standardised and C is chosen on validation; the scaler and the logistic
regression are folded into the linear head of an :class:`EncoderClassifier`, so the probe saves,
loads and serves exactly like a fine-tuned model. Fitted without validation rows (the refit on every labeled
example), the head is fitted on L2-normalised embeddings (``selection.embedding_head``).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from ..data.dataset import LabeledData
from .base import STRATEGIES, FitContext, FitOutcome, Strategy, StrategyParams
from .neural import EncoderClassifier, NeuralPredictor, count_params, freeze_all_but_top
from .selection import embedding_head


class ProbeParams(StrategyParams):
    C: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])


@STRATEGIES.register("linear_probe")
class LinearProbe(Strategy):
    name = "linear_probe"
    Params = ProbeParams
    fits_without_val = True
    deterministic = True  # frozen embeddings in eval mode, then an lbfgs logistic regression

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        bb, max_len = ctx.backbone, ctx.train.max_length
        x_train = bb.embed(train.inputs, max_length=max_len)  # (n, hidden), cached
        x_val = bb.embed(val.inputs, max_length=max_len)
        head = embedding_head(x_train, train.labels, x_val, val.labels, train.n_classes, self.params.C, ctx.seed, ctx.train)
        w, b = head["w"], head["b"]
        info = {k: head[k] for k in ("C", "val_scores", "selection_metric", "constant_features_dropped")}
        info["normalized_features"] = head["normalize"]

        clf = EncoderClassifier(bb, bb.load_encoder(pretrained=True), train.n_classes, dropout=0.0, normalize=head["normalize"])
        freeze_all_but_top(clf, 0)
        with torch.no_grad():
            clf.head.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            clf.head.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        clf.eval()
        trainable = int(w.size + b.size)

        @torch.no_grad()
        def logits_for(inputs) -> np.ndarray:  # the head on the cached embeddings: no second forward per seed
            return clf.head_of(torch.as_tensor(bb.embed(inputs, max_length=max_len))).numpy()

        return FitOutcome(NeuralPredictor(clf, train.label_names, max_len, dropout=0.0),
                          trainable_params=trainable, total_params=count_params(clf)[1], info=info,
                          logits_for=logits_for)
