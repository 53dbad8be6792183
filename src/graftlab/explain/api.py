"""``explain`` (one input) and ``report_examples`` (the report's confident-correct / confident-wrong cases).

Text models only for now. Image saliency (integrated gradients or Grad-CAM on the last convolutional
block) belongs in an ``image`` module next to :mod:`.text`, chosen in :func:`_explainer` by the
backbone's ``modality``; until it exists, explaining a non-text model raises a clear error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.errors import ConfigError, DataError
from . import text as T

__all__ = ["METHODS", "explain", "report_examples"]

#: ig: layer integrated gradients (token models only); occlusion: one word at a time (any text model)
METHODS = ("ig", "occlusion")


def _unwrap(model: Any) -> tuple[Any, list[str], float]:
    """(predictor, label names, temperature) of a PackagedModel or a bare Predictor."""
    predictor = getattr(model, "predictor", None)
    if predictor is not None:  # graftlab.packaging.PackagedModel
        return predictor, list(model.label_names), float(getattr(model, "temperature", 1.0))
    if not hasattr(model, "predict_logits"):
        raise ConfigError(
            "The 'model' parameter of explain must be a packaged model (graftlab.packaging.load_model) or a "
            f"fitted predictor with predict_logits. Got {type(model).__name__} instead."
        )
    return model, list(model.label_names), 1.0


def _target_index(target: int | str | None, label_names: Sequence[str]) -> int | None:
    if target is None:
        return None
    if isinstance(target, str) and target in label_names:  # a label name wins over an index ("1" of 1..5 stars)
        return list(label_names).index(target)
    if isinstance(target, str) and not target.lstrip("-").isdigit():
        if target not in label_names:
            raise ConfigError(f"The 'target' parameter of explain must be one of the labels {list(label_names)} "
                              f"or a class index. Got {target!r} instead.")
        return list(label_names).index(target)
    index = int(target)
    if not 0 <= index < len(label_names):
        raise ConfigError(f"The 'target' parameter of explain must be a class index in [0, {len(label_names) - 1}] "
                          f"or a label name. Got {target!r} instead.")
    return index


def _explainer(predictor: Any, method: str) -> tuple[Any, str, str | None]:
    """(function, method actually used, note) for this predictor and the requested method."""
    modality = getattr(getattr(predictor, "backbone", None), "modality", "text")
    if modality != "text":
        raise ConfigError(f"Explanations for {modality} models are not available yet; only text models can be "
                          "explained (graft explain, POST /v1/explain).")
    if T.is_token_model(predictor):
        return (T.integrated_gradients if method == "ig" else T.occlude_tokens), method, None
    note = (f"{getattr(predictor, 'kind', type(predictor).__name__)} is not a neural text model: explained by "
            "occlusion (each word removed in turn; attribution = drop in the target's log-odds).")
    if method == "ig":
        note = "Integrated gradients needs a neural text model; " + note[0].lower() + note[1:]
    return T.occlude_words, "occlusion", note


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()


def explain(model: Any, text: str, method: str = "ig", target: int | str | None = None, n_steps: int = 32) -> dict[str, Any]:
    """Token attributions for one text: which words pushed the model towards ``target``.

    Args:
        model: a :class:`~graftlab.packaging.PackagedModel` or a fitted Predictor.
        text: the input text.
        method: ``"ig"`` (layer integrated gradients over the word embeddings, from an all-[PAD]
            baseline; neural text models) or ``"occlusion"`` (one word at a time; any text model).
            A model without gradients (tf-idf, prior) is always explained by occlusion; ``note`` says so.
        target: class index or label name to explain; default the predicted class.
        n_steps: integration steps for ``"ig"`` (more steps: smaller ``completeness_error``).

    Returns:
        dict with ``label`` (predicted label), ``prob`` (its probability, calibrated when ``model`` is a
        packaged model), ``target``, ``target_label``, ``method``, ``tokens`` and ``attributions``
        (same length; positive = evidence for the target; units: the target's log-odds
        log(p/(1-p)) before temperature scaling), ``log_odds`` (of the input),
        ``words``/``word_attributions``/``word_spans`` (whole words with character spans in ``text``),
        ``baseline``, ``completeness_error`` (IG: |sum of attributions - log-odds difference from
        the baseline|, else None),
        ``seconds``, ``note`` (None, or why the method differs from the one asked) and ``text``.

    Raises:
        ConfigError: unknown method, bad target or n_steps, or a model that cannot be explained.
        DataError: ``text`` is not a string.
    """
    if method not in METHODS:
        raise ConfigError(f"The 'method' parameter of explain must be one of {list(METHODS)}. Got {method!r} instead.")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 2 <= n_steps <= 2000:
        raise ConfigError(f"The 'n_steps' parameter of explain must be an int in [2, 2000]. Got {n_steps!r} instead.")
    if not isinstance(text, str):
        raise DataError(f"The 'text' parameter of explain must be a string. Got {type(text).__name__} instead.")
    predictor, label_names, temperature = _unwrap(model)
    index = _target_index(target, label_names)
    fn, used, note = _explainer(predictor, method)
    t0 = time.perf_counter()
    out = fn(predictor, text, index, n_steps) if used == "ig" else fn(predictor, text, index)
    seconds = time.perf_counter() - t0
    proba = _softmax(np.asarray(out["logits"], dtype=np.float64) / temperature)
    predicted = int(proba.argmax())
    return {
        "text": text,
        "label": label_names[predicted],
        "prob": float(proba[predicted]),
        "probs": {name: float(p) for name, p in zip(label_names, proba, strict=True)},
        "target": out["target"],
        "target_label": label_names[out["target"]],
        "method": used,
        "note": note,
        **{k: v for k, v in out.items() if k not in ("target", "logits")},
        "seconds": round(seconds, 4),
    }


def report_examples(
    predictor: Any,
    inputs: Sequence[str],
    y_true: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    label_names: Sequence[str],
    per_class: int = 1,
    method: str = "ig",
    n_steps: int = 32,
) -> list[dict[str, Any]]:
    """For each true class, the most confident correct and the most confident wrong test examples, explained.

    Attributions are toward the *predicted* class (what the model said and why).

    Args:
        predictor: the shipped model (Predictor or PackagedModel).
        inputs, y_true: the test texts and their true class indices.
        proba: (n, k) test probabilities the study already computed (calibrated); they choose the
            examples and give ``prob``.
        label_names: names of the k classes.
        per_class: how many of each kind per class.

    Returns:
        A list of :func:`explain` dicts, each with ``kind`` ("confident_correct" | "confident_wrong"),
        ``label`` and ``true_label`` (the true label, as the report shows it), ``predicted`` (the
        predicted label), ``prob`` (probability of the predicted label, from ``proba``), ``text`` and
        ``index`` (position in ``inputs``). Classes without an error get no confident_wrong entry.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    if proba.ndim != 2 or len(proba) != len(inputs) or len(y_true) != len(inputs):
        raise DataError(f"report_examples needs one row of proba and one label per input: got {len(inputs)} inputs, "
                        f"proba of shape {proba.shape} and {len(y_true)} labels.")
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"The 'per_class' parameter of report_examples must be an int >= 1. Got {per_class!r} instead.")
    names = list(label_names)
    y_pred, conf = proba.argmax(1), proba.max(1)
    order = np.argsort(-conf, kind="stable")  # most confident first
    picks: list[tuple[str, int]] = []
    for c in range(len(names)):
        of_class = order[y_true[order] == c]
        correct = of_class[y_pred[of_class] == c][:per_class]
        wrong = of_class[y_pred[of_class] != c][:per_class]
        picks += [("confident_correct", int(i)) for i in correct] + [("confident_wrong", int(i)) for i in wrong]
    out = []
    for kind, i in picks:
        e = explain(predictor, str(inputs[i]), method=method, target=int(y_pred[i]), n_steps=n_steps)
        true = names[int(y_true[i])]
        predicted = names[int(y_pred[i])]
        out.append({**e, "kind": kind, "label": true, "true_label": true, "predicted": predicted,
                    "target_label": predicted, "probs": dict(zip(names, e["probs"].values(), strict=True)),
                    "prob": float(conf[i]), "index": i})
    return out
