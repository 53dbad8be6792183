"""``graft predict``: a saved model's predictions for texts, images or a table of them.

A prediction is ``label``, ``confidence`` and ``probabilities`` (:mod:`graftlab.core.prediction`), as HTTP and
``graft explain`` give it; a table file keeps the input file's columns beside it and spreads ``probabilities``
into ``p_<label>`` columns.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..core.errors import DataError
from .app import app, stderr, stdout
from .registry import UriOption

__all__ = ["ModelArgument", "predict"]

ModelArgument = Annotated[str, typer.Argument(
    help="A packaged model folder (runs/<study>/<run>/model), a run folder, or NAME, NAME@alias or NAME:version in "
         "the registry.", show_default=False)]
EncodingOption = Annotated[str | None, typer.Option("--encoding", help="The text encoding of the file (default: utf-8).")]
SepOption = Annotated[str | None, typer.Option("--sep", help="The field separator of a .csv file (default: ',').")]

_TABLES = (".csv", ".tsv", ".parquet", ".xlsx")  # files of columns: probabilities become p_<label> columns


@app.command()
def predict(
    model: ModelArgument,
    text: Annotated[list[str] | None, typer.Option("--text", help="An input text (repeatable; text models).")] = None,
    image: Annotated[list[str] | None, typer.Option("--image", help="An image file, or a folder of them (repeatable; "
                                                                     "image models).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A CSV/TSV/JSONL/parquet/xlsx file of inputs (texts, or image "
                                                             "paths relative to the file).")] = None,
    column: Annotated[str | None, typer.Option("--column", help="The input column in --file (default: the model's).")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="The columns of --file kept beside the predictions, "
                                                                  "comma-separated (default: every column).")] = None,
    encoding: EncodingOption = None,
    sep: SepOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write predictions to this file, in the "
                                                               "format its ending names (.csv, .tsv, .jsonl, .parquet "
                                                               "or .xlsx).")] = None,
    tracking_uri: UriOption = None,
) -> None:
    """Predict with a saved model: the label, its confidence and every label's probability, beside --file's columns."""
    import pandas as pd

    from ..core.prediction import predictions
    from .inputs import check_output_path, frame_inputs, load_model_ref, read_table_arg

    if output is not None:  # before any work: a path that cannot be written, or that is the input file itself
        check_output_path(output, "--output", inputs=(file,) if file is not None else ())
    m = load_model_ref(model, tracking_uri)
    images = m.modality == "image"
    if sum(map(bool, (text, image, file))) != 1:
        raise DataError(f"Give one of --{'image' if images else 'text'} (one or more) or --file.")
    if text and images:
        raise DataError(f"{m.name} is an image model: pass --image FILE (or a folder), or --file with image paths.")
    if image and not images:
        raise DataError(f"{m.name} is a text model: pass --text, or --file with a text column.")
    if columns is not None and file is None:
        raise DataError("--columns chooses the columns of --file to keep; give --file too.")
    if file is not None:
        frame = read_table_arg(file, "--file", encoding=encoding, sep=sep)
        col = column or m.meta.get("input_column") or ("image" if images else "text")
        if col not in frame.columns:
            from ..data.load import separator_hint

            raise DataError(f"--file {file} has no column {col!r}. Available columns: {', '.join(map(str, frame.columns))}. "
                            f"Pass --column.{separator_hint(list(frame.columns), cli=True)}")
        kept = frame[_kept_columns(frame, columns, file, m.label_names)].reset_index(drop=True)
        inputs = frame_inputs(frame, col, file, images)
    elif image:
        from .inputs import read_image_args

        names, inputs = read_image_args(list(image))
        kept = pd.DataFrame({"input": names})
    else:
        inputs = list(text or [])
        kept = pd.DataFrame({"input": inputs})
    _warn_empty(inputs, file)
    records = predictions(m.label_names, m.predict_proba(inputs))
    _show(kept, records, output, m)


def _kept_columns(frame: Any, columns: str | None, file: Path, label_names: list[str]) -> list[str]:
    """The columns of ``--file`` that go beside the predictions: ``--columns``, or every one.

    Raises:
        DataError: ``--columns`` names a column the file lacks, or a kept column has a name the predictions write.
    """
    available = [str(c) for c in frame.columns]
    kept = available if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    missing = [c for c in kept if c not in available]
    if missing:
        raise DataError(f"--columns names {', '.join(map(repr, missing))}, which is not a column of --file {file}. Its "
                        f"columns: {', '.join(available)}.")
    written = {"label", "confidence", "probabilities", *(f"p_{name}" for name in label_names)}
    clash = [c for c in kept if c in written]
    if clash:
        which = f"a column {clash[0]!r}" if len(clash) == 1 else f"the columns {', '.join(map(repr, clash))}"
        rest = ",".join(c for c in kept if c not in written) or "ID_COLUMN"
        raise DataError(f"--file {file} already has {which}, which the predictions write. Leave it out with --columns "
                        f"(e.g. --columns {rest}) or rename it; to score a labeled file against its labels, run "
                        "graft evaluate MODEL FILE --label COLUMN.")
    return kept


def _warn_empty(inputs: list[Any], file: Path | None) -> None:
    """Empty texts are scored like any input, as the service does, but the score says nothing about a text."""
    empty = [i for i, x in enumerate(inputs) if isinstance(x, str) and not x.strip()]
    if empty:
        where = f" (rows {', '.join(map(str, empty[:5]))}{', ...' if len(empty) > 5 else ''} of --file)" if file else ""
        stderr().print(Text(
            f"Warning: {len(empty)} of {len(inputs)} inputs are empty{where}; their predictions are the model's "
            "guess without a text.", style="yellow"))


def _show(kept: Any, records: list[dict[str, Any]], output: Path | None, m: Any) -> None:
    """Write the predictions to ``output``, as JSON lines to a pipe, or as a table to the terminal."""
    import pandas as pd

    from ..core.prediction import flat
    from .inputs import json_lines, write_table

    tabular = output is None and sys.stdout.isatty() or output is not None and output.suffix.lower() in _TABLES
    predicted = pd.DataFrame([flat(r) for r in records] if tabular else records)
    out = pd.concat([kept, predicted], axis=1)
    if output is not None:
        write_table(out, output, "--output")
        stdout().print(Text(f"Wrote {len(out)} predictions to {output}"))
        return
    if not tabular:
        sys.stdout.write(json_lines(out))
        return
    table = Table(title=f"{m.name} ({m.meta.get('strategy')}, temperature {m.temperature:.2f})", title_justify="left")
    for col in out.columns:
        table.add_column(str(col), overflow="fold", max_width=60 if col not in predicted.columns else None)
    for row in out.itertuples(index=False):
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    stdout().print(table)
