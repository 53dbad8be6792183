"""Robustness: the winner on perturbed copies of the test inputs, and the metric drop for each.

Text perturbations are seeded and simple on purpose: they mimic what production text does to a model
(typos, SHOUTING or lowercase, truncation, messy whitespace).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..evaluation import HEADLINE_METRICS, softmax

__all__ = ["TEXT_PERTURBATIONS", "robustness_report"]


def _typos(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Swap two neighbouring letters in about ``rate`` of the words longer than 3 characters."""
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) > 3 and rng.random() < rate:
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _upper(text: str, rng: random.Random) -> str:
    return text.upper()


def _lower(text: str, rng: random.Random) -> str:
    return text.lower()


def _half(text: str, rng: random.Random) -> str:
    words = text.split()
    return " ".join(words[: max(1, len(words) // 2)])


def _whitespace(text: str, rng: random.Random) -> str:
    return "  ".join(text.split()) + " \n\t "


TEXT_PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "typos (10% of words)": _typos,
    "UPPERCASE": _upper,
    "lowercase": _lower,
    "first half only": _half,
    "extra whitespace": _whitespace,
}


def robustness_report(predictor: Any, inputs: Sequence, labels: np.ndarray, metric: str, temperature: float,
                      clean_logits: np.ndarray, seed: int = 0, batch_size: int = 64) -> list[dict[str, Any]]:
    """Metric on clean and perturbed test inputs (text only); ``drop`` > 0 means worse."""
    if not inputs or not isinstance(inputs[0], str):
        return []
    fn = HEADLINE_METRICS[metric]
    clean = float(fn.fn(labels, softmax(clean_logits, temperature)))
    out = []
    for name, perturb in TEXT_PERTURBATIONS.items():
        rng = random.Random(seed)
        changed = [perturb(t, rng) for t in inputs]
        proba = softmax(predictor.predict_logits(changed, batch_size), temperature)
        value = float(fn.fn(labels, proba))
        drop = clean - value if fn.higher_is_better else value - clean
        out.append({"perturbation": name, "metric": metric, "clean": clean, "perturbed": value, "drop": drop,
                    "changed_share": float(np.mean([a != b for a, b in zip(inputs, changed, strict=True)]))})
    return out
