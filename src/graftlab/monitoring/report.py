"""The monitoring report: a JSON record and one self-contained HTML page (PNG plots inlined as base64), rendered
from ``templates/monitor.html.j2`` with the study report's stylesheet.

Figures are drawn on an explicit Agg canvas (no pyplot, no global matplotlib state); the page loads
nothing from the network.
"""

from __future__ import annotations

import base64
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import save_json, strict_json
from ..core.pages import page_environment

__all__ = ["MONITOR_HTML", "MONITOR_JSON", "plots", "render_html", "timeline", "write_report"]

MONITOR_JSON, MONITOR_HTML = "monitor.json", "monitor.html"
_PALETTE = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#db2777", "#4b5563"]
_RC = {"font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.spines.top": False,
       "axes.spines.right": False, "axes.grid": True, "grid.color": "#e5e7eb", "legend.frameon": False,
       "legend.fontsize": 8}


def timeline(ts: np.ndarray, confidence: np.ndarray, predicted: list[str], label_names: list[str],
             correct: np.ndarray, words: np.ndarray | None, brightness: np.ndarray | None = None,
             n_buckets: int = 12) -> list[dict[str, Any]]:
    """Per time bucket (equal widths over the window): requests, mean confidence, class shares, words per input
    (text models) or mean image brightness (image models), and accuracy over the requests that have feedback
    (``correct`` is NaN where there is none)."""
    if len(ts) == 0:
        return []
    lo, hi = float(ts.min()), float(ts.max())
    n_buckets = max(1, min(n_buckets, len(ts) // 5 or 1))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, n_buckets + 1)
    which = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, n_buckets - 1)
    pred = np.asarray(predicted, dtype=object)
    out = []
    for b in range(n_buckets):
        sel = which == b
        if not sel.any():
            continue
        labeled = sel & ~np.isnan(correct)
        out.append({
            "start": float(edges[b]), "end": float(edges[b + 1]), "n": int(sel.sum()),
            "confidence_mean": float(confidence[sel].mean()),
            "class_share": {n: float(np.mean(pred[sel] == n)) for n in label_names},
            "words_mean": float(words[sel].mean()) if words is not None else None,
            "brightness_mean": float(brightness[sel].mean()) if brightness is not None else None,
            "n_labeled": int(labeled.sum()),
            "accuracy": float(correct[labeled].mean()) if labeled.any() else None,
        })
    return out


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _encode(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _times(buckets: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromtimestamp((b["start"] + b["end"]) / 2, UTC) for b in buckets]


def _over_time(buckets: list[dict[str, Any]], key: str, title: str, ylabel: str, reference: float | None) -> str | None:
    points = [(t, b[key]) for t, b in zip(_times(buckets), buckets, strict=True) if b.get(key) is not None]
    if not points:
        return None
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 2.6)
        ax = fig.add_subplot()
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color=_PALETTE[0], label="live")
        if reference is not None:
            ax.axhline(reference, color="#111827", linestyle="--", linewidth=1, label="reference")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.legend(loc="best")
        fig.autofmt_xdate()
        return _encode(fig)


def _class_share(buckets: list[dict[str, Any]], label_names: list[str], reference_share: list[float] | None) -> str | None:
    if not buckets:
        return None
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 2.6)
        ax = fig.add_subplot()
        times = _times(buckets)
        for i, name in enumerate(label_names):
            color = _PALETTE[i % len(_PALETTE)]
            ax.plot(times, [b["class_share"][name] for b in buckets], "o-", color=color, label=name)
            if reference_share is not None:
                ax.axhline(reference_share[i], color=color, linestyle="--", linewidth=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title("Predicted-class share per time bucket (dashed: reference)")
        ax.legend(loc="best", ncols=min(4, len(label_names)))
        fig.autofmt_xdate()
        return _encode(fig)


def _confidence_hist(reference: list[float], live: list[float]) -> str | None:
    if not reference or not live:
        return None
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 2.6)
        ax = fig.add_subplot()
        bins = np.linspace(min(min(reference), min(live)), 1.0, 21)
        ax.hist(reference, bins=bins, density=True, alpha=0.5, color="#6b7280", label="reference (validation)")
        ax.hist(live, bins=bins, density=True, alpha=0.5, color=_PALETTE[0], label="live")
        ax.set_title("Top-class confidence")
        ax.legend(loc="upper left")
        return _encode(fig)


def _p_values(tests: list[dict[str, Any]], alpha: float) -> str | None:
    used = [t for t in tests if t.get("available")]
    if not used:
        return None
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 0.8 + 0.35 * len(used))
        ax = fig.add_subplot()
        values = [-math.log10(max(t["p_adjusted"], 1e-300)) for t in used]
        colors = ["#dc2626" if t["rejected"] else "#059669" for t in used]
        ax.barh(range(len(used)), values, color=colors)
        ax.axvline(-math.log10(alpha), color="#111827", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(used)), [t["name"] for t in used])
        ax.invert_yaxis()
        ax.set_xlabel("-log10(Holm-adjusted p); right of the dashed line = drift")
        ax.set_title("Drift tests")
        return _encode(fig)


def plots(report: dict[str, Any], reference_confidences: list[float], live_confidences: list[float]) -> dict[str, str]:
    """Every figure of the page that has something to show, as base64 PNG strings."""
    buckets = report["timeline"]
    names = report["model"]["label_names"]
    ref = report.get("reference") or {}
    val_acc = (ref.get("val_metrics") or {}).get("accuracy")
    candidates = {
        "drift_tests": _p_values(report["drift"]["tests"], report["drift"]["alpha"]),
        "confidence_over_time": _over_time(buckets, "confidence_mean", "Mean confidence per time bucket", "confidence",
                                           ref.get("confidence_mean")),
        "class_share_over_time": _class_share(buckets, names, ref.get("predicted_share")),
        "accuracy_over_time": _over_time(buckets, "accuracy", "Live accuracy (requests with feedback) per time bucket",
                                         "accuracy", val_acc),
        "words_over_time": _over_time(buckets, "words_mean", "Words per input per time bucket", "words",
                                      ref.get("words_mean")),
        "brightness_over_time": _over_time(buckets, "brightness_mean", "Mean image brightness per time bucket",
                                           "brightness (0-1)", ref.get("brightness_mean")),
        "confidence_histogram": _confidence_hist(reference_confidences, live_confidences),
    }
    return {k: v for k, v in candidates.items() if v is not None}


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.2e}" if x != 0 and abs(x) < 10 ** -digits else f"{x:.{digits}f}"
    return str(x)


# Each figure's name on the page (its alt text), by the key plots() gives it.
_TITLES = {"drift_tests": "Drift tests", "confidence_over_time": "Confidence over time",
           "class_share_over_time": "Predicted classes over time", "accuracy_over_time": "Accuracy over time",
           "words_over_time": "Input length over time", "brightness_over_time": "Brightness over time",
           "confidence_histogram": "Confidence distribution"}


def render_html(report: dict[str, Any], figures: dict[str, str]) -> str:
    """The report as one HTML page without any external resource, in the study report's styles."""
    env = page_environment(__package__)
    env.filters["num"] = _fmt
    perf = report["performance"]
    return env.get_template("monitor.html.j2").render(
        report=report, model=report["model"], window=report["window"], drift=report["drift"], performance=perf,
        comparison=perf.get("comparison") or {}, notes=report.get("notes", []),
        figures=[(_TITLES.get(key, key), png) for key, png in figures.items()],
    )


def write_report(report: dict[str, Any], figures: dict[str, str] | None, out_dir: str | Path) -> dict[str, Path]:
    """Write ``monitor.json`` and, unless ``figures`` is None, ``monitor.html`` into ``out_dir`` (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = strict_json(report)
    json_path = save_json(report, out / MONITOR_JSON)
    json.loads(json_path.read_text())  # a report that cannot be read back is a bug: fail here, not in retrain
    if figures is None:
        return {"json": json_path}
    html_path = out / MONITOR_HTML
    html_path.write_text(render_html(report, figures), encoding="utf-8")
    return {"json": json_path, "html": html_path}
