"""Seeded subsampling and train/val/test splits (stratified, group-aware, time-ordered or user-given), saved as JSON."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

from ..core.artifacts import save_json
from ..core.config import SplitConfig, SubsampleConfig
from ..core.errors import DataError
from .checks import counted
from .dataset import LabeledData

__all__ = ["SPLITS", "SPLIT_FORMAT", "subsample", "split_data", "save_split", "load_split", "load_split_info",
           "order_ranges", "order_values", "group_ids"]

SPLITS = ("train", "val", "test")
SPLIT_FORMAT = "graftlab-split/1"


def subsample(data: LabeledData, cfg: SubsampleConfig | None) -> LabeledData:
    """Keep at most ``cfg.per_class`` rows per class, then at most ``cfg.max_rows`` rows (stratified).

    Sampling is seeded with ``cfg.seed``; the kept rows stay in their source order and keep their ids.
    """
    if cfg is None or (cfg.per_class is None and cfg.max_rows is None):
        return data
    pos = np.arange(len(data))
    if cfg.per_class is not None:
        shuffled = pd.DataFrame({"pos": pos, "label": data.labels}).sample(frac=1.0, random_state=cfg.seed)
        pos = shuffled.groupby("label").head(cfg.per_class)["pos"].to_numpy()
    if cfg.max_rows is not None and len(pos) > cfg.max_rows:
        try:
            pos, _ = train_test_split(pos, train_size=cfg.max_rows, stratify=data.labels[pos], random_state=cfg.seed)
        except ValueError:  # a class with a single row cannot be stratified; sample plainly
            pos, _ = train_test_split(pos, train_size=cfg.max_rows, random_state=cfg.seed)
    return data.subset(np.sort(pos))


def split_data(
    data: LabeledData,
    cfg: SplitConfig,
    group_col: str | None = None,
    *,
    fixed_test: bool = False,
    groups: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Split rows into train/val/test and return each split's row positions (sorted).

    Args:
        data: the rows to split.
        cfg: fractions, stratification, seed; or a column that fixes the split, or one that orders it by time.
        group_col: a column of ``data.meta``; rows sharing a value stay in one split.
        fixed_test: a separate test set is given (``data.test_source``): only train and val are
            split off, with val fraction ``val / (train + val)``; ``test`` comes back empty.
        groups: (n,) group ids to use instead of ``group_col`` (e.g. :func:`~graftlab.data.checks.duplicate_groups`).

    Raises:
        DataError: the split cannot be made as configured (bad split-column values, a class or
            group count too small for the fractions, an empty split).
    """
    if cfg.column:
        return _from_column(data, cfg.column, fixed_test)
    if not fixed_test and cfg.test == 0:
        raise DataError(
            "The 'data.split.test' fraction is 0 but there is no 'data.test_source'. Set a test fraction "
            "(e.g. data.split.test: 0.15) or give a fixed test set in data.test_source."
        )
    if cfg.order_by:
        return _by_order(data, cfg, fixed_test)
    labels = data.labels
    if groups is None and group_col:
        groups = group_ids(data, group_col)
    pos = np.arange(len(data))
    test = np.array([], dtype=np.int64)
    if not fixed_test:
        pos, test = _two_way(pos, labels, groups, cfg.test, cfg, "test")
    train, val = _two_way(pos, labels, groups, cfg.val / (cfg.train + cfg.val), cfg, "val")
    out = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    for name in ("train", "val") if fixed_test else SPLITS:
        if len(out[name]) == 0:
            raise DataError(f"The {name} split is empty: {counted(len(data), 'row is', 'rows are')} too "
                            "few for the split fractions.")
    return out


def group_ids(data: LabeledData, group_col: str) -> np.ndarray:
    """(n,) ids of the ``data.group`` column's values; a row without a value is its own group."""
    if group_col not in data.meta.columns:
        raise DataError(f"The 'data.group' column {group_col!r} is not in the data's metadata.")
    values = data.meta[group_col]
    filled = values.astype(object).where(values.notna(), pd.Series([f"__row{i}" for i in range(len(values))]))
    return pd.factorize(filled.astype(str))[0]


def _two_way(
    pos: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, frac: float, cfg: SplitConfig, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``frac`` of ``pos``; return (kept, held_out)."""
    y = labels[pos]
    try:
        if groups is None:
            return tuple(train_test_split(
                pos, test_size=frac, stratify=y if cfg.stratify else None, random_state=cfg.seed
            ))
        g = groups[pos]
        n_groups = len(np.unique(g))
        if cfg.stratify:
            k = max(2, round(1 / frac))
            if n_groups < k:
                raise ValueError(f"only {n_groups} groups for a {frac:.0%} {what} split (needs {k})")
            with warnings.catch_warnings():  # "least populated class has fewer members than n_splits"
                warnings.simplefilter("ignore", UserWarning)
                folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=cfg.seed)
                kept, held = next(folds.split(pos, y, g))
        else:
            kept, held = next(GroupShuffleSplit(n_splits=1, test_size=frac, random_state=cfg.seed).split(pos, y, g))
        return pos[kept], pos[held]
    except ValueError as e:
        fix = "set data.split.stratify: false, " if cfg.stratify else ""
        raise DataError(
            f"Cannot make the {what} split ({frac:.0%} of {counted(len(pos), 'row', 'rows')}): {str(e).rstrip('.')}. Add examples, "
            f"{fix}or change the split fractions (see also data.checks.min_per_class)."
        ) from None


def order_values(data: LabeledData, column: str) -> pd.Series:
    """The ``data.split.order_by`` column as numbers or UTC timestamps.

    Raises:
        DataError: the column is missing, or some rows hold no date, time or number.
    """
    if column not in data.meta.columns:
        raise DataError(f"The 'data.split.order_by' column {column!r} is not in the data (nor can it be the input or "
                        "label column): name a column of dates, times or numbers.")
    raw = data.meta[column].reset_index(drop=True)
    if pd.api.types.is_bool_dtype(raw):
        values = pd.Series(np.nan, index=raw.index)
    elif pd.api.types.is_numeric_dtype(raw):
        values = raw
    elif pd.api.types.is_datetime64_any_dtype(raw):
        values = pd.to_datetime(raw, utc=True)
    else:
        with warnings.catch_warnings():  # "could not infer format": every value is parsed on its own
            warnings.simplefilter("ignore", UserWarning)
            values = pd.to_datetime(raw.astype(object), errors="coerce", utc=True, format="mixed")
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"The 'data.split.order_by' column {column!r} must hold a date, a time or a number in every row; {len(bad)} "
            f"of {len(raw)} rows do not (first at row {int(data.ids[bad[0]])} of the data, counted from 0: "
            f"{raw.tolist()[bad[0]]!r}). Fill in or drop those rows, or "
            "remove data.split.order_by."
        )
    return values


def order_ranges(splits: dict[str, LabeledData], column: str) -> dict[str, list[Any] | None]:
    """[first, last] value of ``column`` in each split (ISO text for times; None where the column is absent,
    e.g. a fixed test set without it, or the split is empty)."""
    out: dict[str, list[Any] | None] = {}
    for name, d in splits.items():
        if len(d) == 0 or column not in d.meta.columns:
            out[name] = None
            continue
        try:
            values = order_values(d, column)
        except DataError:
            out[name] = None
            continue
        lo, hi = values.min(), values.max()
        out[name] = [v.isoformat() if hasattr(v, "isoformat") else v.item() if hasattr(v, "item") else v for v in (lo, hi)]
    return out


def _by_order(data: LabeledData, cfg: SplitConfig, fixed_test: bool) -> dict[str, np.ndarray]:
    """Time-ordered split: the earliest rows train, the next validate, the latest test (equal values together)."""
    values = order_values(data, cfg.order_by)
    order = np.argsort(values.to_numpy(), kind="stable")
    ordered = values.to_numpy()[order]
    n = len(order)
    if fixed_test:
        tail = [round(n * cfg.val / (cfg.train + cfg.val)), 0]
    else:  # split_data has refused a test fraction of 0 without a fixed test set
        tail = [round(n * (cfg.val + cfg.test)), round(n * cfg.test)]
    cuts = []
    for k in tail:
        cut = n - k
        while 0 < cut < n and ordered[cut] == ordered[cut - 1]:  # rows with the same time stay in one split
            cut += 1
        cuts.append(cut)
    parts = np.split(order, cuts)
    out = {"train": np.sort(parts[0]), "val": np.sort(parts[1]), "test": np.sort(parts[2])}
    for name in ("train", "val") if fixed_test else SPLITS:
        if len(out[name]) == 0:
            raise DataError(
                f"The time-ordered {name} split is empty: {counted(n, 'row is', 'rows are')} too few for the "
                "split fractions, or too many "
                f"rows share the same {cfg.order_by!r} value. Change the fractions or order by a finer column."
            )
    return out


def _from_column(data: LabeledData, column: str, fixed_test: bool) -> dict[str, np.ndarray]:
    if column not in data.meta.columns:
        raise DataError(f"The 'data.split.column' column {column!r} is not in the data.")
    raw = data.meta[column]
    values = raw.astype(str).str.strip().str.lower().where(raw.notna(), "<missing>")
    allowed = {"train", "val"} if fixed_test else set(SPLITS)
    bad = values[~values.isin(allowed)]
    if len(bad):
        found = ", ".join(repr(v) for v in sorted(bad.unique())[:10])
        extra = " (data.test_source gives the test set, so 'test' rows are not allowed)" if fixed_test else ""
        raise DataError(
            f"The 'data.split.column' column {column!r} must hold only {', '.join(sorted(allowed))}{extra}; "
            f"{counted(len(bad), 'row holds', 'rows hold')} {found}. Fix those values or remove "
            "data.split.column."
        )
    out = {name: np.flatnonzero(values.to_numpy() == name) for name in SPLITS}
    for name in sorted(allowed):
        if len(out[name]) == 0:
            raise DataError(f"The 'data.split.column' column {column!r} marks no rows as {name!r}.")
    return out


def save_split(path: str | Path, split_ids: dict[str, Any], **info: Any) -> Path:
    """Write the row ids of each split (and any ``info`` such as the fingerprint) as JSON."""
    ids = {name: [int(i) for i in split_ids.get(name, [])] for name in SPLITS}
    return save_json({"format": SPLIT_FORMAT, "ids": ids, **info}, path)


def load_split_info(path: str | Path) -> dict[str, Any]:
    """Read a split file written by :func:`save_split` (ids and the recorded info)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"The split file {path} does not exist. Pass the split.json of an earlier run.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"The split file {path} is not valid JSON ({e}).") from None
    if not isinstance(record, dict) or record.get("format") != SPLIT_FORMAT or not isinstance(record.get("ids"), dict):
        raise DataError(f"{path} is not a graftlab split file (expected format {SPLIT_FORMAT!r}).")
    return record


def load_split(path: str | Path) -> dict[str, np.ndarray]:
    """Read the row ids of each split from a file written by :func:`save_split`."""
    record = load_split_info(path)
    return {name: np.asarray(record["ids"].get(name, []), dtype=np.int64) for name in SPLITS}
