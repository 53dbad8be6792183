"""``graft init DATA``: a first study.yaml for a table of one's own, after guessing its input and label columns.

The file names only the data, so ``graft study`` runs the measured defaults for the data's size; the main options
follow as commented-out lines that show their defaults.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from ..core.errors import ConfigError, DataError
from .app import app, stdout

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Guess", "guess_columns", "render_config"]

#: names a label column often has, best first; a column named so is preferred over any other small column
LABEL_NAMES = ("label", "labels", "category", "class", "target", "score", "sentiment", "rating", "intent", "topic",
               "y")
#: the share of non-empty values ending in an image file extension that makes a column one of image paths
IMAGE_PATH_SHARE = 0.9
#: the backbone written for image data: the study's default backbone reads text
IMAGE_BACKBONE = "efficientnet-lite0"


@dataclass(frozen=True)
class Guess:
    """The columns ``graft init`` chose and, for each, why (shown to the user and written beside it)."""

    input_key: str  # "text" or "image"
    input_column: str
    input_why: str
    label: str
    label_why: str
    others: tuple[str, ...] = ()  # other columns that could be the label, best first


def _strings(col: pd.Series) -> pd.Series:
    return col.dropna().loc[lambda s: s.map(lambda v: isinstance(v, str))]


def _is_image_paths(col: pd.Series) -> bool:
    from ..data.images import IMAGE_EXTENSIONS

    values = _strings(col)
    return len(values) > 0 and values.str.lower().str.endswith(IMAGE_EXTENSIONS).mean() >= IMAGE_PATH_SHARE


def _max_classes(n_rows: int) -> int:
    """The most distinct values a label column may have: a class needs a few rows to be split and learned."""
    return max(2, min(100, n_rows // 3))


def _label_rank(name: str) -> int:
    """0.. for a name of LABEL_NAMES (exact, then containing it as a word), len(LABEL_NAMES) * 2 otherwise."""
    lower = name.lower()
    if lower in LABEL_NAMES:
        return LABEL_NAMES.index(lower)
    words = re.split(r"[^a-z0-9]+", lower)
    return next((len(LABEL_NAMES) + i for i, n in enumerate(LABEL_NAMES) if n in words), len(LABEL_NAMES) * 2)


def _label_candidates(frame: pd.DataFrame, exclude: str) -> list[str]:
    """Columns that could hold the classes, best first: named like a label, then fewer classes, then further right."""
    import pandas as pd

    found = []
    for pos, name in enumerate(frame.columns):
        col = frame[name].dropna()
        k = col.nunique()
        if name == exclude or not 2 <= k <= _max_classes(len(frame)):
            continue
        if pd.api.types.is_float_dtype(col) and not (col == col.round()).all():
            continue  # measurements, not classes
        found.append((_label_rank(name), k, -pos, name))
    return [name for *_, name in sorted(found)]


def _mean_length(col: pd.Series) -> float:
    values = _strings(col)
    return float(values.str.len().mean()) if len(values) else 0.0


def _text_column(frame: pd.DataFrame, exclude: str | None) -> str | None:
    """The column of strings with the longest mean length among those with too many distinct values to be labels."""
    texts = [c for c in frame.columns if c != exclude and len(_strings(frame[c])) > 0 and not _is_image_paths(frame[c])
             and frame[c].nunique() > _max_classes(len(frame))]
    return max(texts, key=lambda c: _mean_length(frame[c]), default=None)


def _check_given(frame: pd.DataFrame, option: str, column: str | None, file: str) -> None:
    if column is None or column in frame.columns:
        return
    hint = difflib.get_close_matches(column, list(frame.columns), n=1, cutoff=0.5)
    raise DataError(f"{option} {column!r} is not a column of {file}"
                    f"{f'; did you mean {hint[0]!r}?' if hint else '.'} Its columns: {', '.join(frame.columns)}.")


def _input_column(frame: pd.DataFrame, file: str, text: str | None, image: str | None,
                  label: str | None) -> tuple[str, str, str]:
    """(config key, column, why) of the input: a given column, else a column of image paths, else the longest texts."""
    from ..data.load import separator_hint

    if image is not None:
        return "image", image, "given"
    if text is not None:
        return "text", text, "given"
    paths = next((c for c in frame.columns if c != label and _is_image_paths(frame[c])), None)
    if paths is not None:
        return "image", paths, f"its values are paths of image files ({frame[paths].dropna().iloc[0]!r}, ...)"
    column = _text_column(frame, exclude=label)
    if column is None:
        raise DataError(f"No column of {file} holds text (its columns: {', '.join(frame.columns)}). Pass the column "
                        "of input texts with --text COLUMN, or of image paths with --image COLUMN."
                        f"{separator_hint(list(frame.columns), cli=True)}")
    return "text", column, f"the longest texts, {_mean_length(frame[column]):.0f} characters on average"


def guess_columns(frame: pd.DataFrame, file: str, *, text: str | None = None, image: str | None = None,
                  label: str | None = None) -> Guess:
    """The input column (text, or image paths) and the label column of ``frame``; given ones are kept.

    Raises:
        DataError: a given column is not in ``frame``, or no column can be the input or the label.
    """
    from ..data.load import separator_hint

    for option, column in (("--text", text), ("--image", image), ("--label", label)):
        _check_given(frame, option, column, file)
    key, column, why = _input_column(frame, file, text, image, label)
    candidates = _label_candidates(frame, exclude=column)
    if label is None and not candidates:
        raise DataError(f"No column of {file} looks like a label: none but {column!r} has between 2 and "
                        f"{_max_classes(len(frame))} distinct values (its columns: {', '.join(frame.columns)}). Pass "
                        "the column that holds the classes with --label COLUMN."
                        f"{separator_hint(list(frame.columns), cli=True)}")
    chosen = label or candidates[0]
    counts = frame[chosen].value_counts()
    shown = ", ".join(f"{k} {v}" for k, v in counts.head(5).items()) + (", ..." if len(counts) > 5 else "")
    reason = ("given" if label else "chosen for its name" if _label_rank(chosen) < len(LABEL_NAMES) * 2
              else "chosen for its few distinct values")
    return Guess(key, column, why, chosen, f"{len(counts)} classes: {shown}; {reason}",
                 tuple(c for c in candidates if c != chosen))


def _yaml(value: Any) -> str:
    """``value`` as one YAML flow scalar or collection (quoted only where YAML needs it)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.strip().removesuffix("...").strip()


def render_config(name: str, source: Any, guess: Guess, command: str, backbone: str | None = None) -> str:
    """The commented study.yaml: the data, then the main options commented out at their defaults."""
    from ..core.config import EvalConfig, SplitConfig, StudyConfig, TrainConfig

    train, split, ev = TrainConfig(), SplitConfig(), EvalConfig()
    default_backbone = (IMAGE_BACKBONE if guess.input_key == "image"
                        else StudyConfig.model_fields["backbones"].default_factory()[0])
    backbone_line = (f"backbones: {_yaml([backbone or default_backbone])}" if backbone or guess.input_key == "image"
                     else f"# backbones: {_yaml([default_backbone])}")
    baseline = "pixel_logreg" if guess.input_key == "image" else "tfidf_logreg"
    slices = _yaml(guess.others[:1]) if guess.others else "[COLUMN]"
    lines = [
        f"# A graftlab study, written by `{command}`.",
        "# It names only the data, so `graft study` runs the defaults measured for the data's size. To choose",
        "# instead, uncomment a line below; README.md (\"A study config\") lists every key.",
        f"name: {_yaml(name)}",
        "data:",
        f"  source: {_yaml(source)}",
        f"  {guess.input_key}: {_yaml(guess.input_column)}    # guessed: {' '.join(guess.input_why.split())}",
        f"  label: {_yaml(guess.label)}    # guessed: {' '.join(guess.label_why.split())}",  # one line, whatever the data
        f"  # slices: {slices}    # metrics per value of a column, flagged when significantly worse",
        f"  # split: {_yaml(split.model_dump(exclude={'column', 'order_by'}))}",
        f"{backbone_line}    # a name from `graft models list`, a local Hugging Face folder, or hf:org/name",
        f"# strategies: [majority, {baseline}, linear_probe, full]    # default: chosen by the data's size "
        "(graft validate shows them)",
        f"# train: {_yaml({k: getattr(train, k) for k in ('epochs', 'lr', 'batch_size', 'max_length')})}",
        f"# eval: {_yaml({'seeds': ev.seeds, 'gates': ['macro_f1 >= 0.80', f'beats: {baseline}']})}",
    ]
    return "\n".join(lines) + "\n"


def _study_name(data: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", data.name.split(".")[0]).strip("-._")
    return name or "study"


def _source_path(data: Path, output: Path) -> str:
    """``data`` as the config will read it: relative to the config's folder where it can be."""
    try:
        return Path(os.path.relpath(data.resolve(), output.resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows)
        return str(data.resolve())


def _read(data: Path, encoding: str | None, sep: str | None) -> pd.DataFrame:
    from .inputs import read_table_arg

    if not data.exists():
        raise DataError(f"{data} does not exist. Pass the data file: graft init data.csv")
    if data.suffix.lower() in (".csv", ".tsv", ".jsonl"):
        try:
            with open(data, encoding=encoding or "utf-8") as f:
                f.read(1 << 20)
        except UnicodeDecodeError as e:
            raise DataError(f"Cannot read {data}: it is not {encoding or 'utf-8'} text (it holds the byte "
                            f"{e.object[e.start]:#04x}). Pass --encoding (often latin-1 or cp1252 for a file saved by "
                            "Excel on Windows), or save the file as UTF-8.") from None
    return read_table_arg(data, "DATA", encoding=encoding, sep=sep)


@app.command()
def init(
    data: Annotated[Path, typer.Argument(help="The labeled data: a .csv, .tsv, .jsonl, .parquet or .xlsx file.",
                                         show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The study config to write.")] = Path("study.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Replace the config file if it exists.")] = False,
    text: Annotated[str | None, typer.Option("--text", help="The column of input texts (default: guessed).")] = None,
    image: Annotated[str | None, typer.Option("--image", help="The column of image paths, for image data.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="The column of labels (default: guessed).")] = None,
    backbone: Annotated[str | None, typer.Option("--backbone", help="Write this backbone (a name, a folder or "
                                                                   "hf:org/name) instead of the default.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="The study's name (default: the data file's).")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="DATA's text encoding (default: utf-8).")] = None,
    sep: Annotated[str | None, typer.Option("--sep", help="The field separator of a .csv DATA (default: ',').")] = None,
) -> None:
    """Write a first study config for DATA: guesses the input and label columns and says what it chose."""
    if text is not None and image is not None:
        raise DataError("Pass --text (text data) or --image (image data), not both.")
    if output.exists() and not force:
        raise DataError(f"{output} already exists; graft init does not overwrite it. Pass --force to replace it, or "
                        "-o OTHER.yaml to write another file.")
    frame = _read(data, encoding, sep)
    guess = guess_columns(frame, data.name, text=text, image=image, label=label)
    study_name = _checked_name(name or _study_name(data))
    source: Any = _source_path(data, output)
    if encoding or sep:
        source = {"path": source, **{k: v for k, v in (("encoding", encoding), ("sep", sep)) if v}}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_config(study_name, source, guess, f"graft init {data}", backbone), encoding="utf-8")
    _say(data, frame, guess, output)


def _checked_name(name: str) -> str:
    """``name`` when a study may have it (checked before anything is written)."""
    from ..core.config import StudyConfig

    try:
        StudyConfig.from_dict({"name": name, "data": {}})
    except ConfigError:
        raise DataError(f"--name {name!r} cannot name a study: use letters, digits, '_', '.' and '-', starting with a "
                        "letter or digit.") from None
    return name


def _say(data: Path, frame: pd.DataFrame, guess: Guess, output: Path) -> None:
    """What was read, what was guessed and why, where the config is and what to run next."""
    console = stdout()
    columns = ", ".join(frame.columns[:12]) + (", ..." if len(frame.columns) > 12 else "")
    console.print(Text(f"Read {data}: {len(frame)} rows; columns {columns}."))
    console.print(Text(f"  {guess.input_key}: {guess.input_column}  ({guess.input_why})"))
    console.print(Text(f"  label: {guess.label}  ({guess.label_why})"))
    if guess.others:
        console.print(Text(f"  other columns that could be the label: {', '.join(guess.others[:5])}"))
    console.print(Text(f"Wrote {output}. To change a guess, edit data.{guess.input_key} or data.label there, or run "
                       f"again with --{guess.input_key} COLUMN / --label COLUMN --force.", style="bold"))
    console.print(Text(f"Next: graft validate {output}  (data checks, no training), then graft study {output}"))
