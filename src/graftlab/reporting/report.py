"""The study report: one self-contained HTML file built from the study's results (and, from its run folder, the
chosen model's test predictions and misclassified examples).

The page works offline: CSS is inline, figures are PNGs embedded as data URIs, and there is no
JavaScript. Each section renders only when the results hold its data.
"""

from __future__ import annotations

import base64
import datetime as _dt
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..core.pages import page_environment
from ..core.results import AblationRow, DataSection, PairedDiff, Record, StrategySummary, StudyResults, as_results
from . import formatting as F
from . import plots
from .decision import build_decision
from .predictions import TEST_ERRORS_CSV, class_curves, read_test_errors, shipped_test_predictions

__all__ = ["build_context", "render_report"]

R = TypeVar("R", bound=Record)

# Column order of the comparison table; other metrics follow in the order the results list them.
_METRIC_ORDER = ("accuracy", "macro_f1", "roc_auc", "log_loss", "brier", "ece")
# Tokenizer markers carry no words; they are left out of the highlighted text.
_SPECIAL_TOKENS = frozenset({"[PAD]", "[CLS]", "[SEP]", "<pad>", "<s>", "</s>"})
# A larger test_errors.csv is only linked: embedded as well, it would grow the page by 4/3 of its size.
_EMBED_LIMIT = 5 * 2**20
# The most confident errors listed on the page (the file holds them all).
_ERRORS_SHOWN = 10
# An image example's PNG goes into a data URI only when it is plain base64.
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# The contents bar in page order: (anchor, title, the context entries of which any makes the section render).
_SECTIONS = (
    ("decision", "Decision", ("decision",)),
    ("comparison", "Comparison", ("comparison",)),
    ("paired", "Paired tests", ("gains", "comparisons")),
    ("training", "Training", ("training",)),
    ("confusion", "Confusion", ("confusion", "per_class", "test_errors")),
    ("curves", "ROC / PR", ("curves",)),
    ("calibration", "Calibration", ("calibration",)),
    ("slices", "Slices", ("slices",)),
    ("robustness", "Robustness", ("robustness",)),
    ("learning-curve", "Learning curve", ("learning_curve",)),
    ("bakeoff", "Bake-off", ("bakeoff",)),
    ("ablation", "Ablation", ("ablation",)),
    ("explanations", "Explanations", ("explanations", "image_explanations", "class_tokens", "explanations_error")),
    ("data", "Data", ("data",)),
    ("reproduce", "Reproduce", ("environment", "config_yaml", "backbone")),
)


def _recorded(record: R) -> R | None:
    """The section when the study recorded it; None when it holds only its defaults."""
    return record if record.model_fields_set else None


def _date(created: str | None) -> str | None:
    if not created:
        return None
    try:
        when = _dt.datetime.fromisoformat(created)
    except ValueError:
        return created
    return when.strftime("%Y-%m-%d %H:%M") + (f" {when.tzname()}" if when.tzinfo else "")


def _metric_columns(strategies: Iterable[StrategySummary], headline: str) -> list[str]:
    seen = list(dict.fromkeys(metric for s in strategies for metric in s.test))
    preferred = [headline] + [m for m in _METRIC_ORDER if m != headline]
    return [m for m in preferred if m in seen] + [m for m in seen if m not in preferred]


def _best(values: dict[str, Any], metric: str) -> set[str]:
    """Names whose value is best in the column (ties at the displayed precision all count)."""
    numbers = {n: round(v, 3) for n, v in values.items() if F.is_number(v)}
    if len(numbers) < 2:
        return set()
    target = max(numbers.values()) if F.higher_is_better(metric) else min(numbers.values())
    return {n for n, v in numbers.items() if v == target}


def _cell(entry: Any, best: bool) -> dict[str, Any]:
    """A metric cell: the value, and its CI shown beneath it (the text reads ``0.812 [0.790, 0.830]``)."""
    value, low, high = F.ci_parts(entry)
    ci = f"[{F.fmt_num(low)}, {F.fmt_num(high)}]" if F.is_number(low) and F.is_number(high) else ""
    return {"value": F.fmt_num(value), "ci": ci if F.is_number(value) else "", "best": best}


def _costs(s: StrategySummary, headline: str) -> dict[str, str]:
    """A strategy's cells in the "Stability and cost" table: the headline metric over seeds, fit time, latency, size."""
    stats = s.seed_stats.get(headline)
    return {
        "seeds": F.fmt_pm(stats.mean, stats.std) if stats else F.MISSING,
        "fit": F.fmt_seconds(s.fit_seconds),
        "latency_b1": F.fmt_ms(s.latency_ms_b1),
        "latency_b32": F.fmt_ms(s.latency_ms_b32),
        "trainable": F.fmt_count(s.trainable_params),
        "total": F.fmt_count(s.total_params),
        "size": F.fmt_bytes(s.model_bytes),
    }


def _comparison_table(results: StudyResults) -> dict[str, Any]:
    """Every strategy's test metrics with their CIs (best per column marked), validation score, stability and cost."""
    strategies, headline = results.strategies, results.headline_metric
    metrics = _metric_columns(strategies.values(), headline)
    best = {m: _best({n: F.ci_parts(s.score(m))[0] for n, s in strategies.items()}, m) for m in metrics}
    val = {n: s.val.get(headline) for n, s in strategies.items()}
    best_val = _best(val, headline)
    costs = {n: _costs(s, headline) for n, s in strategies.items()}
    rows = []
    for name, s in strategies.items():
        stats = s.seed_stats.get(headline)
        rows.append({
            "name": name,
            "kind": s.kind,
            "winner": name == results.winner,
            "cells": [_cell(s.score(m), name in best[m]) for m in metrics],
            "val": {"text": F.fmt_num(val[name]), "best": name in best_val},
            "n_seeds": len(s.seeds) or (len(stats.values) if stats else 0) or None,
            **costs[name],
        })
    return {"metrics": [{"key": m, "label": F.metric_label(m), "higher": F.higher_is_better(m)} for m in metrics],
            "headline": F.metric_label(headline), "rows": rows,
            "has_cost": any(text != F.MISSING for cells in costs.values() for text in cells.values())}


def _reading(row: PairedDiff | AblationRow, metric: str) -> str:
    """Plain words for a paired difference, on its own metric when it names one, else on ``metric``."""
    return F.reading(row.diff, row.ci_low, row.ci_high, row.p_value, row.metric or metric)


def _diff_ci(row: PairedDiff | AblationRow) -> str:
    """A paired difference with its CI, signed: ``+0.058 [+0.031, +0.084]``."""
    return F.fmt_ci({"value": row.diff, "ci_low": row.ci_low, "ci_high": row.ci_high}, signed=True)


def _calibration(results: StudyResults) -> dict[str, Any] | None:
    """Each calibrated strategy's temperature and ECE, and the chosen model's reliability diagram."""
    rows = [(name, s.calibration) for name, s in results.strategies.items() if s.calibration]
    if not rows:
        return None
    cal = results.champion.calibration
    if cal is None:
        return {"rows": rows, "figure": None, "note": None}
    return {"rows": rows, "note": cal.note,
            "figure": plots.reliability_diagram(cal.reliability_before, cal.reliability_after, cal.ece_before,
                                                cal.ece_after)}


def _token_spans(tokens: list[Any], attributions: list[Any]) -> list[dict[str, Any]]:
    """Tokens with inline colours: red for positive attribution, blue for negative."""
    scale = max((abs(a) for a in attributions if F.is_number(a)), default=0.0) or 1.0
    spans = []
    for i, token in enumerate(tokens):
        text = str(token)
        if text in _SPECIAL_TOKENS:
            continue
        a = attributions[i] if i < len(attributions) and F.is_number(attributions[i]) else 0.0
        space = i > 0
        if text.startswith("##"):  # WordPiece continuation
            text, space = text[2:], False
        elif text[:1] in ("▁", "Ġ"):  # SentencePiece / byte-level BPE word start
            text = text[1:]
        spans.append(_span(text, a, scale, space))
    return spans


def _span(text: str, a: float, scale: float, space: bool) -> dict[str, Any]:
    alpha = 0.85 * abs(a) / scale
    rgb = "220, 38, 38" if a > 0 else "37, 99, 235"
    return {"text": text, "space": space, "title": f"{a:+.3f}",
            "style": f"background-color: rgba({rgb}, {alpha:.2f});" + (" color: #fff;" if alpha > 0.55 else "")}


def _word_spans(e: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Whole words as written in the example's text (casing and spacing kept) when the explanation has them."""
    text, words = e.get("text"), e.get("words") or []
    scores, offsets = e.get("word_attributions") or [], e.get("word_spans") or []
    if not isinstance(text, str) or not words or not (len(words) == len(scores) == len(offsets)):
        return None
    if not all(isinstance(o, (list, tuple)) and len(o) == 2 and all(isinstance(x, int) for x in o) and o[1] > o[0]
               for o in offsets):
        return None
    scores = [a if F.is_number(a) else 0.0 for a in scores]
    scale = max((abs(a) for a in scores), default=0.0) or 1.0
    spans = [_span(text[o[0]:o[1]], a, scale, prev is not None and o[0] > prev[1])
             for a, o, prev in zip(scores, offsets, [None, *offsets[:-1]], strict=True)]
    if e.get("truncated"):
        spans.append({"text": "…", "space": True, "style": "", "title": "cut here: the model reads no further"})
    return spans


def _is_image_example(e: Mapping[str, Any]) -> bool:
    """An explained image (a heatmap PNG or a patch grid) rather than a text."""
    return "image_png" in e or ("grid" in e and "tokens" not in e)


def _explanations(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The explained texts, with their highlighted words."""
    items = []
    for e in examples:
        if _is_image_example(e):
            continue
        tokens = e.get("tokens") or []
        spans = _word_spans(e) or (_token_spans(tokens, e.get("attributions") or []) if tokens else None)
        items.append({**e, "spans": spans})
    return items


def _patches_text(patches: list[dict[str, Any]]) -> str:
    """``(row, col) +score`` of each patch, comma-separated."""
    cells = [(p.get("row"), p.get("col"), p.get("score")) for p in patches]
    return ", ".join(f"({row}, {col}) {score:+.2f}" for row, col, score in cells if F.is_number(score))


def _image_explanations(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The explained images as cards: the heatmap PNG (when it is base64) and the strongest patches as hover text."""
    cards = []
    for e in examples:
        if not _is_image_example(e):
            continue
        png, top = e.get("image_png"), e.get("top_patches") or {}
        pos, neg = _patches_text(top.get("for") or []), _patches_text(top.get("against") or [])
        hover = "; ".join(f"{name}: {cells}" for name, cells in (("strongest for", pos), ("against", neg)) if cells)
        cards.append({**e, "png": png if isinstance(png, str) and _BASE64.fullmatch(png) else None,
                      "hover": hover + " — patches as (row, column) from the top left" if hover else ""})
    return cards


def _class_tokens(class_tokens: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per class, its most associated words as chips shaded by score."""
    out = []
    for label, items in class_tokens.items():
        # (token, score, count, share) of each word the explainer scored
        words = [(i.get("token"), i.get("score"), i.get("count"), i.get("share")) for i in items]
        words = [(token, score if F.is_number(score) else 0.0, count, share)
                 for token, score, count, share in words if token is not None]
        scale = max((abs(score) for _, score, _, _ in words), default=0.0) or 1.0
        chips = []
        for token, score, count, share in words:
            alpha = 0.12 + 0.6 * abs(score) / scale
            title = f"score {score:.2f}" + (f"; in {count} texts" if count is not None else "")
            if F.is_number(share):
                title += f"; mean p({label}) {share:.2f}"
            chips.append({"text": str(token), "title": title,
                          "style": f"background-color: rgba(220, 38, 38, {alpha:.2f});"})
        if chips:
            out.append({"label": label, "tokens": chips})
    return out


def _curves(results: StudyResults, run_dir: Path | None) -> dict[str, Any] | None:
    """The chosen model's ROC and precision-recall curves per class, from its shipped seed's test predictions in the
    run folder."""
    found = shipped_test_predictions(run_dir, results) if run_dir is not None else None
    curves = class_curves(found[0], found[1], results.label_names) if found else []
    if not curves:
        return None
    return {"figure": plots.roc_pr_plot(curves), "rows": curves, "seed": found[2]}


def _test_errors(run_dir: Path | None) -> dict[str, Any] | None:
    """The misclassified test examples the study wrote next to the report: their count, the most confident ones, and
    the file as a data URI so the page alone can hand it over."""
    found = read_test_errors(run_dir) if run_dir is not None else None
    if found is None:
        return None
    table, raw = found
    uri = "data:text/csv;base64," + base64.b64encode(raw).decode("ascii") if len(raw) <= _EMBED_LIMIT else None
    return {"n": len(table), "file": TEST_ERRORS_CSV, "data_uri": uri, "columns": list(table.columns),
            "rows": table.head(_ERRORS_SHOWN).to_dict("records")}


def _data(data: DataSection) -> dict[str, Any]:
    """The splits with their class counts (and periods, when split by time) and the data checks."""
    labels = list(data.label_names)
    for per_split in data.class_counts.values():
        labels += [str(k) for k in per_split if str(k) not in labels]
    time_order = data.summary.get("time_order") or {}
    ranges = time_order.get("ranges") or {}
    return {
        "fingerprint": data.fingerprint,
        "labels": labels,
        "time_order": time_order.get("column"),
        "splits": [{"name": s, "n": data.splits.get(s, F.MISSING),
                    "counts": [data.class_counts.get(s, {}).get(lbl, F.MISSING) for lbl in labels],
                    "period": F.fmt_period(ranges.get(s))}
                   for s in dict.fromkeys([*data.splits, *data.class_counts])],
        "checks": data.checks,
    }


def _config_yaml(config: dict[str, Any]) -> str | None:
    if not config:
        return None
    import yaml

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)


def build_context(results: StudyResults | Mapping[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """Everything the template needs, computed from ``results`` (and the predictions and test errors the study wrote
    in ``run_dir``, when given); absent sections are ``None``/empty."""
    results = as_results(results)
    headline, champion = results.headline_metric, results.champion
    labels = results.label_names or list(champion.per_class)
    cm, lc, slices = champion.confusion_matrix, results.learning_curve, results.slices
    bakeoff = results.bakeoff if results.bakeoff and results.bakeoff.candidates else None
    examples, data = results.explanations or [], _recorded(results.data)
    environment, backbone = _recorded(results.environment), results.backbone
    ctx = {
        "study": results.study or "study",
        "run_id": results.run_id,
        "date": _date(results.created),
        "version": results.graftlab_version,
        "headline": headline,
        "headline_label": F.metric_label(headline),
        "backbone": backbone,
        "backbone_card": list(backbone.to_dict().items()) if backbone else [],
        "decision": build_decision(results),
        "comparison": _comparison_table(results),
        "failed": list(results.failed.items()),
        "gains": [("over " + name.removeprefix("over_"), gain) for name, gain in results.transfer_gain.items()],
        "comparisons": results.comparisons,
        "forest": plots.forest_plot(results.comparisons, headline) if results.comparisons else None,
        "training": plots.training_curves({n: s.history for n, s in results.strategies.items() if s.history},
                                          f"val_{headline}"),
        "confusion": plots.confusion_matrix_plot(cm, labels, f"Confusion matrix: {results.winner}") if cm else None,
        "per_class": champion.per_class,
        "test_errors": _test_errors(run_dir),
        "curves": _curves(results, run_dir),
        "calibration": _calibration(results),
        "slices": slices,
        "slices_figure": plots.slices_plot(slices) if slices else None,
        "robustness": results.robustness if isinstance(results.robustness, list) else [],
        "learning_curve": {"figure": plots.learning_curve_plot(lc), "reading": lc.reading,
                           "metric": F.metric_label(lc.metric or headline), "failed": lc.failed} if lc else None,
        "bakeoff": bakeoff,
        "bakeoff_figure": plots.bakeoff_plot(bakeoff) if bakeoff else None,
        "ablation": results.ablation or [],
        "explanations": _explanations(examples),
        "image_explanations": _image_explanations(examples),
        "class_tokens": _class_tokens(results.class_tokens or {}),
        "explanations_error": results.explanations_error or "",
        "data": _data(data) if data else None,
        "environment": environment,
        "machine": [(k, v) for k, v in environment.to_dict().items() if k != "packages"] if environment else [],
        "config_yaml": _config_yaml(results.config),
        "timings": _recorded(results.timings),
    }
    sections = [(anchor, title) for anchor, title, shown_by in _SECTIONS if any(ctx[k] for k in shown_by)]
    return {**ctx, "sections": sections}


def _environment() -> Any:
    env = page_environment(__package__)
    env.filters.update(
        num=F.fmt_num, share=F.fmt_share, ci=F.fmt_ci, p=F.fmt_p, pm=F.fmt_pm, signed=F.fmt_signed,
        count=F.fmt_count, integer=F.fmt_int, bytes=F.fmt_bytes, ms=F.fmt_ms, secs=F.fmt_seconds,
        metric=F.metric_label, slice_name=F.slice_name, short=lambda s, n=12: str(s)[:n] if s else F.MISSING,
        reading=_reading, diff_ci=_diff_ci,
    )
    env.globals["MISSING"] = F.MISSING
    return env


def render_report(results: StudyResults | Mapping[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` from a study's results (a record or its dict) and return its path.

    When ``out_dir`` is the run folder, the chosen model's test predictions and ``test_errors.csv`` there add its ROC
    and precision-recall curves and its misclassified examples."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = _environment().get_template("report.html.j2").render(**build_context(results, out_dir))
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
