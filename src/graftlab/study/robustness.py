"""Robustness: the winner on perturbed copies of the test inputs, and the metric drop for each.

Text perturbations are seeded and simple on purpose: they mimic what production text does to a model
(typos, SHOUTING or lowercase, truncation, messy whitespace). Image perturbations do the same for
cameras and scanners: sensor noise, blur, and under- or over-exposure (uint8 arrays in, uint8 out).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..evaluation import HEADLINE_METRICS, softmax

if TYPE_CHECKING:
    from ..core.progress import Progress
    from ..strategies.base import Predictor

__all__ = ["TEXT_PERTURBATIONS", "IMAGE_PERTURBATIONS", "robustness_report"]


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


def _noise(img: np.ndarray, rng: random.Random, sigma: float = 20.0) -> np.ndarray:
    """Gaussian pixel noise (sigma in 0..255 units), seeded per image."""
    g = np.random.default_rng(rng.randrange(2**32))
    return np.clip(img.astype(np.float32) + g.normal(0.0, sigma, img.shape), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """A 3x3 box blur (edges repeated), over both spatial axes."""
    x = np.pad(img.astype(np.float32), [(1, 1), (1, 1)] + [(0, 0)] * (img.ndim - 2), mode="edge")
    h, w = img.shape[:2]
    out = sum(x[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _scale(factor: float) -> Callable[[np.ndarray, random.Random], np.ndarray]:
    def brightness(img: np.ndarray, rng: random.Random) -> np.ndarray:
        return np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8)

    return brightness


IMAGE_PERTURBATIONS: dict[str, Callable[[np.ndarray, random.Random], np.ndarray]] = {
    "gaussian noise (sigma 20/255)": _noise,
    "blur (3x3 box)": _blur,
    "darker (x0.6)": _scale(0.6),
    "brighter (x1.4)": _scale(1.4),
}


def robustness_report(predictor: Predictor, inputs: Sequence, labels: np.ndarray, metric: str, temperature: float,
                      clean_logits: np.ndarray, seed: int = 0, batch_size: int = 64,
                      progress: Progress | None = None) -> list[dict[str, Any]]:
    """Metric on clean and perturbed test inputs (text or images); ``drop`` > 0 means worse. ``progress`` is told
    each perturbation as a step."""
    if not inputs:
        return []
    if isinstance(inputs[0], str):
        perturbations: dict[str, Callable[[Any, random.Random], Any]] = dict(TEXT_PERTURBATIONS)
    elif isinstance(inputs[0], np.ndarray):
        perturbations = dict(IMAGE_PERTURBATIONS)
    else:
        return []
    fn = HEADLINE_METRICS[metric]
    clean = float(fn.fn(labels, softmax(clean_logits, temperature)))
    clean_view = predictor.model_view(inputs)
    out = []
    for name, perturb in perturbations.items():
        if progress is not None:
            progress.step(f"robustness: {name}")
        rng = random.Random(seed)
        changed = [perturb(t, rng) for t in inputs]
        differs = np.array([_differs(a, b) for a, b in zip(inputs, changed, strict=True)], dtype=bool)
        logits, seen = _perturbed_logits(predictor, changed, differs, clean_view, clean_logits, batch_size)
        value = float(fn.fn(labels, softmax(logits, temperature)))
        drop = clean - value if fn.higher_is_better else value - clean
        out.append({"perturbation": name, "metric": metric, "clean": clean, "perturbed": value, "drop": drop,
                    "changed_share": float(differs.mean()),
                    "model_input_changed_share": None if seen is None else float(seen.mean())})
    return out


def _perturbed_logits(predictor: Predictor, changed: list, differs: np.ndarray, clean_view: list | None,
                      clean_logits: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits on the perturbed inputs, and which of them the model sees differently from the clean ones (None when
    the predictor cannot say: a TF-IDF vectoriser lowercases too, but it does not tell).

    Where the model's view of an input is unchanged (an uncased tokenizer and UPPERCASE, whitespace, a typo past
    the max length) its clean logits are reused instead of running the model again on the same tokens.
    """
    view = predictor.model_view(changed) if clean_view is not None else None
    if view is None:
        return predictor.predict_logits(changed, batch_size), None
    seen = np.array([a != b for a, b in zip(clean_view, view, strict=True)], dtype=bool)
    logits = np.array(clean_logits, dtype=np.float32, copy=True)
    rows = np.flatnonzero(seen)
    if len(rows):
        logits[rows] = predictor.predict_logits([changed[i] for i in rows], batch_size)
    return logits, seen


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return a.shape != b.shape or bool(np.any(a != b))
    return a != b
