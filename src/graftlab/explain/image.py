"""Patch attributions for image classifiers: which regions of one image pushed the model towards a class.

The image is cut into a grid of patches (``grid`` x ``grid`` over its own height and width; when a side
does not divide evenly the patches differ by one pixel, and a side shorter than ``grid`` pixels gets one
patch per pixel). Two methods:

* occlusion (any image predictor: neural, ``pixel_logreg``): each patch in turn is covered with the
  image's per-channel mean colour, every covered copy is scored through ``predict_logits``, and a
  patch's attribution is the target's log-odds on the image minus its log-odds with the patch covered;
* integrated gradients (neural image predictors): the gradient of the target's log-odds with respect to
  the original pixels, integrated along the straight line from a baseline image (every pixel the
  channel mean, as if every patch were covered) to the image, then summed within each patch. The patch
  attributions add up to log-odds(image) - log-odds(baseline) up to ``completeness_error``.

Units are those of the text explanations: the log-odds of the target, log(p_t / (1 - p_t)), before
temperature scaling; positive = evidence for the target. The model's own preprocessing runs on every
input (the predictor resizes), so the patches are in the original image's pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .text import _log_odds_torch, log_odds

__all__ = [
    "as_image",
    "grid_edges",
    "heatmap_png",
    "integrated_gradients",
    "is_image_predictor",
    "occlude_patches",
    "save_heatmap",
    "supports_gradients",
    "top_patches",
]

# Memory for the covered copies (or IG's interpolated images) scored at once, as float32 pixels: a
# 12 x 12 image goes 64 at a time, a 12-megapixel photo one at a time.
_BATCH_BYTES = 256 * 2**20
#: predictor kinds that take images without an image backbone
def is_image_predictor(predictor: Any) -> bool:
    """True for a predictor that takes images (its ``modality``: an image backbone's, or ``pixel_logreg``)."""
    return getattr(predictor, "modality", None) == "image"


def supports_gradients(predictor: Any) -> bool:
    """True for a neural image predictor (torch model over an image backbone): integrated gradients applies."""
    model, backbone = getattr(predictor, "model", None), getattr(predictor, "backbone", None)
    return (
        getattr(backbone, "modality", None) == "image"
        and callable(getattr(model, "parameters", None))
        and all(hasattr(backbone, a) for a in ("encode", "image_size"))
    )


def as_image(x: Any) -> np.ndarray:
    """A uint8 (h, w) or (h, w, 3) array, as the predictors take it.

    Raises:
        ValueError: ``x`` is not an image array.
    """
    from ..data.images import as_image_array  # imported here: graftlab.data pulls in pandas and sklearn

    return as_image_array(x)


def grid_edges(size: int, parts: int) -> list[int]:
    """Pixel edges of ``min(parts, size)`` near-equal patches covering ``[0, size)``: first 0, last ``size``."""
    n = max(1, min(int(parts), int(size)))
    return [i * size // n for i in range(n + 1)]


def _fill(image: np.ndarray) -> np.ndarray:
    """The neutral colour: the image's per-channel mean, rounded to uint8 ((), or (3,) for colour)."""
    flat = image.reshape(image.shape[0] * image.shape[1], -1).astype(np.float64)  # (h*w, channels)
    mean = np.round(flat.mean(0)).astype(np.uint8)
    return mean[0] if image.ndim == 2 else mean


def _chunk(image: np.ndarray, at_most: int) -> int:
    per_copy = image.shape[0] * image.shape[1] * 3 * 4  # float32 RGB: what the predictors make of a copy
    return int(max(1, min(at_most, _BATCH_BYTES // per_copy)))


def _layout(image: np.ndarray, grid: int) -> dict[str, Any]:
    h, w = image.shape[:2]
    rows, cols = grid_edges(h, grid), grid_edges(w, grid)
    bounds = [[[rows[r], cols[c], rows[r + 1], cols[c + 1]] for c in range(len(cols) - 1)] for r in range(len(rows) - 1)]
    return {"grid_shape": [len(rows) - 1, len(cols) - 1], "row_edges": rows, "col_edges": cols,
            "patch_bounds": bounds, "image_shape": [int(h), int(w)]}


def occlude_patches(predictor: Any, image: Any, target: int | None = None, grid: int = 8,
                    batch_size: int = 32) -> dict[str, Any]:
    """Occlusion: each patch covered in turn with the channel mean; attribution = drop in the target's log-odds.

    Works through ``predict_logits`` only (one call per batch of covered copies), so it explains any
    image predictor.

    Returns:
        dict with target, logits (of the image), log_odds, grid (rows x cols attributions), grid_shape,
        row_edges, col_edges, patch_bounds ([top, left, bottom, right] per cell, bottom/right excluded),
        image_shape, fill, baseline, completeness_error (None).
    """
    img = as_image(image)
    layout = _layout(img, grid)
    rows, cols = layout["row_edges"], layout["col_edges"]
    fill = _fill(img)
    logits = np.asarray(predictor.predict_logits([img], 1), dtype=np.float64)[0]  # (k,)
    target = int(logits.argmax()) if target is None else int(target)
    odds = float(log_odds(logits[None], target)[0])
    cells = [(r, c) for r in range(len(rows) - 1) for c in range(len(cols) - 1)]
    covered = np.empty(len(cells))
    step = _chunk(img, batch_size)
    for start in range(0, len(cells), step):
        copies = []
        for r, c in cells[start : start + step]:
            x = img.copy()
            x[rows[r] : rows[r + 1], cols[c] : cols[c + 1]] = fill
            copies.append(x)
        z = np.asarray(predictor.predict_logits(copies, len(copies)), dtype=np.float64)  # (b, k)
        covered[start : start + len(copies)] = log_odds(z, target)
    scores = (odds - covered).reshape(layout["grid_shape"])  # (rows, cols)
    return _result(target, logits, odds, scores, layout, fill, "patch covered with the image's channel mean",
                   completeness_error=None)


def _result(target: int, logits: np.ndarray, odds: float, scores: np.ndarray, layout: dict[str, Any], fill: Any,
            baseline: str, **extra: Any) -> dict[str, Any]:
    """The JSON-ready explanation of one image (``extra``: method-specific keys)."""
    return {"target": target, "logits": [float(v) for v in logits], "log_odds": odds, "grid": scores.tolist(),
            **layout, "fill": np.atleast_1d(fill).astype(int).tolist(), "baseline": baseline, **extra}


def _differentiable_logits(predictor: Any, image: np.ndarray):
    """f(pixels (b, h, w[, 3]) float in [0, 255]) -> (b, k) logits, with the predictor's own preprocessing
    (the backbone's :func:`~graftlab.backbones.image.pixels_to_input` and normalisation), so that gradients
    reach the original pixels (the resize included).
    """
    from ..backbones.image import pixels_to_input

    model = predictor.model
    data = predictor.backbone.encode([image])  # ImageSet: input size and normalisation of this backbone
    size = int(data.size)

    def f(pixels):
        return model(data.to_batch(pixels_to_input(pixels, size)))  # (b, k)

    return f


def integrated_gradients(predictor: Any, image: Any, target: int | None = None, grid: int = 8,
                         n_steps: int = 32) -> dict[str, Any]:
    """Integrated gradients over the original pixels from the channel-mean image, summed per patch.

    The patch attributions add up to F(image) - F(baseline), F the target's log-odds, up to the
    integral's approximation error (captum's convergence delta, returned as ``completeness_error``).

    Returns:
        the keys of :func:`occlude_patches`, with baseline "channel-mean image" and also
        baseline_log_odds, log_odds_difference and n_steps.
    """
    import torch
    from captum.attr import IntegratedGradients

    img = as_image(image)
    layout = _layout(img, grid)
    rows, cols = layout["row_edges"], layout["col_edges"]
    fill = _fill(img)
    model = predictor.model
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(img.astype(np.float32), device=device)[None]  # (1, h, w[, 3]); a copy: img may be read-only
    base = torch.as_tensor(np.broadcast_to(fill, img.shape).copy(), dtype=torch.float32, device=device)[None]
    to_logits = _differentiable_logits(predictor, img)
    with torch.no_grad():
        both = to_logits(torch.cat([x, base])).double()  # (2, k): the image and the baseline in one forward
    logits = both[0].cpu().numpy()  # (k,)
    target = int(logits.argmax()) if target is None else int(target)
    odds, base_odds = (float(v) for v in _log_odds_torch(both, target))

    def f(pixels):
        return _log_odds_torch(to_logits(pixels), target)  # (b,)

    with torch.enable_grad():  # the weights may be frozen: the gradient is with respect to the input
        attr, delta = IntegratedGradients(f).attribute(
            x, baselines=base, n_steps=n_steps, internal_batch_size=_chunk(img, min(n_steps, 32)),
            return_convergence_delta=True)
    pixel_attr = attr[0].detach().double().cpu().numpy()  # (h, w[, 3])
    if pixel_attr.ndim == 3:
        pixel_attr = pixel_attr.sum(-1)  # (h, w): channels of a pixel together
    scores = np.array([[pixel_attr[rows[r] : rows[r + 1], cols[c] : cols[c + 1]].sum() for c in range(len(cols) - 1)]
                       for r in range(len(rows) - 1)])  # (rows, cols)
    return _result(target, logits, odds, scores, layout, fill, "channel-mean image", baseline_log_odds=base_odds,
                   log_odds_difference=odds - base_odds, completeness_error=float(abs(delta.item())),
                   n_steps=int(n_steps))


def top_patches(e: dict[str, Any], n: int = 5) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``n`` patches with the largest positive and the largest negative attributions of an explanation.

    Each is ``{"row", "col", "score", "bounds"}``, bounds ``[top, left, bottom, right]`` in pixels.
    """
    cells = [{"row": r, "col": c, "score": float(s), "bounds": e["patch_bounds"][r][c]}
             for r, row in enumerate(e["grid"]) for c, s in enumerate(row)]
    pos = sorted((p for p in cells if p["score"] > 0), key=lambda p: -p["score"])[:n]
    neg = sorted((p for p in cells if p["score"] < 0), key=lambda p: p["score"])[:n]
    return pos, neg


def save_heatmap(e: dict[str, Any], image: Any, path: Any, width: float = 6.4, dpi: int = 100,
                 labels: bool = True) -> None:
    """Write ``image`` with the explanation's patch attributions over it (red: for the target; blue: against) as PNG.

    Args:
        path: a file path, or a binary file object (``io.BytesIO``).
        width: figure width in inches; the PNG is ``width * dpi`` pixels wide.
        labels: a title and a colour bar; without them the figure is just the image and its overlay (the
            report's small cards say the rest in text).
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    img = as_image(image)
    h, w = img.shape[:2]
    scores = np.asarray(e["grid"], dtype=np.float64)  # (rows, cols)
    scale = float(np.abs(scores).max()) or 1.0
    colours = ScalarMappable(Normalize(-scale, scale), colormaps["bwr"])
    overlay = colours.to_rgba(scores)  # (rows, cols, 4)
    overlay[..., 3] = 0.7 * np.abs(scores) / scale  # a patch that does not matter leaves the image as it is
    # no pyplot: no global backend state
    fig = Figure(figsize=(width, width * h / w + (0.6 if labels else 0.0)), layout="constrained" if labels else None)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot() if labels else fig.add_axes((0.0, 0.0, 1.0, 1.0))
    # extent: pixel i spans [i, i + 1), the coordinates of the patch edges (imshow centres it on i by default)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest",
              extent=(0, w, h, 0))
    ax.pcolormesh(e["col_edges"], e["row_edges"], overlay)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()
    if labels:
        method = "integrated gradients" if e["method"] == "ig" else "occlusion"
        ax.set_title(f"{e['label']} (p={e['confidence']:.3f}) · explaining {e['target_label']} · {method}", fontsize=9)
        fig.colorbar(colours, ax=ax, shrink=0.8, label=f"attribution (log-odds of {e['target_label']})")
    fig.savefig(path, dpi=dpi, format="png")


def heatmap_png(e: dict[str, Any], image: Any, width_px: int = 180) -> bytes:
    """The PNG bytes of a small :func:`save_heatmap` without title or colour bar, ``width_px`` pixels wide."""
    import io

    dpi = 60  # the figure's inches only size the canvas here: no text is drawn
    buf = io.BytesIO()
    save_heatmap(e, image, buf, width=width_px / dpi, dpi=dpi, labels=False)
    return buf.getvalue()
