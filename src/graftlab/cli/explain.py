"""``graft explain``: which words (text models) or image patches (image models) made a saved model say what
it said, coloured in the terminal; for images optionally a heatmap PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, Field
from rich.color import Color
from rich.console import Console
from rich.style import Style
from rich.text import Text

from ..core.errors import DataError
from .app import app, stdout
from .inputs import load_model_ref, read_image_args
from .predict import ModelArgument
from .registry import UriOption

__all__ = ["render_explanation", "render_image_explanation"]

_FOR, _AGAINST = (220, 38, 38), (37, 99, 235)  # red: evidence for the target class; blue: against


class _Explanation(BaseModel):
    """What the command shows of one explanation (:func:`graftlab.explain.explain`'s dict, read once)."""

    label: str
    confidence: float
    target_label: str
    method: str
    note: str | None = None
    seconds: float
    n_steps: int | None = None  # integrated gradients only
    completeness_error: float | None = None
    # text models: whole words with their character spans in the text
    text: str = ""
    words: list[str] = Field(default_factory=list)
    word_attributions: list[float] = Field(default_factory=list)
    word_spans: list[tuple[int, int]] = Field(default_factory=list)
    truncated: bool = False
    # image models: rows x cols patch attributions, row 0 at the top
    grid: list[list[float]] = Field(default_factory=list)
    grid_shape: tuple[int, int] = (0, 0)
    image_shape: tuple[int, int] = (0, 0)


def _style(score: float, scale: float, graded: bool) -> Style:
    """Background by sign and strength; ``graded`` (256/true colour) blends, 16 colours use three steps."""
    strength = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    rgb = _FOR if score > 0 else _AGAINST
    if not graded:  # nearest-of-16 would turn most shades into grey: strong = background, medium = text colour
        name = "red" if score > 0 else "blue"
        return Style(bgcolor=name, color="white") if strength > 0.5 else Style(color=name) if strength > 0.15 else Style()
    # blend from white towards the colour: faint for small attributions, saturated for the largest
    mixed = tuple(round(255 + (c - 255) * strength * 0.9) for c in rgb)
    return Style(bgcolor=Color.from_rgb(*mixed), color="white" if strength > 0.6 else "black")


def _coloured(e: _Explanation, graded: bool = True) -> Text:
    """The input with each word's background coloured by its attribution (gaps kept as in the input)."""
    text, scores, spans = e.text, e.word_attributions, e.word_spans
    scale = max((abs(s) for s in scores), default=0.0)
    out, cursor = Text(), 0
    has_spans = all(end > start for start, end in spans)
    for i, (word, score) in enumerate(zip(e.words, scores, strict=True)):
        if has_spans:
            start, end = spans[i]
            out.append(text[cursor:start])
            cursor = end
        elif i:
            out.append(" ")
        out.append(word, style=_style(score, scale, graded))
    if has_spans:
        rest = text[cursor:]
        out.append(rest if not e.truncated else "")
    if e.truncated:
        out.append(" … (the rest was cut at the model's input limit and did not count)", style="dim")
    return out


def render_explanation(e: dict[str, Any], console: Console, n_top: int = 5) -> None:
    """Print one :func:`graftlab.explain.explain` result: header, coloured text, strongest words."""
    from ..explain.text import top_words

    shown = _Explanation.model_validate(e)
    _header(shown, console)
    console.print(_coloured(shown, graded=console.color_system in ("256", "truecolor")))
    pos, neg = top_words(shown.words, shown.word_attributions, n_top)
    line = Text("for: ", style="dim")
    line.append(", ".join(f"{w} ({s:+.2f})" for w, s in pos) or "-", style=Style(color=Color.from_rgb(*_FOR)))
    line.append("   against: ", style="dim")
    line.append(", ".join(f"{w} ({s:+.2f})" for w, s in neg) or "-", style=Style(color=Color.from_rgb(*_AGAINST)))
    console.print(line)
    console.print()


def _patch(row: int, col: int, score: float, bounds: list[int]) -> str:
    """One of :func:`graftlab.explain.image.top_patches`' patches, in words."""
    top, left, bottom, right = bounds
    return f"row {row} col {col} [y {top}:{bottom}, x {left}:{right}] ({score:+.2f})"


def _mark(score: float, scale: float) -> str:
    """Two characters for a cell of a wide grid, readable without colour: ++ / + (for), -- / - (against), · (weak)."""
    strength = abs(score) / scale if scale > 0 else 0.0
    sign = "+" if score > 0 else "-"
    return sign * 2 if strength > 0.5 else sign + " " if strength > 0.15 else "· "


def render_image_explanation(e: dict[str, Any], console: Console, name: str = "", n_top: int = 3) -> None:
    """Print one image explanation: header, the grid of patch attributions coloured by sign, strongest patches."""
    from ..explain.image import top_patches

    shown = _Explanation.model_validate(e)
    _header(shown, console, name)
    graded = console.color_system in ("256", "truecolor")
    scores = [s for row in shown.grid for s in row]
    scale = max((abs(s) for s in scores), default=0.0)
    rows, cols = shown.grid_shape
    numbers = cols <= 16  # wider grids: two characters a cell, to fit a terminal
    for row in shown.grid:
        line = Text()
        for s in row:
            line.append(f"{s:+6.2f}" if numbers else _mark(s, scale), style=_style(s, scale, graded))
        console.print(line)
    h, w = shown.image_shape
    console.print(Text(f"{rows} x {cols} patches over {h} x {w} pixels, row 0 at the top; "
                       "attribution = change in the target's log-odds", style="dim"))
    pos, neg = top_patches(e, n_top)
    line = Text("for: ", style="dim")
    line.append("; ".join(_patch(**p) for p in pos) or "-", style=Style(color=Color.from_rgb(*_FOR)))
    console.print(line)
    line = Text("against: ", style="dim")
    line.append("; ".join(_patch(**p) for p in neg) or "-", style=Style(color=Color.from_rgb(*_AGAINST)))
    console.print(line)
    console.print()


def _header(e: _Explanation, console: Console, name: str = "") -> None:
    method = "integrated gradients" if e.method == "ig" else "occlusion"
    head = Text(f"{name}  " if name else "", style="bold")
    head.append(f"{e.label}", style="bold")
    head.append(f"  p={e.confidence:.3f}", style="bold")
    detail = f"  ·  explaining {e.target_label}  ·  {method}"
    if e.n_steps:
        detail += f", {e.n_steps} steps, completeness error {e.completeness_error:.2g}"
    head.append(detail + f"  ·  {e.seconds:.2f} s", style="dim")
    console.print(head)
    if e.note:
        console.print(Text(e.note, style="yellow"))


@app.command()
def explain(
    model: ModelArgument,
    text: Annotated[list[str] | None, typer.Option("--text", help="An input text (repeatable; text models).")] = None,
    image: Annotated[list[str] | None, typer.Option("--image", help="An image file, or a folder of them (repeatable; image models).")] = None,
    method: Annotated[str, typer.Option("--method", help="ig (integrated gradients) or occlusion (faster, one word or image patch at a time).")] = "ig",
    target: Annotated[str | None, typer.Option("--target", help="Label to explain (default: the predicted one).")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Integration steps for ig.")] = 32,
    grid: Annotated[int, typer.Option("--grid", help="Images: cut into GRID x GRID patches (2-32).")] = 8,
    heatmap: Annotated[Path | None, typer.Option("--heatmap", help="Images: also write each image with its attributions over it to this folder, as <image name>.explain.png.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each explanation as one JSON line.")] = False,
    tracking_uri: UriOption = None,
) -> None:
    """Explain predictions: each word, or each patch of an image, coloured red (evidence for the label) or blue
    (against), by strength."""
    from ..explain import explain as run_explain

    if not text and not image:
        raise DataError("Give at least one --text (text models) or --image (image models) to explain "
                        "(e.g. graft explain runs/x/model --text 'tasty tea', or --image photo.jpg).")
    if heatmap is not None and not image:
        raise DataError("--heatmap draws image explanations: give at least one --image.")
    if heatmap is not None and heatmap.exists() and not heatmap.is_dir():
        raise DataError(f"--heatmap {heatmap} is a file; it must be a folder (the heatmaps are written into it).")
    image, arrays = read_image_args(list(image)) if image else ([], [])
    m = load_model_ref(model, tracking_uri)
    modality, name = getattr(m, "modality", None), getattr(m, "name", model)
    if text and modality == "image":  # worded as graft predict words it
        raise DataError(f"{name} is an image model: pass --image FILE (or a folder) to explain, not --text.")
    if image and modality == "text":
        raise DataError(f"{name} is a text model: pass --text 'some words' to explain, not --image.")
    console = stdout()
    for t in text or []:
        e = run_explain(m, t, method=method, target=target, n_steps=steps, grid=grid)
        if as_json:
            typer.echo(json.dumps(e))
        else:
            render_explanation(e, console)
    written: set[str] = set()
    for path, array in zip(image or [], arrays, strict=True):
        e = run_explain(m, array, method=method, target=target, n_steps=steps, grid=grid)
        if heatmap is not None:
            from ..explain.image import save_heatmap

            heatmap.mkdir(parents=True, exist_ok=True)
            name, n = f"{Path(path).name}.explain.png", 2
            while name in written:  # two images of the same name (from different folders) keep both maps
                name, n = f"{Path(path).name}.{n}.explain.png", n + 1
            written.add(name)
            drawn = str(heatmap / name)
            save_heatmap(e, array, drawn)
            e = {**e, "heatmap": drawn}
        if as_json:
            typer.echo(json.dumps({"image": path, **e}))
        else:
            render_image_explanation(e, console, name=path)
            if heatmap is not None:
                console.print(Text(f"heatmap: {drawn}", style="dim"))
    if not as_json:
        console.print(Text("red: evidence for the label · blue: against · stronger colour = larger effect on its "
                           "log-odds", style="dim"))
