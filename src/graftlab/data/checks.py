"""Pre-training data checks: each reports a :class:`CheckResult` and resolves as ``data.checks`` says.

A resolution of ``error`` makes the check fail (the study stops with :class:`DataChecksFailed`
listing every failure and the config key that would resolve it), ``drop`` removes the offending
rows (status ``fixed``) and ``warn`` reports and goes on. Checks return the ids of the rows to
drop; they never modify data themselves.

Row checks (:func:`run_row_checks`) run on all rows before the split; class checks
(:func:`run_class_checks`) on the rows to split; split checks (:func:`run_split_checks`) after it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..core.config import ChecksConfig
from ..core.errors import DataCheckError
from .dataset import LabeledData

__all__ = [
    "CheckResult",
    "DataChecksFailed",
    "LengthFn",
    "normalise_texts",
    "check_absent_classes",
    "check_empty",
    "check_control_chars",
    "strip_control_chars",
    "check_conflicts",
    "check_overlong",
    "check_single_class",
    "check_min_per_class",
    "rare_class_map",
    "check_leakage",
    "duplicate_groups",
    "check_unseen_labels",
    "check_imbalance",
    "run_row_checks",
    "run_class_checks",
    "run_split_checks",
    "check_split_rows",
    "raise_for_failures",
    "checks_table",
]

Status = Literal["ok", "warn", "fail", "fixed"]
LengthFn = Callable[[Sequence[str]], np.ndarray]
_EMPTY = np.array([], dtype=np.int64)
#: C0 control characters and DEL, less tab, newline and carriage return (which texts hold legitimately)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "fixed": "cyan"}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: the check (``leakage_exact``, ``empty``, ...).
        status: ``ok``, ``warn``, ``fail`` or ``fixed`` (rows were dropped).
        count: how many rows (or classes, for class checks) are affected.
        detail: what was found.
        action: what was done, or for a failure what to set to resolve it.
        key: the config key that controls the check.
    """

    name: str
    status: Status
    count: int = 0
    detail: str = ""
    action: str = ""
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckResult:
        return cls(**d)


class DataChecksFailed(DataCheckError):
    """One or more checks failed; ``results`` holds every check's outcome for the report."""

    def __init__(self, results: Sequence[CheckResult], note: str = "") -> None:
        self.results = list(results)
        failed = [r for r in self.results if r.status == "fail"]
        lines = [f"{len(failed)} data check{'s' if len(failed) != 1 else ''} failed:"]
        lines += [f"- {r.name}: {r.detail} To resolve: {r.action}" for r in failed]
        if note:
            lines.append(note)
        super().__init__("\n".join(lines))


def _array_key(x: np.ndarray) -> str:
    # images compare by content: shape and a hash of the pixels (str() of an array elides its middle)
    return f"ndarray:{list(x.shape)}:{hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()}"


def normalise_texts(texts: Iterable[Any]) -> pd.Series:
    """Lowercase (casefold), NFKC, punctuation removed, whitespace collapsed and stripped.

    Arrays (images) are keyed by their exact content instead, so identical images compare equal.
    """
    texts = [_array_key(t) if isinstance(t, np.ndarray) else t for t in texts]
    s = pd.Series([t if isinstance(t, str) else str(t) for t in texts], dtype=object).astype(str)
    s = s.str.normalize("NFKC").str.casefold()
    s = s.str.replace(r"[^\w\s]|_", "", regex=True).str.replace(r"\s+", " ", regex=True)
    return s.str.strip()


def duplicate_groups(data: LabeledData, groups: np.ndarray | None = None) -> np.ndarray:
    """(n,) group ids under which a split keeps identical inputs (after :func:`normalise_texts`; images by pixels)
    together, joined with ``groups`` (the ``data.group`` column's ids) when given: rows linked through either
    share a group."""
    norm = normalise_texts(data.inputs)
    raw = pd.Series([x.strip() if isinstance(x, str) else "" for x in data.inputs], dtype=object)
    norm = norm.where(norm != "", "\x01" + raw)  # only punctuation or emoji ("!!!", "👍"): compared as written
    keys = pd.factorize(norm)[0]
    empty = ((norm == "\x01") & (raw == "")).to_numpy()  # blank: nothing to compare, each its own group
    keys[empty] = keys.max(initial=-1) + 1 + np.arange(int(empty.sum()))
    if groups is None:
        return keys
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, n_keys, n_groups = len(keys), int(keys.max(initial=-1)) + 1, int(groups.max(initial=-1)) + 1
    rows = np.concatenate([np.arange(n), np.arange(n)])
    nodes = np.concatenate([n + keys, n + n_keys + groups])  # each row is linked to its input and to its group
    graph = coo_matrix((np.ones(2 * n), (rows, nodes)), shape=(n + n_keys + n_groups,) * 2)
    return connected_components(graph, directed=False)[1][:n]


def counted(n: int, one: str, many: str) -> str:
    """``3 inputs are`` / ``1 input is``: ``n`` with the words that agree with it (for messages)."""
    return f"{n} {one if n == 1 else many}"


def _rows(n: int) -> str:
    return counted(n, "row", "rows")


def _ids_text(ids: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in ids[:limit])
    return f"ids {shown}{', ...' if len(ids) > limit else ''}"


def _resolve(
    name: str, key: str, resolution: str, ids: np.ndarray, detail: str, ok_detail: str, where: str = "",
    other_fix: str = "",
) -> tuple[CheckResult, np.ndarray]:
    """Map a resolution (error / drop / warn) and the offending ids to a result and the ids to drop;
    ``other_fix`` is a further resolution to offer first (``"<key>: group to ..., "``)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    if n == 0:
        return CheckResult(name, "ok", 0, ok_detail, "", key), _EMPTY
    detail = f"{detail} ({_ids_text(ids)})."
    if resolution == "drop":
        return CheckResult(name, "fixed", n, detail, f"dropped {_rows(n)}{where}", key), ids
    if resolution == "group":  # the split kept copies together; only a fixed test set can still share inputs
        return CheckResult(name, "fixed", n, detail, f"dropped {_rows(n)}{where} as with drop: grouping cannot move "
                           "the rows of a fixed test set (data.checks.leakage: group)", key), ids
    if resolution == "warn":
        return CheckResult(name, "warn", n, detail, f"kept ({key}: warn)", key), _EMPTY
    action = f"set {other_fix}{key}: drop to remove them{where}, or {key}: warn to keep them."
    return CheckResult(name, "fail", n, detail, action, key), _EMPTY


def check_empty(data: LabeledData, resolution: str) -> tuple[CheckResult, np.ndarray]:
    """Inputs that are empty or whitespace only (a missing text counts as empty)."""
    empty = np.array([isinstance(x, str) and not x.strip() for x in data.inputs], dtype=bool)
    return _resolve(
        "empty", "data.checks.empty", resolution, data.ids[empty],
        f"{counted(int(empty.sum()), 'input is', 'inputs are')} empty or whitespace only", "no empty inputs",
    )


def _has_control(data: LabeledData) -> np.ndarray:
    return np.array([isinstance(x, str) and _CONTROL.search(x) is not None for x in data.inputs], dtype=bool)


def check_control_chars(data: LabeledData, resolution: str) -> CheckResult:
    """Texts holding control characters (a NUL, BEL, ESC, ...): ``strip`` (see :func:`strip_control_chars`),
    ``error`` or ``keep``."""
    key = "data.checks.control_chars"
    bad = _has_control(data)
    n = int(bad.sum())
    if n == 0:
        return CheckResult("control_chars", "ok", 0, "no input holds control characters", "", key)
    found = sorted({f"{ord(c):#04x}" for x in np.asarray(data.inputs, dtype=object)[bad] for c in _CONTROL.findall(x)})
    detail = (f"{counted(n, 'input holds', 'inputs hold')} control characters ({', '.join(found[:8])}; "
              f"{_ids_text(data.ids[bad])}).")
    if resolution == "strip":
        return CheckResult("control_chars", "fixed", n, detail, "removed those characters from the texts", key)
    if resolution == "keep":
        return CheckResult("control_chars", "warn", n, detail, f"kept as they are ({key}: keep)", key)
    action = f"set {key}: strip to remove the characters, or {key}: keep to leave the texts as they are."
    return CheckResult("control_chars", "fail", n, detail, action, key)


def strip_control_chars(data: LabeledData | None, resolution: str) -> LabeledData | None:
    """``data`` with the control characters removed from its texts when ``resolution`` is ``strip``."""
    if data is None or resolution != "strip" or not _has_control(data).any():
        return data
    inputs = [_CONTROL.sub("", x) if isinstance(x, str) else x for x in data.inputs]
    return LabeledData(inputs, data.labels, list(data.label_names), data.ids, data.meta)


def check_conflicts(data: LabeledData, resolution: str) -> tuple[CheckResult, np.ndarray]:
    """Identical inputs (after normalisation) that carry different labels; drop removes every such row."""
    frame = pd.DataFrame({"norm": normalise_texts(data.inputs), "label": data.labels, "id": data.ids})
    frame = frame[frame["norm"] != ""]
    n_labels = frame.groupby("norm")["label"].transform("nunique")
    bad = frame[n_labels > 1]
    detail = ""
    if len(bad):
        first = bad["norm"].value_counts().index[0]  # the input repeated most: often a placeholder such as "\\N"
        rows = bad.index[bad["norm"] == first]
        names = sorted({data.label_names[i] for i in bad.loc[rows, "label"]})
        first_input = data.inputs[rows[0]]
        text = first_input if isinstance(first_input, str) else f"the image of row {int(data.ids[rows[0]])}"
        example = text if len(text) <= 40 else text[:37] + "..."
        labels = ", ".join(map(repr, names[:5])) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        detail = (
            f"{counted(bad['norm'].nunique(), 'distinct input', 'distinct inputs')} ({len(bad)} rows) "
            f"{'carry' if bad['norm'].nunique() != 1 else 'carries'} more than one label, "
            f"e.g. {example!r} ({len(rows)} rows) -> {labels}"
        )
    return _resolve(
        "conflicts", "data.checks.conflicts", resolution, np.sort(bad["id"].to_numpy()), detail,
        "no input carries two labels",
    )


def check_overlong(
    data: LabeledData, resolution: str, length_fn: LengthFn | None, max_length: int | None
) -> tuple[CheckResult, np.ndarray]:
    """Inputs longer than the backbone's ``max_length`` tokens; ``truncate`` keeps them (with a warning)."""
    key = "data.checks.overlong"
    if length_fn is None or max_length is None:
        return CheckResult("overlong", "ok", 0, "not checked", "", key), _EMPTY
    lengths = np.asarray(length_fn(list(data.inputs)))
    over = lengths > max_length
    n = int(over.sum())
    if n == 0:
        return CheckResult("overlong", "ok", 0, f"all inputs fit in {max_length} tokens", "", key), _EMPTY
    detail = (f"{counted(n, 'input is', 'inputs are')} longer than {max_length} tokens "
              f"(longest {int(lengths.max())}; {_ids_text(data.ids[over])}).")
    if resolution == "truncate":
        return CheckResult("overlong", "warn", n, detail, f"truncated to {max_length} tokens", key), _EMPTY
    if resolution == "drop":
        return CheckResult("overlong", "fixed", n, detail, f"dropped {_rows(n)}", key), data.ids[over]
    action = f"set {key}: truncate to cut them to {max_length} tokens, or {key}: drop to remove them."
    return CheckResult("overlong", "fail", n, detail, action, key), _EMPTY


def check_single_class(data: LabeledData, before: LabeledData | None = None,
                       row_results: Sequence[CheckResult] = ()) -> CheckResult:
    """The rows to train on must hold at least two classes.

    ``before`` are those rows before the row checks dropped any, ``row_results`` those checks' results: when the
    drops are what left fewer than two classes, the result says which check removed how many rows.
    """
    present = [data.label_names[i] for i in np.flatnonzero(data.class_counts())]
    if len(present) >= 2:
        return CheckResult("single_class", "ok", 0, f"{len(present)} classes", "", "data.label")
    found = f"only {present[0]!r}" if present else "no rows at all"
    dropped = [r for r in row_results if r.status == "fixed" and r.count]
    if before is not None and dropped and np.count_nonzero(before.class_counts()) > len(present):
        n = len(before)
        left = f"only the class {present[0]!r} ({len(data)} of the {_rows(n)})" if present else (
            f"none of the {_rows(n)}" if n != 1 else "not the one row")
        removed = "; ".join(f"the {r.name} check ({r.key}: drop) removed {_rows(r.count)}" for r in dropped)
        empty_only = [r.name for r in dropped] == ["empty"] and not len(data)
        detail = (f"the data needs at least 2 classes, but the checks' drops left {left}: {removed}"
                  + (", so there is nothing to train on." if not present else "."))
        keep = " or ".join(f"{r.key}: {'truncate' if r.name == 'overlong' else 'warn'}" for r in dropped)
        hint = " (every input is empty: check that data.text names the column that holds them)" if empty_only else ""
        return CheckResult("single_class", "fail", len(present), detail,
                           f"fix or replace the dropped rows{hint}, or set {keep} to keep them.", "data.label")
    return CheckResult(
        "single_class", "fail", len(present), f"the data needs at least 2 classes; found {found}.",
        "add examples of other classes, or check that data.label names the label column.", "data.label",
    )


def rare_class_map(data: LabeledData, min_per_class: int, resolution: str) -> dict[str, str | None]:
    """What ``data.checks.rare_classes`` does with the classes that have fewer than ``min_per_class`` examples:
    label name -> ``None`` (drop their rows) or the name of the class that takes them (``other``, or an existing
    class called so in any case); empty for ``error`` or when no class is that small."""
    counts = data.class_counts()
    small = [data.label_names[i] for i, c in enumerate(counts) if 0 < c < min_per_class]
    if resolution == "error" or not small:
        return {}
    if resolution == "drop":
        return dict.fromkeys(small)
    other = next((n for n in data.label_names if n.strip().lower() == "other"), "other")
    return {name: other for name in small if name != other}


def check_min_per_class(data: LabeledData, min_per_class: int,
                        resolved: Mapping[str, str | None] | None = None, resolution: str = "error") -> CheckResult:
    """Classes with fewer than ``min_per_class`` examples cannot be spread over train, val and test.

    ``data`` are the rows as loaded; ``resolved`` is the :func:`rare_class_map` applied to them, if any.
    """
    key = "data.checks.min_per_class"
    counts = data.class_counts()
    small = [(data.label_names[i], int(c)) for i, c in enumerate(counts) if 0 < c < min_per_class]
    if not small:
        return CheckResult("min_per_class", "ok", 0, f"every class has at least {min_per_class} examples", "", key)
    listed = ", ".join(f"{name!r} ({c})" for name, c in small[:10]) + (", ..." if len(small) > 10 else "")
    detail = (f"{len(small)} {'class has' if len(small) == 1 else 'classes have'} fewer than {min_per_class} examples, "
              f"too few to stratify: {listed}.")
    fix = (f"add examples of these classes, set data.checks.rare_classes: other (merge them into one class) or "
           f"drop (leave them out), or lower {key} (at least 2).")
    if resolution == "other":  # merging was asked for and is not enough
        fix = (f"add examples of these classes, set data.checks.rare_classes: drop (leave them out), or lower "
               f"{key} (at least 2).")
    if not resolved:
        if resolution == "other":  # nothing to merge: the rare class is the one the others would go into
            detail += " data.checks.rare_classes: other has nothing to merge them with."
        return CheckResult("min_per_class", "fail", len(small), detail, fix, key)
    rows = int(sum(c for name, c in small if name in resolved))
    targets = {t for t in resolved.values() if t is not None}
    if not targets:
        return CheckResult("min_per_class", "fixed", rows, detail,
                           f"their {_rows(rows)} dropped (data.checks.rare_classes: drop)", "data.checks.rare_classes")
    target = next(iter(targets))
    merged = data.relabel(resolved)
    size = int(merged.class_counts()[merged.label_names.index(target)])
    if size < min_per_class:
        return CheckResult("min_per_class", "fail", len(small),
                           f"{detail} Merged into {target!r} they still make only {size}.", fix, key)
    return CheckResult("min_per_class", "fixed", rows, detail,
                       f"merged into the class {target!r}, now {size} examples (data.checks.rare_classes: other)",
                       "data.checks.rare_classes")


def _leak_ids(splits: Mapping[str, LabeledData], normalised: bool) -> np.ndarray:
    """Ids of val rows whose input appears in train or test, and of test rows whose input appears in train.

    Train is never touched, and the test set is kept whole where it can be (test wins over val).
    Empty inputs are left to the ``empty`` check.
    """
    def keys(name: str) -> pd.Series:
        if name not in splits:
            return pd.Series([], dtype=object)
        texts = list(splits[name].inputs)
        if normalised:
            return normalise_texts(texts)
        return pd.Series([_array_key(x) if isinstance(x, np.ndarray) else x if isinstance(x, str) and x.strip() else ""
                          for x in texts], dtype=object)

    train, val, test = keys("train"), keys("val"), keys("test")
    train_set = set(train[train != ""])
    test_leak = (test.isin(train_set) & (test != "")).to_numpy()
    val_leak = (val.isin(train_set | set(test[~test_leak & (test != "")])) & (val != "")).to_numpy()
    ids = [splits["val"].ids[val_leak]]
    if "test" in splits:
        ids.append(splits["test"].ids[test_leak])
    return np.sort(np.concatenate(ids))


def check_leakage(
    splits: Mapping[str, LabeledData], resolution: str, *, normalised: bool = False
) -> tuple[CheckResult, np.ndarray]:
    """The same input in two splits: exact text, or (``normalised``) equal after :func:`normalise_texts`.

    Offending rows are counted (and dropped) in val or test, never in train. The normalised check
    leaves out rows the exact check already reports.
    """
    ids = _leak_ids(splits, normalised)
    if normalised:
        ids = ids[~np.isin(ids, _leak_ids(splits, False))]
    kind = "after lowercasing and removing punctuation and extra whitespace" if normalised else "exactly"
    name = "leakage_normalised" if normalised else "leakage_exact"
    per_split = ", ".join(f"{n} {np.isin(d.ids, ids).sum()}" for n, d in splits.items() if n != "train")
    return _resolve(
        name, "data.checks.leakage", resolution, ids,
        f"{_rows(len(ids))} ({per_split}) {'repeats' if len(ids) == 1 else 'repeat'} an input of another split {kind}",
        "no input is shared between splits" + (" (the copies of an input were kept in one split: "
                                                "data.checks.leakage: group)" if resolution == "group" else ""),
        where=" from val/test", other_fix="data.checks.leakage: group to keep every copy of an input in one split "
                                          "(val and test keep their share of repeated inputs), ",
    )


def check_unseen_labels(splits: Mapping[str, LabeledData], resolution: str) -> tuple[CheckResult, np.ndarray]:
    """Val/test rows whose label never occurs in train (the model cannot predict it)."""
    seen = np.unique(splits["train"].labels)
    parts = [d for name, d in splits.items() if name != "train"]
    ids = np.concatenate([d.ids[~np.isin(d.labels, seen)] for d in parts]) if parts else _EMPTY
    unseen = sorted({d.label_names[i] for d in parts for i in d.labels[~np.isin(d.labels, seen)]})
    return _resolve(
        "unseen_labels", "data.checks.unseen_test_labels", resolution, np.sort(ids),
        f"{counted(len(ids), 'val/test row has a label', 'val/test rows have labels')} never seen in train: "
        f"{', '.join(map(repr, unseen))}",
        "every val/test label occurs in train", where=" from val/test",
    )


def check_absent_classes(splits: Mapping[str, LabeledData], resolution: str) -> CheckResult:
    """Classes of train that val or test do not hold at all: that split cannot measure them (no recall, and
    macro-F1 averages over the classes it holds). Happens with time-ordered splits (a class that fell out of
    use), user-given or fixed test splits, and random splits of a class with very few examples."""
    key = "data.checks.absent_classes"
    train = splits["train"]
    present = set(np.unique(train.labels).tolist())
    missing = {name: sorted(present - set(np.unique(d.labels).tolist()))
               for name, d in splits.items() if name != "train" and len(d)}
    missing = {name: ids for name, ids in missing.items() if ids}
    if not missing:
        return CheckResult("absent_classes", "ok", 0, "val and test hold every class of train", "", key)
    names = train.label_names
    detail = "; ".join(f"{name} has no {', '.join(repr(names[i]) for i in ids)} rows" for name, ids in missing.items())
    detail += f" — {'its' if len(missing) == 1 else 'their'} metrics cannot say how the model does on those classes."
    count = len({i for ids in missing.values() for i in ids})
    if resolution == "warn":
        return CheckResult("absent_classes", "warn", count, detail, f"kept ({key}: warn)", key)
    action = (f"add examples of those classes (or raise data.checks.min_per_class with data.checks.rare_classes: "
              f"other or drop for classes too small to split), split so that every split holds every class (the "
              f"fractions, data.split.order_by over a longer period, the split column), or set {key}: warn to go on.")
    return CheckResult("absent_classes", "fail", count, detail, action, key)


def check_imbalance(train: LabeledData, max_imbalance: float, resolution: str) -> CheckResult:
    """Ratio of the largest to the smallest class count in train, against ``max_imbalance``."""
    counts = train.class_counts()
    present = counts[counts > 0]
    if len(present) == 0:
        return CheckResult("imbalance", "ok", 0, "train is empty", "", "data.checks.max_imbalance")
    ratio = present.max() / present.min()
    detail = f"largest/smallest class count in train = {present.max()}/{present.min()} = {ratio:.1f}"
    if ratio <= max_imbalance:
        return CheckResult("imbalance", "ok", 0, f"{detail} <= {max_imbalance:g}", "", "data.checks.max_imbalance")
    detail += f", above data.checks.max_imbalance = {max_imbalance:g}."
    if resolution == "warn":
        return CheckResult("imbalance", "warn", int(len(present)), detail, "kept; judge by macro-F1, not accuracy",
                           "data.checks.imbalance")
    action = (f"set data.checks.imbalance: warn, raise data.checks.max_imbalance above {ratio:.1f}, "
              "or subsample the large classes (data.subsample.per_class).")
    return CheckResult("imbalance", "fail", int(len(present)), detail, action, "data.checks.imbalance")


def run_row_checks(
    data: LabeledData, cfg: ChecksConfig, *, length_fn: LengthFn | None = None, max_length: int | None = None
) -> tuple[list[CheckResult], np.ndarray]:
    """Empty, conflicting and overlong inputs over all rows; returns the results and the ids to drop."""
    outcomes = [
        check_empty(data, cfg.empty),
        check_conflicts(data, cfg.conflicts),
        check_overlong(data, cfg.overlong, length_fn, max_length),
    ]
    drop = np.unique(np.concatenate([ids for _, ids in outcomes]))
    return [r for r, _ in outcomes], drop


def run_class_checks(data: LabeledData, cfg: ChecksConfig, *, before: LabeledData | None = None,
                     row_results: Sequence[CheckResult] = ()) -> tuple[list[CheckResult], dict[str, str | None]]:
    """Classes too small to stratify and a single class, on the rows that will be split; returns the results and
    the classes to rename or drop (:func:`rare_class_map`; apply it with :meth:`LabeledData.relabel`).

    ``before`` (the rows before the row checks' drops) and ``row_results`` let a failure name the drops that caused
    it (see :func:`check_single_class`)."""
    mapping = rare_class_map(data, cfg.min_per_class, cfg.rare_classes)
    rare = check_min_per_class(data, cfg.min_per_class, mapping, cfg.rare_classes)
    before = before.relabel(mapping) if before is not None else None  # classes left out as rare are not the drops' doing
    return [check_single_class(data.relabel(mapping), before, row_results), rare], mapping


def _without(d: LabeledData, ids: np.ndarray) -> LabeledData:
    return d.subset(np.flatnonzero(~np.isin(d.ids, ids))) if len(ids) else d


def run_split_checks(splits: Mapping[str, LabeledData], cfg: ChecksConfig,
                     time_ordered: bool = False) -> tuple[list[CheckResult], np.ndarray]:
    """Leakage (exact, then normalised), unseen labels, absent classes and imbalance; returns the results and
    ids to drop.

    Each check sees the splits as left by the drops of the checks before it.
    """
    splits = dict(splits)
    results, dropped = [], []

    def apply(result: CheckResult, ids: np.ndarray) -> None:
        results.append(result)
        if len(ids):
            dropped.append(ids)
            for name in ("val", "test"):
                if name in splits:
                    splits[name] = _without(splits[name], ids)

    apply(*check_leakage(splits, cfg.leakage))
    apply(*check_leakage(splits, cfg.leakage, normalised=True))
    apply(*check_unseen_labels(splits, cfg.unseen_test_labels))
    absent = cfg.absent_classes if cfg.absent_classes != "auto" else "error" if time_ordered else "warn"
    results.append(check_absent_classes(splits, absent))
    results.append(check_imbalance(splits["train"], cfg.max_imbalance, cfg.imbalance))
    drop = np.unique(np.concatenate(dropped)) if dropped else _EMPTY
    return results, drop


def check_split_rows(before: Mapping[str, LabeledData], after: Mapping[str, LabeledData],
                     split_results: Sequence[CheckResult]) -> CheckResult | None:
    """A failure when the split checks' drops left a split (``before`` -> ``after``) without rows, naming the checks
    that dropped how many rows; None when every split kept some."""
    emptied = [name for name, d in after.items() if not len(d) and len(before[name])]
    dropped = [r for r in split_results if r.status == "fixed" and r.count]
    if not emptied or not dropped:
        return None
    splits = " and ".join(f"{name} ({_rows(len(before[name]))})" for name in emptied)
    removed = "; ".join(f"the {r.name} check ({r.key}) dropped {_rows(r.count)} from val/test" for r in dropped)
    keys = sorted({r.key for r in dropped})
    keep = " or ".join(f"{k}: warn" for k in keys)  # warn keeps the rows (group cannot: a fixed test set is dropped from)
    return CheckResult(
        "split_rows", "fail", len(emptied),
        f"the checks' drops removed every row of {splits}: {removed}, so there is nothing to "
        f"{'validate' if emptied == ['val'] else 'evaluate'} on.",
        f"add distinct examples, or set {keep} to keep them.", keys[0],
    )


def raise_for_failures(results: Sequence[CheckResult], note: str = "") -> None:
    """Raise :class:`DataChecksFailed` if any result failed."""
    if any(r.status == "fail" for r in results):
        raise DataChecksFailed(results, note)


def checks_table(results: Sequence[CheckResult], title: str = "Data checks") -> Any:
    """A rich Table of the results: check, status, count, detail, action."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("detail", ratio=3, overflow="fold")
    table.add_column("action", ratio=2, overflow="fold")
    for r in results:
        table.add_row(r.name, Text(r.status, style=_STYLE[r.status]), str(r.count), Text(r.detail), Text(r.action))
    return table
