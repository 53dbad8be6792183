"""``linear_probe``: frozen backbone, pooled embeddings, a logistic-regression head.

The embeddings come from the backbone's cache (computed once per data and reused by every seed and
strategy). Features are standardised and C is chosen on validation; the scaler and the logistic
regression are folded into the linear head of an :class:`EncoderClassifier`, so the probe saves,
loads and serves exactly like a fine-tuned model.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from pydantic import Field
from sklearn.preprocessing import StandardScaler

from ..data.dataset import LabeledData
from .base import STRATEGIES, FitContext, FitOutcome, Strategy, StrategyParams
from .neural import EncoderClassifier, NeuralPredictor, count_params, freeze_all_but_top
from .selection import select_logreg
from .tfidf_logreg import as_multiclass


class ProbeParams(StrategyParams):
    C: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])


@STRATEGIES.register("linear_probe")
class LinearProbe(Strategy):
    name = "linear_probe"
    Params = ProbeParams
    deterministic = True  # frozen embeddings in eval mode, then an lbfgs logistic regression

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        bb, max_len = ctx.backbone, ctx.train.max_length
        x_train = bb.embed(train.inputs, max_length=max_len)  # (n, hidden), cached
        x_val = bb.embed(val.inputs, max_length=max_len)
        scaler = StandardScaler().fit(x_train)
        # Features that are (numerically) constant on train carry no signal; standardising them would
        # divide rounding noise by ~0 and, folded into the head, give weights of 1e30. Leave them out.
        keep = scaler.scale_ > 1e-6
        model, info = select_logreg(scaler.transform(x_train)[:, keep], train.labels, scaler.transform(x_val)[:, keep],
                                    val.labels, self.params.C, ctx.seed, ctx.train)
        coef_kept, intercept = as_multiclass(model, train.n_classes)
        coef = np.zeros((coef_kept.shape[0], x_train.shape[1]))
        coef[:, keep] = coef_kept
        # fold the scaler: w·(x-μ)/σ + b = (w/σ)·x + (b - Σ w μ/σ)
        scale = np.where(keep, scaler.scale_, 1.0)
        w = coef / scale
        b = intercept - (coef * scaler.mean_ / scale).sum(1)
        info["constant_features_dropped"] = int((~keep).sum())

        clf = EncoderClassifier(bb, bb.load_encoder(pretrained=True), train.n_classes, dropout=0.0)
        freeze_all_but_top(clf, 0)
        with torch.no_grad():
            clf.head.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            clf.head.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        clf.eval()
        trainable = int(w.size + b.size)

        @torch.no_grad()
        def logits_for(inputs) -> np.ndarray:  # the head on the cached embeddings: no second forward per seed
            return clf.head(torch.as_tensor(bb.embed(inputs, max_length=max_len))).numpy()

        return FitOutcome(NeuralPredictor(clf, train.label_names, max_len, dropout=0.0),
                          trainable_params=trainable, total_params=count_params(clf)[1], info=info,
                          logits_for=logits_for)
