"""Report figures: each function draws one figure and returns it as a base64-encoded PNG string.

Figures are drawn on an explicit Agg canvas (no pyplot), and style settings are scoped with
``rc_context``, so nothing here changes matplotlib's global backend or state; this is safe to call
from servers and threads. A function returns ``None`` when its input holds nothing to draw, so the
caller can skip the figure.

Embed the result as ``<img src="data:image/png;base64,{string}">``. Inputs are the study's result records
(:mod:`graftlab.core.results`), or their dicts as read from results.json.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from ..core.errors import ArtifactError
from ..core.results import Bakeoff, Comparison, CurvePoint, LearningCurve, Record, SliceResult
from .formatting import fmt_p, is_number, metric_label, reading, slice_name
from .predictions import ClassCurve

__all__ = [
    "bakeoff_plot",
    "PALETTE",
    "confusion_matrix_plot",
    "forest_plot",
    "learning_curve_plot",
    "reliability_diagram",
    "roc_pr_plot",
    "slices_plot",
    "training_curves",
]

# Colour-blind-friendly enough, and consistent with the report's CSS.
PALETTE = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#db2777", "#4b5563"]
_GOOD, _BAD, _NEUTRAL = "#059669", "#dc2626", "#6b7280"
_DPI = 110
_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelcolor": "#374151",
    "axes.edgecolor": "#9ca3af",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "legend.frameon": False,
    "legend.fontsize": 8,
}

R = TypeVar("R", bound=Record)


def _record(model: type[R], x: R | Mapping[str, Any]) -> R:
    """``x`` as a ``model`` record: a record as it is, a dict (e.g. read from results.json) validated."""
    if isinstance(x, model):
        return x
    try:
        return model.model_validate(x)
    except ValidationError as err:
        raise ArtifactError(f"Expected a {model.__name__} of a study's results: {err}") from None


def _figure(width: float, height: float, **kwargs: Any) -> Any:
    """A Figure bound to an Agg canvas, without pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _style() -> Any:
    import matplotlib

    return matplotlib.rc_context(_RC)


def _encode(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def forest_plot(comparisons: Iterable[Comparison | Mapping[str, Any]], metric: str | None = None) -> str | None:
    """Paired differences ``a − b`` with CI bars and a zero line, one row per comparison.

    Args:
        comparisons: the results' comparisons (``a``, ``b``, ``metric``, ``diff``, ``ci_low``, ``ci_high``,
            ``p_value``).
        metric: axis label; defaults to the first row's ``metric``.
    """
    rows = [_record(Comparison, c) for c in comparisons]
    rows = [c for c in rows if is_number(c.diff)]
    if not rows:
        return None
    metric = metric or rows[0].metric or "metric"
    with _style():
        fig = _figure(7.5, 1.2 + 0.42 * len(rows))
        ax = fig.add_subplot()
        n = len(rows)
        for i, row in enumerate(rows):
            y = n - 1 - i
            words = reading(row.diff, row.ci_low, row.ci_high, row.p_value, row.metric or metric)
            color = {"significantly better": _GOOD, "significantly worse": _BAD}.get(words, _NEUTRAL)
            if is_number(row.ci_low) and is_number(row.ci_high):
                ax.plot([row.ci_low, row.ci_high], [y, y], color=color, linewidth=2.2, solid_capstyle="round")
            ax.plot([row.diff], [y], "o", color=color, markersize=7, zorder=3)
            if is_number(row.p_value):
                ax.annotate(
                    fmt_p(row.p_value), xy=(1.0, y), xycoords=("axes fraction", "data"),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8,
                    color="#4b5563",
                )
        ax.axvline(0, color="#111827", linewidth=1)
        ax.set_yticks(range(n), [f"vs {r.b or '?'}" for r in reversed(rows)])
        ax.set_ylim(-0.7, n - 0.3)
        ax.grid(axis="y", visible=False)
        a = rows[0].a or "winner"
        ax.set_xlabel(f"difference in {metric_label(metric)} ({a} − other)")
        ax.set_title(f"Paired differences: {a} against each other strategy", loc="left")
        return _encode(fig)


def _seed_runs(history: Any) -> list[list[Mapping[str, Any]]]:
    """A strategy's history as a list of per-seed runs (accepts a single run too)."""
    if not isinstance(history, Sequence) or not history:
        return []
    if isinstance(history[0], Mapping):
        return [list(history)]
    return [list(run) for run in history if isinstance(run, Sequence) and run]


def _series(run: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, rec in enumerate(run):
        if is_number(rec.get(key)):
            step = rec.get("step")
            xs.append(step if is_number(step) else i)
            ys.append(rec[key])
    return xs, ys


def _val_key(runs_by_name: Mapping[str, list[list[Mapping[str, Any]]]], preferred: str) -> str:
    keys = {k for runs in runs_by_name.values() for run in runs for rec in run for k in rec}
    if preferred in keys:
        return preferred
    candidates = sorted(k for k in keys if k.startswith("val_") and k != "val_loss")
    return candidates[0] if candidates else preferred


def _draw_runs(ax: Any, runs: list[list[Mapping[str, Any]]], key: str, color: str, label: str) -> bool:
    """Each seed as a faint line, plus the mean over seeds where they share steps."""
    drawn = False
    by_step: dict[float, list[float]] = {}
    series = [_series(run, key) for run in runs]
    for xs, ys in series:
        if xs:
            ax.plot(xs, ys, color=color, alpha=0.3, linewidth=1)
            drawn = True
            for x, y in zip(xs, ys):
                by_step.setdefault(x, []).append(y)
    n_seeds = sum(1 for xs, _ in series if xs)
    shared = sorted(x for x, ys in by_step.items() if len(ys) == n_seeds)
    if len(shared) >= 2:
        ax.plot(shared, [sum(by_step[x]) / n_seeds for x in shared], color=color, linewidth=2,
                label=label)
    elif drawn:
        ax.plot([], [], color=color, linewidth=2, label=label)
    return drawn


def training_curves(
    histories: Mapping[str, Any], metric: str = "val_macro_f1"
) -> str | None:
    """Validation metric and training loss against step, one colour per strategy.

    Args:
        histories: strategy name → its ``history`` (a list of per-seed lists of
            ``{step, train_loss, val_<metric>, ...}`` records; a single list is one seed).
        metric: the validation key to plot; falls back to another ``val_*`` key if absent.
    """
    runs_by_name = {name: _seed_runs(h) for name, h in histories.items()}
    runs_by_name = {name: runs for name, runs in runs_by_name.items() if runs}
    if not runs_by_name:
        return None
    key = _val_key(runs_by_name, metric)
    with _style():
        fig = _figure(9.5, 3.6)
        ax_val, ax_loss = fig.subplots(1, 2)
        drawn = False
        for i, (name, runs) in enumerate(runs_by_name.items()):
            color = PALETTE[i % len(PALETTE)]
            drawn |= _draw_runs(ax_val, runs, key, color, name)
            drawn |= _draw_runs(ax_loss, runs, "train_loss", color, "_nolegend_")
        if not drawn:
            return None
        ax_val.set_title(f"Validation {metric_label(key.removeprefix('val_'))}", loc="left")
        ax_loss.set_title("Training loss", loc="left")
        for ax in (ax_val, ax_loss):
            ax.set_xlabel("step")
        fig.legend(loc="outside lower center", ncols=min(4, len(runs_by_name)))
        return _encode(fig)


def confusion_matrix_plot(
    cm: Sequence[Sequence[float]], labels: Sequence[str] | None = None, title: str | None = None
) -> str | None:
    """Heatmap of a confusion matrix (rows true, columns predicted), coloured by row share.

    Each cell shows its count and the share of its true class.
    """
    import numpy as np

    try:
        arr = np.asarray(cm, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[0] != arr.shape[1]:
        return None
    n = arr.shape[0]
    labels = [str(x) for x in labels] if labels and len(labels) == n else [str(i) for i in range(n)]
    row_sums = arr.sum(axis=1, keepdims=True)
    rates = np.divide(arr, row_sums, out=np.zeros_like(arr), where=row_sums > 0)
    side = min(9.0, max(4.2, 1.6 + 0.75 * n))
    font = 9 if n <= 6 else max(5, 11 - n // 2)
    with _style():
        fig = _figure(side + 1.0, side)
        ax = fig.add_subplot()
        image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{arr[i, j]:.0f}\n{rates[i, j]:.0%}", ha="center", va="center",
                        fontsize=font, color="white" if rates[i, j] > 0.55 else "#111827")
        long = max(len(s) for s in labels) > 8
        ax.set_xticks(range(n), labels, rotation=30 if long else 0, ha="right" if long else "center")
        ax.set_yticks(range(n), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.grid(False)
        ax.set_title(title or "Confusion matrix", loc="left")
        fig.colorbar(image, ax=ax, shrink=0.8, label="share of true class")
        return _encode(fig)


def _reliability_points(curve: Mapping[str, Any]) -> list[tuple[float, float, float, float]]:
    """(confidence, accuracy, count, bin centre) for the non-empty bins of a reliability curve."""
    conf = curve.get("confidence") or []
    acc = curve.get("accuracy") or []
    count = curve.get("count") or [1] * len(conf)
    lower = curve.get("bin_lower") or [None] * len(conf)
    upper = curve.get("bin_upper") or [None] * len(conf)
    points = []
    for c, a, k, lo, hi in zip(conf, acc, count, lower, upper):
        if is_number(c) and is_number(a) and is_number(k) and k > 0:
            centre = (lo + hi) / 2 if is_number(lo) and is_number(hi) else c
            points.append((c, a, k, centre))
    return points


def _ece(points: list[tuple[float, float, float, float]]) -> float | None:
    total = sum(p[2] for p in points)
    return sum(p[2] * abs(p[1] - p[0]) for p in points) / total if total else None


def reliability_diagram(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None = None,
    ece_before: float | None = None,
    ece_after: float | None = None,
) -> str | None:
    """Reliability diagram (accuracy against confidence per bin) before and after calibration.

    Args:
        before, after: ``{bin_lower, bin_upper, confidence, accuracy, count}`` curves.
        ece_before, ece_after: shown in the legend; computed from the bins when not given.
    """
    curves = []
    for name, curve, ece, color in (("before", before, ece_before, _BAD),
                                    ("after", after, ece_after, _GOOD)):
        points = _reliability_points(curve) if isinstance(curve, Mapping) else []
        if points:
            ece = ece if is_number(ece) else _ece(points)
            curves.append((name, points, ece, color))
    if not curves:
        return None
    with _style():
        fig = _figure(5.8, 5.4)
        ax, ax_count = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        ax.plot([0, 1], [0, 1], linestyle="--", color="#9ca3af", linewidth=1, label="perfectly calibrated")
        width = 0.8 / max(10, len(curves[0][1])) / len(curves)
        for k, (name, points, ece, color) in enumerate(curves):
            conf, acc, count, centre = zip(*points)
            ax.plot(conf, acc, "o-", color=color, linewidth=1.8, markersize=5,
                    label=f"{name} calibration (ECE {ece:.3f})")
            offset = (k - (len(curves) - 1) / 2) * width
            ax_count.bar([c + offset for c in centre], count, width=width, color=color, alpha=0.6)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title("Reliability diagram", loc="left")
        ax.legend(loc="upper left")
        ax_count.set_ylabel("count")
        ax_count.set_xlabel("confidence")
        return _encode(fig)


def _lc_axis(points: Sequence[CurvePoint]) -> tuple[list[float], list[str]]:
    """x positions (total training examples) and tick labels (with the size per class, or the size's name)."""
    xs = [float(p.n_train) for p in points]
    labels = [f"{x:.0f}\n({p.size}/class)" if is_number(p.size) else f"{x:.0f}\n({p.size})" for x, p in zip(xs, points)]
    return xs, labels


def _band(point: CurvePoint) -> tuple[float, float]:
    if is_number(point.ci_low) and is_number(point.ci_high):
        return point.ci_low, point.ci_high
    std = point.std if is_number(point.std) else 0.0
    return point.mean - std, point.mean + std


def learning_curve_plot(lc: LearningCurve | Mapping[str, Any]) -> str | None:
    """Mean metric against training size (log x) with a CI band, one line per strategy.

    Args:
        lc: the results' learning curve (``metric``, ``points``: name → list of
            ``{size, n_train, mean, std, ci_low, ci_high}``).
    """
    lc = _record(LearningCurve, lc)
    metric = lc.metric or "metric"
    series = {}
    for name, points in lc.points.items():
        points = [p for p in points if is_number(p.mean)]
        if points:
            xs, labels = _lc_axis(points)
            series[name] = sorted(zip(xs, labels, points), key=lambda t: t[0])
    if not series:
        return None
    with _style():
        fig = _figure(7.5, 4.2)
        ax = fig.add_subplot()
        ticks: dict[float, str] = {}
        for i, (name, triples) in enumerate(series.items()):
            color = PALETTE[i % len(PALETTE)]
            xs = [x for x, _, _ in triples]
            lows, highs = zip(*(_band(p) for _, _, p in triples))
            ax.fill_between(xs, lows, highs, color=color, alpha=0.15, linewidth=0)
            ax.plot(xs, [p.mean for _, _, p in triples], "o-", color=color, linewidth=1.8,
                    markersize=4, label=name)
            for x, label, _ in triples:
                ticks.setdefault(x, label)
        ax.set_xscale("log")
        ax.set_xticks(list(ticks), list(ticks.values()))
        ax.minorticks_off()
        ax.set_xlabel("training examples (log scale)")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(f"Learning curve: {metric_label(metric)} against training size", loc="left")
        ax.legend(loc="lower right")
        return _encode(fig)


def slices_plot(slices: Iterable[SliceResult | Mapping[str, Any]], metric: str | None = None) -> str | None:
    """Metric per slice with CI bars; flagged slices in red, overall as a dashed line.

    ``slices``: rows of :func:`graftlab.evaluation.slice_metrics` (``slice_column``, ``slice`` = the slice's
    name, ``value`` = its metric, ``ci_low``, ``ci_high``, ``overall``, ``n``, ``flagged``)."""
    rows = [_record(SliceResult, s) for s in slices]
    rows = [s for s in rows if is_number(s.value)]
    if not rows:
        return None
    metric = metric or rows[0].metric or "metric"
    with _style():
        fig = _figure(7.5, 1.2 + 0.34 * len(rows))
        ax = fig.add_subplot()
        n = len(rows)
        for i, s in enumerate(rows):
            y = n - 1 - i
            color = _BAD if s.flagged else "#60a5fa"
            xerr = None
            if is_number(s.ci_low) and is_number(s.ci_high):
                xerr = [[max(0.0, s.value - s.ci_low)], [max(0.0, s.ci_high - s.value)]]
            ax.barh(y, s.value, xerr=xerr, color=color, height=0.6,
                    error_kw={"ecolor": "#374151", "capsize": 3, "linewidth": 1})
        overall = {s.overall for s in rows if is_number(s.overall)}
        for value in overall:
            ax.axvline(value, color="#111827", linestyle="--", linewidth=1)
        if overall:
            from matplotlib.lines import Line2D
            from matplotlib.patches import Patch

            handles = [Line2D([], [], color="#111827", linestyle="--", linewidth=1, label="overall")]
            if any(s.flagged for s in rows):
                handles.append(Patch(color=_BAD, label="flagged"))
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        labels = [f"{slice_name(s)} (n={s.n})" for s in reversed(rows)]
        ax.set_yticks(range(n), labels)
        ax.set_ylim(-0.7, n - 0.3)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(metric_label(metric))
        ax.set_title(f"{metric_label(metric)} by slice", loc="left")
        return _encode(fig)


def bakeoff_plot(bakeoff: Bakeoff | Mapping[str, Any]) -> str | None:
    """Bake-off candidates: score (y) against latency at batch 1 (x, log scale); the winner ringed,
    excluded candidates hollow, error bars the probe's fold-to-fold spread."""
    bakeoff = _record(Bakeoff, bakeoff)
    rows = [c for c in bakeoff.candidates if is_number(c.score) and is_number(c.latency_ms_b1)]
    if not rows:
        return None
    score = bakeoff.score or "score"
    labels = {"probe_cv": "probe CV accuracy", "logme": "LogME evidence", "finetune": "val accuracy after a short fine-tune"}
    with _style():
        fig = _figure(6.0, 3.2)
        ax = fig.add_subplot()
        for i, c in enumerate(rows):
            color = PALETTE[i % len(PALETTE)]
            yerr = c.probe_cv_std if score == "probe_cv" and is_number(c.probe_cv_std) else None
            ax.errorbar(c.latency_ms_b1, c.score, yerr=yerr, fmt="o", markersize=8, capsize=3,
                        color=color, markerfacecolor=color if c.allowed else "white", label=c.backbone)
            if c.backbone == bakeoff.winner:
                ax.scatter([c.latency_ms_b1], [c.score], s=260, facecolors="none", edgecolors="#111827", linewidths=1.5)
            ax.annotate(c.backbone, (c.latency_ms_b1, c.score), textcoords="offset points", xytext=(8, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("latency, ms/example at batch 1 (this machine)")
        ax.set_ylabel(labels.get(score, score))
        ax.set_title("Backbone bake-off", loc="left")
        ax.margins(x=0.3, y=0.25)
        return _encode(fig)


def roc_pr_plot(curves: Sequence[ClassCurve]) -> str | None:
    """ROC (left) and precision-recall (right) curves of each class against the rest, with AUC and average
    precision in the legends; dashed: chance (the diagonal, and each class's share of the test rows)."""
    if not curves:
        return None
    ncols = 1 if len(curves) <= 8 else 2
    with _style():
        fig = _figure(9.0, 3.8 + 0.12 * max(0, len(curves) - 8))
        roc, pr = fig.subplots(1, 2)
        roc.plot([0, 1], [0, 1], linestyle="--", color="#9ca3af", linewidth=1)
        for i, c in enumerate(curves):
            color = PALETTE[i % len(PALETTE)]
            roc.plot(c.fpr, c.tpr, color=color, linewidth=1.6, label=f"{c.label} (AUC {c.auc:.3f})")
            pr.step(c.recall, c.precision, where="post", color=color, linewidth=1.6, label=f"{c.label} (AP {c.ap:.3f})")
            pr.axhline(c.prevalence, linestyle="--", color=color, linewidth=0.8, alpha=0.6)
        versus = "against the rest" if len(curves) > 1 else f"{curves[0].label} against the rest"
        for ax, title, xlabel, ylabel in ((roc, f"ROC, {versus}", "false positive rate", "true positive rate"),
                                          (pr, f"Precision-recall, {versus}", "recall", "precision")):
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_title(title, loc="left")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.legend(loc="lower right" if ax is roc else "lower left", ncols=ncols)
        return _encode(fig)
