"""``graft evaluate``: a saved model scored on a labeled file: every metric of the catalogue with a bootstrap CI, a
per-class table and calibration, and with ``-o`` a small report (``evaluation.json`` + ``evaluation.md``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.errors import DataError
from .app import app, stdout
from .predict import EncodingOption, ModelArgument, SepOption
from .registry import UriOption

if TYPE_CHECKING:
    from ..core.results import Interval

__all__ = ["Evaluation", "evaluate"]

CONFIDENCE = 0.95  # of every bootstrap interval, as a study's eval.confidence defaults to


@dataclass(frozen=True)
class ClassRow:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """What ``graft evaluate`` measured: built once, printed, and written as evaluation.json."""

    model: str
    data: str
    label_column: str
    input_column: str
    n: int
    labels: list[str]
    temperature: float
    confidence: float
    bootstrap: int
    metrics: dict[str, Interval]  # every metric of predictions in the catalogue (core/metrics.py), in its order
    per_class: dict[str, ClassRow]
    confusion_matrix: list[list[int]]  # rows: true label, columns: predicted, in label order
    reliability: dict[str, list[int | float]]  # graftlab.evaluation.reliability_curve: the non-empty confidence bins


@app.command()
def evaluate(
    model: ModelArgument,
    data: Annotated[Path, typer.Argument(help="A labeled table: .csv, .tsv, .jsonl, .parquet or .xlsx.",
                                         show_default=False)],
    label: Annotated[str | None, typer.Option("--label", help="The label column (default: the one the model's study "
                                                              "used, when its model card says, else 'label').",
                                              show_default=False)] = None,
    text: Annotated[str | None, typer.Option("--text", help="The input column: texts, or image paths relative to the "
                                                            "file (default: the model's).", show_default=False)] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=100, help="Bootstrap resamples of each CI.")] = 1000,
    encoding: EncodingOption = None,
    sep: SepOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write evaluation.json and evaluation.md to "
                                                                       "this folder.", show_default=False)] = None,
    tracking_uri: UriOption = None,
) -> None:
    """Score a saved model on a labeled file: metrics with bootstrap CIs, a per-class table and calibration (ECE)."""
    from .inputs import frame_inputs, load_model_ref, read_table_arg

    if output is not None and output.exists() and not output.is_dir():
        raise DataError(f"--output {output} is a file; it must be a folder (evaluation.json and evaluation.md are "
                        "written into it).")
    m = load_model_ref(model, tracking_uri)
    frame = read_table_arg(data, "DATA", encoding=encoding, sep=sep)
    label_col = label or _study_label(m) or "label"
    input_col = text or m.meta.get("input_column") or ("image" if m.modality == "image" else "text")
    columns = ", ".join(map(str, frame.columns))
    if label_col not in frame.columns:
        raise DataError(f"DATA {data} has no label column {label_col!r}. Its columns: {columns}. Pass --label COLUMN.")
    if input_col not in frame.columns:
        raise DataError(f"DATA {data} has no column {input_col!r} (the model's input). Its columns: {columns}. Pass "
                        "--text COLUMN.")
    y = _label_indices(frame, label_col, m.label_names, data)
    proba = m.predict_proba(frame_inputs(frame, input_col, data, m.modality == "image"))
    result = _measure(y, proba, m, data, label_col, input_col, bootstrap)
    _render(result, stdout())
    if output is not None:
        _write(result, output)
        stdout().print(Text(f"Wrote {output / 'evaluation.json'} and {output / 'evaluation.md'}"))


def _study_label(m: Any) -> str | None:
    """The label column of the study that made ``m``, when its model card records the study's config."""
    card = m.card()
    if card is None:
        return None
    from ..core.config import StudyConfig

    try:
        return StudyConfig.from_dict(card["reproduce"]["config"]).data.label
    except (KeyError, TypeError, ValueError):  # an older or partial card: the default applies
        return None


def _label_indices(frame: Any, column: str, names: list[str], data: Path) -> Any:
    """The true labels as the model's class indices.

    Raises:
        DataError: a row without a label, or labels the model does not know (named, with the first row's place).
    """
    from ..data.load import row_place

    values = frame[column]
    text = values.astype(str).str.strip()  # "great " is "great", as a study reads it
    missing = (values.isna() | (text == "")).to_numpy()
    if missing.any():
        raise DataError(f"{int(missing.sum())} rows of DATA {data} have no {column!r} label (first at "
                        f"{row_place(frame, int(missing.argmax()))}). Fill them in or leave those rows out.")
    unknown = ~text.isin(names).to_numpy()
    if unknown.any():
        which = ", ".join(map(repr, sorted(set(text[unknown]))))
        raise DataError(f"DATA {data} has labels the model does not know: {which} ({int(unknown.sum())} rows, first at "
                        f"{row_place(frame, int(unknown.argmax()))}). The model's labels: {', '.join(names)}. Leave "
                        "those rows out, or check that --label names the label column.")
    return text.map({n: i for i, n in enumerate(names)}).to_numpy()


def _measure(y: Any, proba: Any, m: Any, data: Path, label_col: str, input_col: str, bootstrap: int) -> Evaluation:
    from ..core.results import Interval
    from ..evaluation import classification_metrics, metrics_with_ci, reliability_curve

    cis = metrics_with_ci(y, proba, n_boot=bootstrap, confidence=CONFIDENCE)
    table = classification_metrics(y, proba, m.label_names)
    return Evaluation(
        model=m.name, data=str(data), label_column=label_col, input_column=input_col, n=len(y),
        labels=list(m.label_names), temperature=m.temperature, confidence=CONFIDENCE, bootstrap=bootstrap,
        metrics={name: Interval(**ci) for name, ci in cis.items()},
        per_class={name: ClassRow(**row) for name, row in table["per_class"].items()},
        confusion_matrix=table["confusion_matrix"], reliability=reliability_curve(y, proba))


def _num(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def _metric_rows(r: Evaluation) -> list[tuple[str, str, str]]:
    """(label, value, CI) per metric, labelled from the catalogue."""
    from ..core.metrics import METRICS

    return [(METRICS[name].label, _num(ci.value), f"[{_num(ci.ci_low)}, {_num(ci.ci_high)}]")
            for name, ci in r.metrics.items()]


def _render(r: Evaluation, console: Console) -> None:
    level = f"{round(r.confidence * 100)}%"
    console.print(Text(f"{r.model} on {r.n} labeled rows of {r.data} (label {r.label_column!r}, input "
                       f"{r.input_column!r}); {level} bootstrap CI over {r.bootstrap} resamples", style="bold"))
    metrics = Table(box=box.SIMPLE, title="Metrics", title_justify="left")
    for col in ("metric", "value", f"{level} CI"):
        metrics.add_column(col, justify="left" if col == "metric" else "right")
    for row in _metric_rows(r):
        metrics.add_row(*row)
    console.print(metrics)
    classes = Table(box=box.SIMPLE, title="Per class", title_justify="left")
    for col in ("class", "precision", "recall", "f1", "support"):
        classes.add_column(col, justify="left" if col == "class" else "right")
    for name, c in r.per_class.items():
        classes.add_row(name, _num(c.precision), _num(c.recall), _num(c.f1), str(c.support))
    console.print(classes)
    ece = r.metrics["ece"]
    console.print(Text(f"Calibration: ECE {_num(ece.value)} [{_num(ece.ci_low)}, {_num(ece.ci_high)}] (top label, 15 "
                       f"confidence bins) at the model's temperature {r.temperature:.2f}."))


def _markdown(r: Evaluation) -> str:
    level = f"{round(r.confidence * 100)}%"
    lines = [f"# {r.model} on {r.data}", "",
             f"{r.n} labeled rows (label column `{r.label_column}`, input column `{r.input_column}`); {level} bootstrap "
             f"confidence intervals over {r.bootstrap} resamples.", "",
             f"| metric | value | {level} CI |", "|---|---:|---:|"]
    lines += [f"| {label} | {value} | {ci} |" for label, value, ci in _metric_rows(r)]
    lines += ["", "## Per class", "", "| class | precision | recall | f1 | support |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {_num(c.precision)} | {_num(c.recall)} | {_num(c.f1)} | {c.support} |"
              for n, c in r.per_class.items()]
    lines += ["", "## Confusion matrix (rows: true label, columns: predicted)", "",
              "| | " + " | ".join(r.labels) + " |", "|---|" + "---:|" * len(r.labels)]
    lines += [f"| {n} | " + " | ".join(map(str, row)) + " |" for n, row in zip(r.labels, r.confusion_matrix, strict=True)]
    rel = r.reliability
    lines += ["", f"## Calibration (ECE {_num(r.metrics['ece'].value)}, temperature {r.temperature:.2f})", "",
              "| confidence bin | mean confidence | accuracy | rows |", "|---|---:|---:|---:|"]
    lines += [f"| {lo:.2f}-{hi:.2f} | {c:.3f} | {a:.3f} | {n} |"
              for lo, hi, c, a, n in zip(rel["bin_lower"], rel["bin_upper"], rel["confidence"], rel["accuracy"],
                                          rel["count"], strict=True)]
    return "\n".join(lines) + "\n"


def _write(r: Evaluation, folder: Path) -> None:
    """evaluation.json (strict JSON: an undefined metric is null) and evaluation.md in ``folder``."""
    import json

    from ..core.artifacts import strict_json

    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "evaluation.json").write_text(json.dumps(strict_json(asdict(r)), indent=2, allow_nan=False) + "\n")
        (folder / "evaluation.md").write_text(_markdown(r), encoding="utf-8")
    except OSError as e:
        raise DataError(f"Cannot write to --output {folder}: {e.strerror or e}. Pass a folder you can write to.") from None
