"""Number formatting and plain-words readings shared by the HTML report and the decision record.

Every formatter accepts anything (a missing key arrives as ``None``) and renders what it cannot
format as an em dash, so a section with partial data still renders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..core.metrics import METRICS
from ..core.results import Interval, SliceResult

__all__ = [
    "ALPHA",
    "MISSING",
    "ci_parts",
    "fmt_bytes",
    "fmt_ci",
    "fmt_count",
    "fmt_int",
    "fmt_ms",
    "fmt_num",
    "fmt_p",
    "fmt_pm",
    "fmt_seconds",
    "fmt_signed",
    "higher_is_better",
    "is_number",
    "metric_label",
    "fmt_period",
    "fmt_periods",
    "reading",
    "slice_name",
]

MISSING = "—"

# Significance level for the plain-words reading of a paired comparison.
ALPHA = 0.05

# Metrics where a smaller value is better; everything else is treated as "higher is better".
_LOWER_IS_BETTER = frozenset(
    {
        "log_loss", "brier", "ece", "mce", "loss", "train_loss", "val_loss", "error_rate",
        "mae", "mse", "rmse", "latency_ms_b1", "latency_ms_b32", "fit_seconds", "model_bytes",
    }
)

_METRIC_LABELS = {name: m.label for name, m in METRICS.items()}  # the metric catalogue's labels


def is_number(x: Any) -> bool:
    """True for a finite int or float (bools and NaN are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def higher_is_better(metric: str | None) -> bool:
    """Direction of a metric, by name."""
    return (metric or "") not in _LOWER_IS_BETTER


def metric_label(metric: str) -> str:
    """Human name of a metric key (``macro_f1`` → ``Macro F1``)."""
    return _METRIC_LABELS.get(metric, metric.replace("_", " "))


def fmt_period(r: Any) -> str:
    """One split's period, [first, last], as "A to B" (the missing mark when there is none)."""
    return " to ".join(map(str, r)) if isinstance(r, (list, tuple)) and r else MISSING


def fmt_periods(ranges: Any) -> str:
    """A time-ordered split's periods, ``{split: [first, last] or None}``, as "train A to B; val C to D; ..."."""
    return "; ".join(f"{name} {fmt_period(r)}" for name, r in dict(ranges or {}).items())


def slice_name(s: Any) -> str:
    """A slice row's name: "column=value", or the value alone when it already says what it is (the automatic
    slices "class=great" and "len Q1 (3-20 words)")."""
    if isinstance(s, SliceResult):
        col, val = s.slice_column, s.slice
    else:  # a dict with a slice row's keys
        col, val = str(s.get("slice_column", "?")), str(s.get("slice", "?"))
    automatic = val.startswith(f"{col}=") or (col == "length" and val.startswith("len Q"))
    return val if automatic else f"{col}={val}"


def fmt_num(x: Any, digits: int = 3) -> str:
    """``0.81234`` → ``0.812``."""
    return f"{x:.{digits}f}" if is_number(x) else MISSING


def fmt_int(n: Any) -> str:
    """A count: ``14.0`` → ``14`` (a per-class support averaged over seeds arrives as a float)."""
    return f"{n:.0f}" if is_number(n) else MISSING


def fmt_share(x: Any) -> str:
    """``0.4231`` → ``42%`` (a share of rows); a share that is not exactly 0 or 1 never rounds to them."""
    if not is_number(x):
        return MISSING
    if 0 < x < 0.005:
        return "<1%"
    if 0.995 <= x < 1:
        return ">99%"
    return f"{100 * x:.0f}%"


def fmt_signed(x: Any, digits: int = 3) -> str:
    """``0.0123`` → ``+0.012`` (differences read better with their sign)."""
    return f"{x:+.{digits}f}" if is_number(x) else MISSING


def ci_parts(entry: Any) -> tuple[Any, Any, Any]:
    """(value, ci_low, ci_high) of an :class:`Interval` (or a dict with its keys), or of a bare number (no interval)."""
    if isinstance(entry, Interval):
        return entry.value, entry.ci_low, entry.ci_high
    if isinstance(entry, Mapping):
        return entry.get("value"), entry.get("ci_low"), entry.get("ci_high")
    return entry, None, None


def fmt_ci(entry: Any, digits: int = 3, signed: bool = False) -> str:
    """``{value, ci_low, ci_high}`` → ``0.812 [0.790, 0.830]``; a bare number → ``0.812``."""
    value, low, high = ci_parts(entry)
    fmt = fmt_signed if signed else fmt_num
    text = fmt(value, digits)
    if text != MISSING and is_number(low) and is_number(high):
        text += f" [{fmt(low, digits)}, {fmt(high, digits)}]"
    return text


def fmt_p(p: Any) -> str:
    """``0.0031`` → ``p=0.003``; below 0.001 → ``p<0.001``."""
    if not is_number(p):
        return MISSING
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_pm(mean: Any, std: Any, digits: int = 3) -> str:
    """``0.851 ± 0.012``."""
    if not is_number(mean):
        return MISSING
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if is_number(std) else fmt_num(mean, digits)


def fmt_count(n: Any) -> str:
    """``22713216`` → ``22.7M`` (parameter counts)."""
    if not is_number(n):
        return MISSING
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{suffix}"
    return f"{n:.0f}"


def fmt_bytes(n: Any) -> str:
    """``91234567`` → ``87.0 MB`` (binary units)."""
    if not is_number(n):
        return MISSING
    for scale, suffix in ((2**30, "GB"), (2**20, "MB"), (2**10, "KB")):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {suffix}"
    return f"{n:.0f} B"


def fmt_ms(x: Any) -> str:
    """Latency in milliseconds."""
    return f"{x:.2f} ms" if is_number(x) else MISSING


def fmt_seconds(x: Any) -> str:
    """Durations: ``12.3 s``, ``4.2 min``."""
    if not is_number(x):
        return MISSING
    if x >= 120:
        return f"{x / 60:.1f} min"
    return f"{x:.1f} s" if x >= 1 else f"{x:.2f} s"


def reading(
    diff: Any, ci_low: Any, ci_high: Any, p_value: Any, metric: str | None, alpha: float = ALPHA
) -> str:
    """Plain words for a paired difference ``a − b``, from ``a``'s point of view.

    A difference counts as significant only when every piece of evidence present agrees: the CI
    excludes zero and the p-value is below ``alpha``.

    Returns:
        ``"significantly better"``, ``"significantly worse"``, ``"not distinguishable"`` or
        ``"not available"`` (no difference recorded).
    """
    if not is_number(diff):
        return "not available"
    has_ci = is_number(ci_low) and is_number(ci_high)
    has_p = is_number(p_value)
    if not (has_ci or has_p):
        return "not distinguishable"
    significant = True
    if has_ci:
        significant &= ci_low > 0 or ci_high < 0
    if has_p:
        significant &= p_value < alpha
    if not significant:
        return "not distinguishable"
    better = diff > 0 if higher_is_better(metric) else diff < 0
    return "significantly better" if better else "significantly worse"
