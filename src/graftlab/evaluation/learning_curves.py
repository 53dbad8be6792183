"""A one-line reading of learning curves: which strategy leads at which training size."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["learning_curve_reading"]


def _size(s: float) -> str:
    # The study's convention: sizes <= 1 are fractions of train, larger ones examples per class.
    return f"{s * 100:g}% of train" if s <= 1 else f"{s:g}/class"


def _span(sizes: list[float]) -> str:
    if len(sizes) == 1:
        return _size(sizes[0])
    if all(s > 1 for s in sizes):
        return f"{sizes[0]:g}-{sizes[-1]:g}/class"
    return f"{_size(sizes[0])} to {_size(sizes[-1])}"


def _leaders(
    curve: Mapping[str, Sequence[Sequence[float]]], higher_is_better: bool, tie_tol: float
) -> list[tuple[float, tuple[str, ...]]]:
    """(size, strategies within tie_tol of the best at that size) for every size, ascending."""
    by_size: dict[float, dict[str, float]] = {}
    for strategy, points in curve.items():
        for point in points:
            size, value = float(point[0]), float(point[1])
            if math.isfinite(value):
                by_size.setdefault(size, {})[strategy] = value
    out = []
    for size in sorted(by_size):
        values = by_size[size]
        best = max(values.values()) if higher_is_better else min(values.values())
        out.append((size, tuple(s for s, v in values.items() if abs(v - best) <= tie_tol)))
    return out


def learning_curve_reading(
    curve: Mapping[str, Sequence[Sequence[float]]], higher_is_better: bool = True, tie_tol: float = 0.0
) -> str:
    """Summarise who leads at each training size in one line, merging consecutive sizes.

    Args:
        curve: strategy -> [(size, mean metric), ...]; extra tuple items (e.g. a CI) are ignored,
            NaN means are skipped. Sizes <= 1 read as fractions of train, > 1 as examples per class.
        higher_is_better: False for losses.
        tie_tol: strategies within this distance of the best share the lead. Means differing by
            less than their CI width are not a real lead; pass a tolerance when that matters.

    Returns:
        e.g. "linear_probe leads below 32/class; finetune-2 leads from 32/class up",
        "lora leads at every size (8-128/class)", or for three or more runs
        "A leads at 8-16/class; B leads at 32/class; A leads at 64/class".
    """
    points = _leaders(curve, higher_is_better, tie_tol)
    if not points:
        return "no learning-curve points were measured"
    runs: list[tuple[tuple[str, ...], list[float]]] = []
    for size, who in points:
        if runs and runs[-1][0] == who:
            runs[-1][1].append(size)
        else:
            runs.append((who, [size]))

    def lead(who: tuple[str, ...]) -> str:
        return f"{who[0]} leads" if len(who) == 1 else f"{' and '.join(who)} tie"

    if len(runs) == 1:
        who, sizes = runs[0]
        where = f"at {_size(sizes[0])}" if len(sizes) == 1 else f"at every size ({_span(sizes)})"
        return f"{lead(who)} {where}"
    if len(runs) == 2:
        (first, _), (second, sizes) = runs
        return f"{lead(first)} below {_size(sizes[0])}; {lead(second)} from {_size(sizes[0])} up"
    return "; ".join(f"{lead(who)} at {_span(sizes)}" for who, sizes in runs)
