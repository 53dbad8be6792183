"""From a data config to checked train/val/test splits: load → label → check → split → check.

``data.subsample`` takes the training pool (train+val), never the test split: without a fixed test set the test rows
are held out of all the rows first and train/val are split from the subsample of the rest; a fixed test set
(``data.test_source``) leaves the whole source as the pool, subsampled before the checks.

Row ids are positions in ``full``: the source's rows are ``0..n-1`` and a fixed test set's rows
follow (``n..n+m-1``); ``summary["sources"]`` records which source each id range came from. A split
saved with :meth:`PreparedData.save_split` is rebuilt exactly by :func:`load_prepared_split`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from ..core.config import DataConfig
from ..core.errors import DataError
from .checks import (
    CheckResult,
    DataChecksFailed,
    LengthFn,
    check_control_chars,
    check_split_rows,
    duplicate_groups,
    raise_for_failures,
    run_class_checks,
    run_row_checks,
    run_split_checks,
    strip_control_chars,
)
from .dataset import LabeledData
from .fingerprint import fingerprint
from .load import load_frame, load_frame_like, source_name, to_labeled
from .split import SPLITS, group_ids, load_split_info, order_ranges, save_split, split_data, subsample

__all__ = ["DataSummary", "LengthStats", "PreparedData", "RareClasses", "SourceRows", "TimeOrder", "load_data",
           "prepare_data", "load_prepared_split", "summarise"]


@dataclass(frozen=True)
class PreparedData:
    """Checked splits of one dataset and everything needed to reproduce them.

    Attributes:
        train, val, test: the splits (rows dropped by checks are gone).
        full: every loaded row (source, then the fixed test set if any), before subsampling and checks.
        split_ids: row ids of each split; ids index ``full``.
        fingerprint: sha256 of ``full`` (source and test set hashed as separate parts).
        checks: every check's outcome, in the order they ran.
        summary: rows, class counts and text-length stats per split, label names, sources.
        relabel: classes merged (label -> new label) or dropped (label -> None) by ``data.checks.rare_classes``,
            in every split (``full`` keeps the labels as loaded). The splits' label map holds only classes with
            rows left after the checks (see :func:`_drop_empty_classes`).
    """

    train: LabeledData
    val: LabeledData
    test: LabeledData
    full: LabeledData
    split_ids: dict[str, list[int]]
    fingerprint: str
    checks: list[CheckResult]
    summary: dict[str, Any]
    relabel: dict[str, str | None] = field(default_factory=dict)

    @property
    def splits(self) -> dict[str, LabeledData]:
        return {"train": self.train, "val": self.val, "test": self.test}

    @property
    def label_names(self) -> list[str]:
        return list(self.train.label_names)

    def save_split(self, path: str | Path) -> Path:
        """Write the split ids with the fingerprints and check results (see :func:`load_prepared_split`)."""
        return save_split(
            path,
            self.split_ids,
            fingerprint=self.fingerprint,
            split_fingerprints={name: fingerprint(d) for name, d in self.splits.items()},
            sources=self.summary["sources"],
            checks=[c.to_dict() for c in self.checks],
            relabel=self.relabel,
        )


def _concat(a: LabeledData, b: LabeledData | None) -> LabeledData:
    if b is None:
        return a
    if list(a.label_names) != list(b.label_names):
        raise ValueError("cannot concatenate datasets with different label maps")
    has_meta = len(a.meta.columns) or len(b.meta.columns)
    meta = pd.concat([a.meta, b.meta], ignore_index=True) if has_meta else pd.DataFrame()
    return LabeledData(
        inputs=list(a.inputs) + list(b.inputs),
        labels=np.concatenate([a.labels, b.labels]),
        label_names=list(a.label_names),
        ids=np.concatenate([a.ids, b.ids]),
        meta=meta,
    )


def _without(d: LabeledData | None, ids: np.ndarray) -> LabeledData | None:
    if d is None or not len(ids):
        return d
    return d.subset(np.flatnonzero(~np.isin(d.ids, ids)))


def _drop_empty_classes(splits: dict[str, LabeledData]) -> tuple[dict[str, LabeledData], list[str]]:
    """The splits with a label map of the classes that still have rows, and the classes left out: a class whose
    every row a check removed (conflicts, empty inputs, unseen test labels) would otherwise be an output the model
    never learns."""
    first = next(iter(splits.values()))
    present = np.zeros(first.n_classes, dtype=bool)
    for d in splits.values():
        present |= d.class_counts() > 0
    empty = {name: None for name, p in zip(first.label_names, present, strict=True) if not p}
    return ({name: d.relabel(empty) for name, d in splits.items()} if empty else splits), list(empty)


def _frames(cfg: DataConfig, frame: Any, test_frame: Any) -> tuple[pd.DataFrame, str, pd.DataFrame | None, str]:
    if frame is not None:
        df, name = load_frame_like(frame, "the data passed in"), "the data passed in"
    elif cfg.source is not None:
        df, name = load_frame(cfg.source, "data.source"), source_name(cfg.source)
    else:
        raise DataError("The 'data.source' key is not set. Set data.source (e.g. {kind: csv, path: data.csv}).")
    if test_frame is not None:
        return df, name, load_frame_like(test_frame, "the test data passed in"), "the test data passed in"
    if cfg.test_source is not None:
        return df, name, load_frame(cfg.test_source, "data.test_source"), source_name(cfg.test_source)
    return df, name, None, ""


def load_data(
    cfg: DataConfig, *, frame: Any = None, test_frame: Any = None
) -> tuple[LabeledData, LabeledData | None, dict[str, Any]]:
    """Load the source (and the fixed test set, if any) as labeled data sharing one label map.

    Args:
        cfg: the data config.
        frame: a DataFrame to use instead of ``cfg.source``.
        test_frame: a DataFrame to use instead of ``cfg.test_source``.

    Returns:
        (source rows, test rows or None, sources record: name, first id and row count of each).
    """
    df, name, test_df, test_name = _frames(cfg, frame, test_frame)
    source = to_labeled(df, cfg, name=name)
    sources = {"source": {"name": name, "first_id": 0, "rows": len(df)}}
    if test_df is None:
        return source, None, sources
    optional = ("data.split.column", "data.split.order_by", "data.group")
    kw = {"name": test_name, "id_offset": len(df), "optional_columns": optional}
    test = to_labeled(test_df, cfg, min_classes=1, **kw)
    names = sorted(set(source.label_names) | set(test.label_names))
    if names != source.label_names:
        source = to_labeled(df, cfg, name=name, label_names=names)
    if names != test.label_names:
        test = to_labeled(test_df, cfg, label_names=names, **kw)
    sources["test_source"] = {"name": test_name, "first_id": len(df), "rows": len(test_df)}
    return source, test, sources


def _length_stats(texts: list[Any]) -> dict[str, dict[str, float]]:
    if texts and isinstance(texts[0], np.ndarray):  # images: height and width in pixels
        return {unit: _stats(np.array([x.shape[axis] for x in texts], dtype=float))
                for unit, axis in (("height", 0), ("width", 1))}
    s = pd.Series([x if isinstance(x, str) else str(x) for x in texts], dtype=object).astype(str)
    out = {}
    for unit, values in (("chars", s.str.len()), ("words", s.str.split().str.len())):
        v = values.to_numpy(dtype=float)
        if len(v) == 0:
            out[unit] = {"min": 0, "median": 0.0, "p95": 0.0, "max": 0}
            continue
        out[unit] = {"min": int(v.min()), "median": float(np.median(v)), "p95": float(np.percentile(v, 95)),
                     "max": int(v.max())}
    return out


def _stats(v: np.ndarray) -> dict[str, float]:
    return {"min": int(v.min()), "median": float(np.median(v)), "p95": float(np.percentile(v, 95)), "max": int(v.max())}


def summarise(
    splits: dict[str, LabeledData], fp: str, sources: dict[str, Any], checks: list[CheckResult],
    order_by: str | None = None, relabel: dict[str, str | None] | None = None, emptied: list[str] | None = None,
) -> dict[str, Any]:
    """Rows, class counts and text-length stats per split, plus label names, sources and drops; with a
    time-ordered split (``order_by``), the first and last value of each split; with rare classes merged or
    dropped (``relabel``), which; classes whose every row the checks removed (``emptied``)."""
    names = list(next(iter(splits.values())).label_names)
    extra = {"time_order": {"column": order_by, "ranges": order_ranges(splits, order_by)}} if order_by else {}
    merged = bool(relabel) and any(v is not None for v in relabel.values())
    if relabel:
        extra["rare_classes"] = {"merged": dict(relabel)} if merged else {"dropped": sorted(relabel)}
    if emptied:
        extra["classes_without_rows"] = list(emptied)
    return {
        **extra,
        "fingerprint": fp,
        "label_names": names,
        "rows": {n: len(d) for n, d in splits.items()},
        "class_counts": {n: dict(zip(names, map(int, d.class_counts()), strict=True)) for n, d in splits.items()},
        "length": {n: _length_stats(list(d.inputs)) for n, d in splits.items()},
        "sources": sources,
        "dropped": {c.name: c.count for c in checks
                    if c.status == "fixed" and not (merged and c.name == "min_per_class")},
    }


class LengthStats(BaseModel):
    """Input lengths of one split in one unit (characters, words, or pixels of height or width)."""

    min: int
    median: float
    p95: float
    max: int


class SourceRows(BaseModel):
    """Where a range of row ids came from: ids ``first_id .. first_id + rows - 1`` of source ``name``."""

    name: str
    first_id: int
    rows: int


class TimeOrder(BaseModel):
    """A time-ordered split: the column, and the first and last value of each split (None where unknown)."""

    column: str
    ranges: dict[str, list[Any] | None]


class RareClasses(BaseModel):
    """What ``data.checks.rare_classes`` did: classes merged (label -> new label), or dropped."""

    merged: dict[str, str | None] = Field(default_factory=dict)
    dropped: list[str] = Field(default_factory=list)


class DataSummary(BaseModel):
    """:func:`summarise`'s dict as fields (``PreparedData.summary`` stays the dict that results.json records)."""

    fingerprint: str
    label_names: list[str]
    rows: dict[str, int]
    class_counts: dict[str, dict[str, int]]
    length: dict[str, dict[str, LengthStats]]  # split -> unit -> stats
    sources: dict[str, SourceRows]
    dropped: dict[str, int] = Field(default_factory=dict)
    time_order: TimeOrder | None = None
    rare_classes: RareClasses | None = None
    classes_without_rows: list[str] = Field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSummary:
        return cls.model_validate(data)


def _dataset_fingerprint(source: LabeledData, test: LabeledData | None) -> str:
    return fingerprint(source) if test is None else fingerprint(source, test)


def _groups(data: LabeledData, cfg: DataConfig) -> np.ndarray | None:
    """Group ids for the split: with ``data.checks.leakage: group`` the copies of an input stay in one split (with
    the data.group column's groups); None leaves the data.group column to :func:`split_data`."""
    if cfg.checks.leakage != "group":
        return None
    return duplicate_groups(data, group_ids(data, cfg.group) if cfg.group else None)


def _split_positions(source: LabeledData, cfg: DataConfig, *, fixed_test: bool) -> dict[str, np.ndarray]:
    """Positions of train/val/test in ``source``. ``data.subsample`` takes the training pool, not the test split:
    the test rows are held out of every row, then train and val are split from the subsample of the rest, as from a
    source with a fixed test set (whose source prepare_data has already subsampled)."""
    pos = split_data(source, cfg.split, cfg.group, fixed_test=fixed_test, groups=_groups(source, cfg))
    if fixed_test or cfg.subsample is None:
        return pos
    pool = np.sort(np.concatenate([pos["train"], pos["val"]]))
    kept = pool[np.isin(source.ids[pool], subsample(source.subset(pool), cfg.subsample).ids)]
    if len(kept) == len(pool):  # the pool is within the limits: the split stands
        return pos
    data = source.subset(kept)
    inner = split_data(data, cfg.split, cfg.group, fixed_test=True, groups=_groups(data, cfg))
    return {"train": kept[inner["train"]], "val": kept[inner["val"]], "test": pos["test"]}


def prepare_data(
    cfg: DataConfig,
    *,
    length_fn: LengthFn | None = None,
    max_length: int | None = None,
    frame: Any = None,
    test_frame: Any = None,
    split_file: str | Path | None = None,
) -> PreparedData:
    """Load, label, check and split the data as ``cfg`` says (``data.subsample`` takes the training pool).

    Args:
        cfg: the data config.
        length_fn: token counts of a list of inputs (from the backbone's tokenizer), for the
            overlong check; ``None`` skips that check.
        max_length: the backbone's maximum input length in tokens.
        frame: a DataFrame to use instead of ``cfg.source``.
        test_frame: a DataFrame to use instead of ``cfg.test_source``.
        split_file: a split saved by :meth:`PreparedData.save_split`; rebuild exactly that split.

    Returns:
        The checked splits with their ids, fingerprint, check results and summary.

    Raises:
        DataError: the data cannot be read or split as configured.
        DataChecksFailed: a check failed and ``data.checks`` does not resolve it.
    """
    if split_file is not None:
        return load_prepared_split(cfg, split_file, frame=frame, test_frame=test_frame)
    source, test, sources = load_data(cfg, frame=frame, test_frame=test_frame)
    full = _concat(source, test)
    fp = _dataset_fingerprint(source, test)
    control = check_control_chars(full, cfg.checks.control_chars)
    source, test, full = (strip_control_chars(d, cfg.checks.control_chars) for d in (source, test, full))

    if test is not None:  # the source is the training pool (without a fixed test set, see _split_positions)
        source, test = subsample(source, cfg.subsample), subsample(test, cfg.test_subsample)
    if cfg.modality == "image":  # images are resized by the backbone: no input is too long
        length_fn = max_length = None
    results, drop = run_row_checks(_concat(source, test), cfg.checks, length_fn=length_fn, max_length=max_length)
    results.insert(0, control)
    before, (source, test) = source, (_without(source, drop), _without(test, drop))
    class_results, relabel = run_class_checks(source, cfg.checks, before=before, row_results=results)
    results += class_results
    if relabel:  # data.checks.rare_classes: the same classes merged or dropped everywhere
        source = source.relabel(relabel)
        if test is not None:  # the fixed test set's rows of those classes are merged or dropped too: say how many
            touched = int(np.isin(np.asarray(test.label_names)[test.labels], list(relabel)).sum())
            before, test = len(test), test.relabel(relabel)
            if touched:
                i = next(i for i, r in enumerate(results) if r.name == "min_per_class")
                done = "dropped" if len(test) < before else "merged"
                rows = f"{touched} row{'s' if touched != 1 else ''}"
                results[i] = replace(results[i], action=f"{results[i].action}; {rows} of the fixed test set {done} too")
            if not len(test):
                raise DataError(f"data.checks.rare_classes: drop left no row in the fixed test set (all {before} "
                                "rows were of the rare classes). Use rare_classes: other, or a test set with "
                                "examples of the other classes.")

    try:
        pos = _split_positions(source, cfg, fixed_test=test is not None)
    except DataError as e:
        if any(r.name == "min_per_class" and r.status == "fail" for r in results):
            raise DataChecksFailed(results) from None  # the split failed for the reason that check gives
        if any(r.name == "single_class" and r.status == "fail" for r in results):
            raise DataChecksFailed(results) from None  # fewer than two classes (or no rows): nothing to split
        if any(r.status == "fail" for r in results):
            raise DataChecksFailed(results, note=f"The split could not be made either: {e}") from None
        raise
    splits = {name: source.subset(pos[name]) for name in SPLITS}
    if test is not None:
        splits["test"] = test
    split_results, drop = run_split_checks(splits, cfg.checks, time_ordered=bool(cfg.split.order_by))
    results += split_results
    kept = {name: _without(d, drop) for name, d in splits.items()}
    emptied_split = check_split_rows(splits, kept, split_results)
    if emptied_split is not None:
        results.append(emptied_split)
    raise_for_failures(results)
    splits, emptied = _drop_empty_classes(kept)
    return PreparedData(
        **splits,
        full=full,
        split_ids={name: [int(i) for i in d.ids] for name, d in splits.items()},
        fingerprint=fp,
        checks=results,
        relabel=relabel,
        summary=summarise(splits, fp, sources, results, cfg.split.order_by, relabel, emptied),
    )


def load_prepared_split(
    cfg: DataConfig, split_file: str | Path, *, frame: Any = None, test_frame: Any = None
) -> PreparedData:
    """Rebuild the exact splits saved by :meth:`PreparedData.save_split` from the same data.

    The data's fingerprint must match the one saved, and each rebuilt split must hash to its saved
    fingerprint (which catches reordered rows). The saved check results are returned as they were.

    Raises:
        DataError: the split file is unreadable, or the data differ from the data it was made from.
    """
    record = load_split_info(split_file)
    source, test, sources = load_data(cfg, frame=frame, test_frame=test_frame)
    full = _concat(source, test)
    fp = _dataset_fingerprint(source, test)
    full = strip_control_chars(full, cfg.checks.control_chars)  # as prepare_data did before it split
    if record.get("fingerprint") != fp:
        raise DataError(
            f"The data differ from the data the split in {split_file} was made from (fingerprint "
            f"{str(record.get('fingerprint'))[:12]}... saved, {fp[:12]}... now). Use the same data, or "
            "prepare a new split without the split file."
        )
    relabel = record.get("relabel") or {}
    if not isinstance(relabel, dict) or not all(isinstance(v, str | None) for v in relabel.values()):
        raise DataError(f"The split file {split_file} has a damaged 'relabel' entry; prepare a new split.")
    loaded = {}
    for name in SPLITS:
        ids = np.asarray(record["ids"].get(name, []), dtype=np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(full)):
            raise DataError(f"The split file {split_file} refers to row ids outside 0..{len(full) - 1}.")
        loaded[name] = full.subset(ids).relabel(relabel)  # ids are positions in the loaded ``full``
    saved = record.get("split_fingerprints", {})
    splits, emptied = _drop_empty_classes(loaded)
    if any(saved.get(n) not in (None, fingerprint(d)) for n, d in splits.items()) and all(
            saved.get(n) in (None, fingerprint(d)) for n, d in loaded.items()):
        splits, emptied = loaded, []  # saved before classes without rows left the label map: rebuilt as it was
    for name, d in splits.items():
        if saved.get(name) is not None and saved[name] != fingerprint(d):
            raise DataError(
                f"The {name} rows rebuilt from {split_file} differ from the saved ones: the rows of the "
                "data were reordered. Restore the original row order, or prepare a new split."
            )
    checks = [CheckResult.from_dict(c) for c in record.get("checks", [])]
    return PreparedData(
        **splits,
        full=full,
        split_ids={name: [int(i) for i in d.ids] for name, d in splits.items()},
        fingerprint=fp,
        checks=checks,
        relabel=relabel,
        summary=summarise(splits, fp, sources, checks, cfg.split.order_by, relabel, emptied),
    )
