"""Text robustness: an input the model sees unchanged (same tokens) keeps its clean logits instead of a second
forward pass, and the figures equal those of predicting every perturbed input."""

from __future__ import annotations

import random

import numpy as np
import torch

from graftlab.backbones import get_backbone
from graftlab.evaluation import HEADLINE_METRICS, softmax
from graftlab.strategies.neural import EncoderClassifier, NeuralPredictor
from graftlab.study.robustness import TEXT_PERTURBATIONS, robustness_report


class _Counting(NeuralPredictor):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rows_predicted = 0

    def predict_logits(self, inputs, batch_size=64):
        self.rows_predicted += len(inputs)
        return super().predict_logits(inputs, batch_size)


def _predictor(tiny_bert: str, max_length: int = 12) -> _Counting:
    bb = get_backbone(tiny_bert)
    torch.manual_seed(0)
    model = EncoderClassifier(bb, bb.load_encoder(pretrained=False), 2, dropout=0.0)
    return _Counting(model, ["bad", "good"], max_length, dropout=0.0)


def test_unchanged_tokens_reuse_the_clean_logits_and_give_the_same_figures(tiny_bert):
    texts = ["great coffee and fresh snack", "awful stale tea", "the dog love this food",
             "never again " + "bad " * 20 + "waste of money",  # a typo past 12 tokens changes nothing the model sees
             "i recommend it", "poor box broken"] * 3
    labels = np.array([1, 0, 1, 0, 1, 0] * 3)
    pred = _predictor(tiny_bert)
    clean = pred.predict_logits(texts)
    pred.rows_predicted = 0
    rows = {r["perturbation"]: r for r in robustness_report(pred, texts, labels, "macro_f1", 1.3, clean, seed=0)}
    assert set(rows) == set(TEXT_PERTURBATIONS)

    # the tiny tokenizer lowercases and splits on whitespace: the model never sees these two perturbations
    for name in ("UPPERCASE", "extra whitespace"):
        assert rows[name]["changed_share"] == 1.0 and rows[name]["model_input_changed_share"] == 0.0, name
        assert rows[name]["drop"] == 0.0, name
    assert rows["first half only"]["model_input_changed_share"] > 0.5
    n_seen = sum(round(r["model_input_changed_share"] * len(texts)) for r in rows.values())
    assert pred.rows_predicted == n_seen < len(texts) * len(TEXT_PERTURBATIONS)

    # the same figures as predicting every perturbed input afresh
    fn = HEADLINE_METRICS["macro_f1"]
    for name, perturb in TEXT_PERTURBATIONS.items():
        rng = random.Random(0)
        changed = [perturb(t, rng) for t in texts]
        direct = float(fn.fn(labels, softmax(pred.predict_logits(changed), 1.3)))
        assert abs(rows[name]["perturbed"] - direct) < 1e-9, name
