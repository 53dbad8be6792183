"""``explain`` (one input) and ``report_examples`` (the report's confident-correct / confident-wrong cases).

:func:`explain` takes the input the model takes: a text for a text model (token or word attributions,
:mod:`.text`), an image array for an image model (patch attributions over a grid, :mod:`.image`). The
modality comes from the model (a packaged model's ``modality``, the backbone's, or the predictor kind).
``report_examples`` explains the test texts or images the report shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from ..core.errors import ConfigError, DataError
from ..core.prediction import prediction
from . import image as Img
from . import text as T

__all__ = ["IMAGE_MAX_EXAMPLES", "IMAGE_PNG_WIDTH", "METHODS", "explain", "report_examples"]

#: ig: integrated gradients (neural models; others fall back to occlusion with a note);
#: occlusion: one word (text) or one patch of the image (images) covered at a time, any model
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


def _modality(model: Any, predictor: Any) -> str:
    """"image" or "text": what the model takes (a packaged model may record it; else the predictor tells)."""
    recorded = getattr(model, "modality", None)
    if recorded in ("text", "image"):
        return str(recorded)
    return "image" if Img.is_image_predictor(predictor) else "text"


def _checked_input(x: Any, modality: str, predictor: Any) -> Any:
    """``x`` as the model takes it: the text itself, or a uint8 image array."""
    kind = getattr(predictor, "kind", type(predictor).__name__)
    if modality == "text":
        if not isinstance(x, str):
            raise DataError(f"The 'text' parameter of explain must be a string: this is a text model ({kind}). "
                            f"Got {type(x).__name__} instead.")
        return x
    if isinstance(x, str | bytes):
        raise DataError(
            f"The 'text' parameter of explain got a {type(x).__name__}, but this is an image model ({kind}): it takes an "
            "image, a numpy array of shape (height, width) or (height, width, 3). To explain an image file, decode "
            "it first (graftlab.data.images.decode_images([path])[0]) or run `graft explain MODEL --image PATH`.")
    try:
        return Img.as_image(x)
    except (TypeError, ValueError) as e:
        raise DataError(f"The 'text' parameter of explain must be an image for this image model ({kind}): a numpy array "
                        f"of shape (height, width) or (height, width, 3); {e}.") from None


def _explainer(predictor: Any, method: str, modality: str, n_steps: int, grid: int
               ) -> tuple[Callable[[Any, Any, int | None], dict[str, Any]], str, str | None]:
    """(function of (predictor, input, target), method actually used, note) for this predictor and method."""
    kind = getattr(predictor, "kind", type(predictor).__name__)
    if modality == "image":
        if method == "ig" and Img.supports_gradients(predictor):
            return partial(Img.integrated_gradients, grid=grid, n_steps=n_steps), "ig", None
        note = None
        if method == "ig":
            note = (f"Integrated gradients needs a neural image model; {kind} is explained by occlusion (each "
                    "patch covered in turn with the image's mean colour; attribution = drop in the target's log-odds).")
        return partial(Img.occlude_patches, grid=grid), "occlusion", note
    if T.is_token_model(predictor):
        if method == "ig":
            return partial(T.integrated_gradients, n_steps=n_steps), "ig", None
        return T.occlude_tokens, "occlusion", None
    note = (f"{kind} is not a neural text model: explained by "
            "occlusion (each word removed in turn; attribution = drop in the target's log-odds).")
    if method == "ig":
        note = "Integrated gradients needs a neural text model; " + note[0].lower() + note[1:]
    return T.occlude_words, "occlusion", note


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()


def explain(model: Any, text: Any, method: str = "ig", target: int | str | None = None, n_steps: int = 32,
            grid: int = 8) -> dict[str, Any]:
    """Attributions for one input: which words (text) or image patches pushed the model towards ``target``.

    Args:
        model: a :class:`~graftlab.packaging.PackagedModel` or a fitted Predictor.
        text: the input, as the model takes it: a string for a text model; for an image model an image,
            a numpy array (height, width) or (height, width, 3) (uint8, or floats in [0, 1]). (The name
            stays ``text`` for the callers that pass it by keyword.)
        method: ``"ig"`` or ``"occlusion"``. Text: layer integrated gradients over the word embeddings
            from an all-[PAD] baseline (neural text models), or occlusion of one word at a time. Images:
            integrated gradients over the pixels from the channel-mean image (neural image models), or
            occlusion of one patch at a time with the image's channel mean. A model without gradients
            (tf-idf, prior, pixel_logreg) is always explained by occlusion; ``note`` says so.
        target: class index or label name to explain; default the predicted class.
        n_steps: integration steps for ``"ig"`` (more steps: smaller ``completeness_error``).
        grid: image models: the image is cut into ``grid`` x ``grid`` patches over its own height and
            width (fewer along a side shorter than ``grid`` pixels). Ignored for text.

    Returns:
        dict with the prediction as every surface gives it (:mod:`graftlab.core.prediction`): ``label``
        (predicted label), ``confidence`` (its probability, calibrated when ``model`` is a packaged model) and
        ``probabilities`` (every label's); then ``target``, ``target_label``, ``method``, ``note``
        (None, or why the method differs from the one asked), ``log_odds`` (of the input, for the
        target; attributions are in these units: log(p/(1-p)) before temperature scaling, positive =
        evidence for the target), ``baseline``, ``completeness_error`` (IG: |sum of attributions -
        log-odds difference from the baseline|, else None) and ``seconds``.

        Text also: ``text``, ``tokens`` and ``attributions`` (same length),
        ``words``/``word_attributions``/``word_spans`` (whole words with character spans in ``text``).

        Images also (plain lists, JSON-ready; the image itself is not returned): ``grid`` (rows x cols
        attributions, row 0 at the top), ``grid_shape`` [rows, cols], ``row_edges``/``col_edges``
        (pixel edges, 0 to height/width), ``patch_bounds`` ([top, left, bottom, right] per cell, bottom
        and right excluded), ``image_shape`` [height, width] and ``fill`` (the covering colour).

        IG also: ``baseline_log_odds``, ``log_odds_difference`` and ``n_steps``.

    Raises:
        ConfigError: unknown method, bad target, n_steps or grid, or a model that cannot be explained.
        DataError: the input is not what the model takes (a non-string for a text model; a string or
            a non-image for an image model).
    """
    if method not in METHODS:
        raise ConfigError(f"The 'method' parameter of explain must be one of {list(METHODS)}. Got {method!r} instead.")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 2 <= n_steps <= 2000:
        raise ConfigError(f"The 'n_steps' parameter of explain must be an int in [2, 2000]. Got {n_steps!r} instead.")
    if isinstance(grid, bool) or not isinstance(grid, int) or not 2 <= grid <= 32:
        raise ConfigError(f"The 'grid' parameter of explain must be an int in [2, 32]. Got {grid!r} instead.")
    predictor, label_names, temperature = _unwrap(model)
    modality = _modality(model, predictor)
    x = _checked_input(text, modality, predictor)
    index = _target_index(target, label_names)
    fn, used, note = _explainer(predictor, method, modality, n_steps, grid)
    t0 = time.perf_counter()
    out = fn(predictor, x, index)
    seconds = time.perf_counter() - t0
    proba = _softmax(np.asarray(out["logits"], dtype=np.float64) / temperature)
    return {
        **({"text": x} if modality == "text" else {}),
        **prediction(dict(zip(label_names, proba.tolist(), strict=True))),
        "target": out["target"],
        "target_label": label_names[out["target"]],
        "method": used,
        "note": note,
        **{k: v for k, v in out.items() if k not in ("target", "logits")},
        "seconds": round(seconds, 4),
    }


#: the report explains at most this many test images (each costs grid x grid forward passes or n_steps
#: gradient steps): 10 classes x (correct, wrong); 0.35-0.5 s each on EfficientNet-Lite0@112, 2 cores
IMAGE_MAX_EXAMPLES = 20
#: width of an image example's heatmap PNG in the report, in pixels
IMAGE_PNG_WIDTH = 180


def report_examples(
    predictor: Any,
    inputs: Sequence[Any],
    y_true: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    label_names: Sequence[str],
    per_class: int = 1,
    method: str = "ig",
    n_steps: int = 32,
    grid: int = 8,
    max_examples: int | None = None,
) -> list[dict[str, Any]]:
    """For each true class, the most confident correct and the most confident wrong test examples, explained.

    Attributions are toward the *predicted* class (what the model said and why). Texts or images, as the
    model takes (an image model's examples also carry a small PNG of the image with its heatmap).

    Args:
        predictor: the shipped model (Predictor or PackagedModel).
        inputs, y_true: the test inputs (texts, or uint8 image arrays) and their true class indices.
        proba: (n, k) test probabilities the study already computed (calibrated); they choose the
            examples and give ``prob``.
        label_names: names of the k classes.
        per_class: how many of each kind per class.
        method, n_steps, grid: as for :func:`explain` (``grid``: images only).
        max_examples: explain at most this many: the most confident errors and the most confident correct
            examples across classes, half each (a kind with fewer leaves its places to the other). Default:
            every example for texts, :data:`IMAGE_MAX_EXAMPLES` for images.

    Returns:
        A list of :func:`explain` dicts, each with ``kind`` ("confident_correct" | "confident_wrong"),
        ``label`` and ``true_label`` (the true label, as the report shows it), ``predicted`` (the
        predicted label), ``prob`` and ``probs`` (in place of ``confidence`` and ``probabilities``: the
        predicted label's and every label's probability from ``proba``, under the keys results.json and the
        report have always used) and ``index`` (position in ``inputs``); texts also ``text``; images also ``image_png`` (base64 PNG of the image
        with the attributions over it, :data:`IMAGE_PNG_WIDTH` pixels wide) and ``top_patches``
        (``{"for": [...], "against": [...]}``, the 3 strongest each way, as :func:`.image.top_patches`).
        Classes without an error get no confident_wrong entry.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    if proba.ndim != 2 or len(proba) != len(inputs) or len(y_true) != len(inputs):
        raise DataError(f"report_examples needs one row of proba and one label per input: got {len(inputs)} inputs, "
                        f"proba of shape {proba.shape} and {len(y_true)} labels.")
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"The 'per_class' parameter of report_examples must be an int >= 1. Got {per_class!r} instead.")
    if max_examples is not None and (isinstance(max_examples, bool) or not isinstance(max_examples, int)
                                     or max_examples < 1):
        raise ConfigError("The 'max_examples' parameter of report_examples must be None or an int >= 1. "
                          f"Got {max_examples!r} instead.")
    unwrapped, _, _ = _unwrap(predictor)
    images = _modality(predictor, unwrapped) == "image"
    if not images and len(inputs) and isinstance(inputs[0], np.ndarray):
        kind = getattr(unwrapped, "kind", type(unwrapped).__name__)
        raise DataError(f"report_examples got images, but the model ({kind}) is not an image model (an image backbone "
                        "or pixel_logreg): it has no patch attributions to show. Pass an image model, or texts.")
    if max_examples is None and images:
        max_examples = IMAGE_MAX_EXAMPLES
    names = list(label_names)
    y_pred, conf = proba.argmax(1), proba.max(1)
    picks = _capped(_picks(y_true, y_pred, conf, len(names), per_class), conf, max_examples)
    out = []
    for kind, i in picks:
        x = inputs[i] if images else str(inputs[i])
        e = explain(predictor, x, method=method, target=int(y_pred[i]), n_steps=n_steps, grid=grid)
        e = {k: v for k, v in e.items() if k not in ("confidence", "probabilities")}  # results.json keeps prob/probs
        true = names[int(y_true[i])]
        predicted = names[int(y_pred[i])]
        e = {**e, "kind": kind, "label": true, "true_label": true, "predicted": predicted,
             "target_label": predicted, "probs": {n: float(p) for n, p in zip(names, proba[i], strict=True)},
             "prob": float(conf[i]), "index": i}  # probabilities from ``proba`` (calibrated), like ``prob``
        out.append(_with_picture(e, x) if images else e)
    return out


def _picks(y_true: np.ndarray, y_pred: np.ndarray, conf: np.ndarray, k: int, per_class: int) -> list[tuple[str, int]]:
    """(kind, index) per true class: its ``per_class`` most confident correct, then most confident wrong."""
    order = np.argsort(-conf, kind="stable")  # most confident first
    picks: list[tuple[str, int]] = []
    for c in range(k):
        of_class = order[y_true[order] == c]
        correct = of_class[y_pred[of_class] == c][:per_class]
        wrong = of_class[y_pred[of_class] != c][:per_class]
        picks += [("confident_correct", int(i)) for i in correct] + [("confident_wrong", int(i)) for i in wrong]
    return picks


def _capped(picks: list[tuple[str, int]], conf: np.ndarray, cap: int | None) -> list[tuple[str, int]]:
    """At most ``cap`` picks, half errors and half correct (most confident first), kept in per-class order."""
    if cap is None or len(picks) <= cap:
        return picks
    by_conf = sorted(picks, key=lambda p: -conf[p[1]])  # stable: ties keep class order
    wrong = [p for p in by_conf if p[0] == "confident_wrong"]
    right = [p for p in by_conf if p[0] == "confident_correct"]
    n_wrong = min(len(wrong), max((cap + 1) // 2, cap - len(right)))  # errors get the odd place
    keep = set(wrong[:n_wrong] + right[: cap - n_wrong])
    return [p for p in picks if p in keep]


def _with_picture(e: dict[str, Any], image: Any) -> dict[str, Any]:
    """An image example with its heatmap PNG (base64) and strongest patches: what the report's card shows."""
    import base64

    pos, neg = Img.top_patches(e, n=3)
    png = Img.heatmap_png(e, image, width_px=IMAGE_PNG_WIDTH)
    return {**e, "top_patches": {"for": pos, "against": neg}, "image_png": base64.b64encode(png).decode("ascii")}
