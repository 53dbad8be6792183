"""What the command line names: a model (a folder or a registry reference), images (or folders of them) for
``graft predict`` and ``graft explain``, tables read by ``--file`` / ``--data`` (CSV read strictly), the inputs in
a table's column, and the table ``graft predict -o`` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from ..core.config import TABLE_KINDS, SourceConfig, table_kind
from ..core.errors import ArtifactError, DataError

__all__ = ["check_output_path", "frame_inputs", "json_lines", "load_model_ref", "one_output",
           "read_image_args", "read_table_arg", "write_table"]

T = TypeVar("T")

_FORMATS = "PNG, JPEG, BMP, GIF, TIFF or WebP"
_ENDINGS = ", ".join(list(TABLE_KINDS)[:-1]) + f" or {list(TABLE_KINDS)[-1]}"


def read_image_args(paths: list[str], option: str = "--image") -> tuple[list[str], list[Any]]:
    """Decode the image files named by ``option`` (a folder stands for every image file under it, sorted).

    Returns:
        (the file paths, their uint8 arrays (h, w) or (h, w, 3)), in order.

    Raises:
        DataError: a path is missing, a folder holds no image, or a file is not an image.
    """
    from ..data.images import IMAGE_EXTENSIONS, decode_image_file

    files: list[Path] = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"The {option} folder {p} holds no image files ({', '.join(IMAGE_EXTENSIONS[:4])}, ...).")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"The {option} file {p} does not exist. Pass the path of an image file ({_FORMATS}) or of "
                            "a folder of them.")
    arrays = []
    for f in files:
        try:
            arrays.append(decode_image_file(f)[0])
        except Exception as err:  # noqa: BLE001  (Pillow raises many kinds for a file that is not an image)
            raise DataError(f"The {option} file {f} cannot be read as an image ({type(err).__name__}: "
                            f"{str(err).strip()[:120]}). Pass a {_FORMATS} file.") from None
    return [str(f) for f in files], arrays


def load_model_ref(ref: str, tracking_uri: str | None = None) -> Any:
    """A packaged model from a folder (a run folder too), or from the registry: ``NAME``, ``NAME@alias`` or
    ``NAME:version``, resolved as ``graft serve`` resolves it (:func:`graftlab.serving.resolve.resolve_ref`).

    Raises:
        ArtifactError: a missing or tampered folder, or a registry reference without graftlab.tracking.
        ConfigError: the tracking store cannot be used.
    """
    import importlib

    from ..packaging import load_model

    if Path(ref).expanduser().exists():  # a folder: no registry, and no graftlab.serving (FastAPI, ~1 s to import)
        return load_model(ref)
    from ..serving.resolve import is_registry_ref, resolve_ref
    from .registry import tracking_store

    if not is_registry_ref(ref):
        return load_model(ref)  # says that the folder does not exist
    try:
        importlib.import_module("graftlab.tracking.registry")
    except ImportError:
        raise ArtifactError(
            f"{ref!r} is not a model folder, and registry references (NAME@alias) need graftlab.tracking, which "
            "is not available in this installation. Pass a packaged model folder (runs/<study>/<run>/model)."
        ) from None
    with tracking_store(tracking_uri):  # --tracking-uri, else $GRAFT_TRACKING_URI, else the sqlite store under .graft/
        return load_model(resolve_ref(ref, tracking_uri).path)


def one_output(output: T | None, old: T | None, old_flag: str) -> T | None:
    """The value of ``-o/--output``, or of its old spelling ``old_flag`` (hidden, so that existing scripts keep working).

    Raises:
        DataError: both were given, with different values.
    """
    if output is not None and old is not None and output != old:
        raise DataError(f"Give -o/--output once: {old_flag} is its old spelling, and the command got both "
                        f"(-o {output}, {old_flag} {old}).")
    return output if output is not None else old


def read_table_arg(path: Path, option: str, encoding: str | None = None, sep: str | None = None) -> Any:
    """Read the table file named by ``option`` (its ending says the format) as the study reads a data source; a
    CSV or TSV file strictly (:func:`graftlab.data.load.check_csv_rows`).

    Raises:
        DataError: an unknown ending, a bad encoding or separator, a malformed row, or a file that is missing or
            unreadable.
    """
    from ..data.load import load_frame

    kind = table_kind(path)
    if path.is_dir():
        raise DataError(f"{option} {path} is a folder; pass a table file ({_ENDINGS}).")
    if kind is None:
        raise DataError(f"{option} {path} must end in {_ENDINGS} (the ending says how the file is read).")
    try:
        source = SourceConfig(kind=kind, path=str(path), encoding=encoding, sep=sep)
    except ValueError as err:  # pydantic: an unknown encoding, --sep on a non-csv file
        raise DataError(f"{option} {path}: {err.errors()[0]['msg'].removeprefix('Value error, ')}.") from None
    return load_frame(source, key=option)


def frame_inputs(frame: Any, column: str, file: Path, images: bool) -> list[Any]:
    """The model inputs in ``column`` of a table read from ``file``: texts (a missing value is an empty text), or
    images decoded from paths relative to the file's folder.

    Raises:
        DataError: an image path that is missing or not an image.
    """
    if images:
        from ..data.images import decode_images

        return decode_images(frame[column].tolist(), base_dir=file.parent, column=column, name=str(file))
    return frame[column].fillna("").astype(str).tolist()


def check_output_path(path: Path, option: str = "--output", inputs: tuple[Path, ...] = ()) -> None:
    """Refuse, before any work, an output file that has no known format, cannot be created or is one of ``inputs``.

    Raises:
        DataError: saying which and what to pass instead.
    """
    if path.is_dir():
        raise DataError(f"{option} {path} is a folder; pass a file name, e.g. {path / 'predictions.csv'}.")
    if path.suffix.lower() not in TABLE_KINDS:
        ending = f"the ending {path.suffix!r}" if path.suffix else "a name without an ending"
        raise DataError(f"{option} {path}: cannot tell the file format from {ending}. End the name in {_ENDINGS}.")
    folder = path.parent
    if not folder.is_dir():
        raise DataError(f"{option} {path}: the folder {folder} does not exist. Create it, or pass a path in an "
                        "existing folder.")
    for source in inputs:
        if path.resolve() == source.resolve():
            raise DataError(f"{option} {path} is the input file: writing there would replace your data with the "
                            f"predictions. Pass another name, e.g. -o {path.with_stem(path.stem + '.predictions')}.")


def json_lines(frame: Any) -> str:
    """One JSON object per row, text as written (no \\u escapes, no escaped slashes in paths); a missing value is null."""
    import json

    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_table(frame: Any, path: Path, option: str = "--output") -> None:
    """Write ``frame`` in the format ``path`` ends in (see :data:`TABLE_KINDS`; check it first with
    :func:`check_output_path`).

    Raises:
        DataError: the file cannot be written (permissions, a full disk, a folder that vanished).
    """
    kind = TABLE_KINDS[path.suffix.lower()]
    try:
        if kind in ("csv", "tsv"):
            frame.to_csv(path, index=False, sep="\t" if kind == "tsv" else ",")
        elif kind == "jsonl":
            path.write_text(json_lines(frame), encoding="utf-8")
        elif kind == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_excel(path, index=False)
    except OSError as e:
        raise DataError(f"Cannot write {option} {path}: {e.strerror or e}. Pass a path in a folder you can write "
                        "to.") from None
    except Exception as e:  # noqa: BLE001  (the writer refused the content, e.g. control characters in .xlsx cells)
        path.unlink(missing_ok=True)  # no half-written file left behind
        raise DataError(f"Cannot write {option} {path} as {kind} ({type(e).__name__}: {str(e)[:120]}). Write .csv, "
                        ".jsonl or .parquet instead.") from None
