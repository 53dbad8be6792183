"""The study report: one self-contained HTML file built only from the study's results dict.

The page works offline: CSS is inline, figures are PNGs embedded as data URIs, and there is no
JavaScript. Each section renders only when its data is in ``results``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import formatting as F
from . import plots
from .decision import build_decision, gate_summary, label_names

__all__ = ["build_context", "render_report"]

# Column order of the comparison table; other metrics follow in the order the results list them.
_METRIC_ORDER = ("accuracy", "macro_f1", "roc_auc", "log_loss", "brier", "ece")
# Tokenizer markers carry no words; they are left out of the highlighted text.
_SPECIAL_TOKENS = frozenset({"[PAD]", "[CLS]", "[SEP]", "<pad>", "<s>", "</s>"})
# An image example's PNG goes into a data URI only when it is plain base64.
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _dict(x: Any) -> dict[str, Any]:
    return dict(x) if isinstance(x, Mapping) else {}


def _list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else []


def _date(created: Any) -> str | None:
    if not created:
        return None
    try:
        when = _dt.datetime.fromisoformat(str(created))
    except ValueError:
        return str(created)
    return when.strftime("%Y-%m-%d %H:%M") + (f" {when.tzname()}" if when.tzinfo else "")


def _metric_columns(strategies: Mapping[str, Any], headline: str) -> list[str]:
    seen: list[str] = []
    for entry in strategies.values():
        for key in _dict(_dict(entry).get("test")):
            if key not in seen:
                seen.append(key)
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


def _comparison_table(results: Mapping[str, Any], winner: str | None, runner_up: str | None,
                      headline: str) -> dict[str, Any] | None:
    strategies = {n: _dict(s) for n, s in _dict(results.get("strategies")).items()}
    if not strategies:
        return None
    metrics = _metric_columns(strategies, headline)
    best = {m: _best({n: F.ci_parts(s.get("test", {}).get(m))[0] for n, s in strategies.items()}, m)
            for m in metrics}
    val = {n: _dict(s.get("val")).get(headline) for n, s in strategies.items()}
    best_val = _best(val, headline)
    rows = []
    for name, s in strategies.items():
        test, stats = _dict(s.get("test")), _dict(_dict(s.get("seed_stats")).get(headline))
        rows.append({
            "name": name,
            "kind": s.get("kind"),
            "winner": name == winner,
            "runner_up": name == runner_up,
            "cells": [_cell(test.get(m), name in best[m]) for m in metrics],
            "val": {"text": F.fmt_num(val[name]), "best": name in best_val},
            "seeds": F.fmt_pm(stats.get("mean"), stats.get("std")),
            "n_seeds": len(_list(s.get("seeds"))) or len(_list(stats.get("values"))) or None,
            "fit": F.fmt_seconds(s.get("fit_seconds")),
            "latency_b1": F.fmt_ms(s.get("latency_ms_b1")),
            "latency_b32": F.fmt_ms(s.get("latency_ms_b32")),
            "trainable": F.fmt_count(s.get("trainable_params")),
            "total": F.fmt_count(s.get("total_params")),
            "size": F.fmt_bytes(s.get("model_bytes")),
        })
    cost_keys = ("seeds", "fit", "latency_b1", "latency_b32", "trainable", "total", "size")
    return {"metrics": [{"key": m, "label": F.metric_label(m), "higher": F.higher_is_better(m)}
                        for m in metrics],
            "headline": F.metric_label(headline), "rows": rows,
            "has_cost": any(r[k] != F.MISSING for r in rows for k in cost_keys)}


def _with_reading(row: Mapping[str, Any], metric: str) -> dict[str, Any]:
    row = dict(row)
    row["reading"] = F.reading(row.get("diff"), row.get("ci_low"), row.get("ci_high"),
                               row.get("p_value"), row.get("metric") or metric)
    row["diff_ci"] = F.fmt_ci({"value": row.get("diff"), "ci_low": row.get("ci_low"),
                               "ci_high": row.get("ci_high")}, signed=True)
    return row


def _gains(results: Mapping[str, Any], metric: str) -> list[dict[str, Any]]:
    rows = []
    for name, gain in _dict(results.get("transfer_gain")).items():
        label = "over " + name.removeprefix("over_")
        if isinstance(gain, Mapping):
            rows.append({"label": label, **_with_reading(gain, metric)})
        else:
            rows.append({"label": label, "reading": "not run", "diff_ci": F.MISSING})
    return rows


def _training_histories(results: Mapping[str, Any]) -> dict[str, Any]:
    return {n: s["history"] for n, s in _dict(results.get("strategies")).items()
            if isinstance(s, Mapping) and s.get("history")}


def _calibration(results: Mapping[str, Any], winner: str | None) -> dict[str, Any] | None:
    strategies = _dict(results.get("strategies"))
    rows = [{"name": n, "winner": n == winner, **_dict(s.get("calibration"))}
            for n, s in strategies.items() if isinstance(s, Mapping) and s.get("calibration")]
    if not rows:
        return None
    cal = _dict(_dict(strategies.get(winner)).get("calibration"))
    figure = plots.reliability_diagram(cal.get("reliability_before"), cal.get("reliability_after"),
                                       cal.get("ece_before"), cal.get("ece_after")) if cal else None
    return {"rows": rows, "figure": figure, "note": cal.get("note")}


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
    """Whole words as written in ``e['text']`` (casing and spacing kept) when the explanation has them."""
    text, words, scores, offsets = e.get("text"), _list(e.get("words")), _list(e.get("word_attributions")), \
        _list(e.get("word_spans"))
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


def _explanations(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The explained texts, with their highlighted words."""
    items = []
    for e in _list(results.get("explanations")):
        e = _dict(e)
        if _is_image_example(e):
            continue
        tokens, attributions = _list(e.get("tokens")), _list(e.get("attributions"))
        spans = _word_spans(e) or (_token_spans(tokens, attributions) if tokens else None)
        items.append({**e, "spans": spans})
    return items


def _patches_text(patches: list[Any]) -> str:
    """``(row, col) +score`` of each patch, comma-separated."""
    cells = [_dict(p) for p in patches]
    return ", ".join(f"({p.get('row')}, {p.get('col')}) {p['score']:+.2f}" for p in cells if F.is_number(p.get("score")))


def _image_explanations(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The explained images as cards: the heatmap PNG (when it is base64) and the strongest patches as hover text."""
    cards = []
    for e in _list(results.get("explanations")):
        e = _dict(e)
        if not _is_image_example(e):
            continue
        png = e.get("image_png")
        top = _dict(e.get("top_patches"))
        pos, neg = _patches_text(_list(top.get("for"))), _patches_text(_list(top.get("against")))
        hover = "; ".join(f"{name}: {cells}" for name, cells in (("strongest for", pos), ("against", neg)) if cells)
        cards.append({**e, "png": png if isinstance(png, str) and _BASE64.fullmatch(png) else None,
                      "hover": hover + " — patches as (row, column) from the top left" if hover else ""})
    return cards


def _class_tokens(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per class, its most associated words as chips shaded by score (``results['class_tokens']``)."""
    out = []
    for label, items in _dict(results.get("class_tokens")).items():
        items = [_dict(i) for i in _list(items) if _dict(i).get("token") is not None]
        scale = max((abs(i["score"]) for i in items if F.is_number(i.get("score"))), default=0.0) or 1.0
        chips = []
        for i in items:
            score = i["score"] if F.is_number(i.get("score")) else 0.0
            alpha = 0.12 + 0.6 * abs(score) / scale
            title = f"score {score:.2f}" + (f"; in {i['count']} texts" if i.get("count") is not None else "")
            if F.is_number(i.get("share")):
                title += f"; mean p({label}) {i['share']:.2f}"
            chips.append({"text": str(i["token"]), "title": title,
                          "style": f"background-color: rgba(220, 38, 38, {alpha:.2f});"})
        if chips:
            out.append({"label": label, "tokens": chips})
    return out


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, Mapping):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", F.fmt_num(v, 1) if F.is_number(v) and not isinstance(v, int) else v))
    return out


def _data(results: Mapping[str, Any]) -> dict[str, Any] | None:
    data = _dict(results.get("data"))
    if not data:
        return None
    splits = _dict(data.get("splits"))
    counts = _dict(data.get("class_counts"))
    labels = [str(x) for x in _list(data.get("label_names"))]
    for per_split in counts.values():
        labels += [str(k) for k in _dict(per_split) if str(k) not in labels]
    split_names = list(dict.fromkeys(list(splits) + list(counts)))
    time_order = _dict(_dict(data.get("summary")).get("time_order"))
    ranges = _dict(time_order.get("ranges"))
    return {
        "fingerprint": data.get("fingerprint"),
        "labels": labels,
        "time_order": time_order.get("column"),
        "splits": [{"name": s, "n": splits.get(s, F.MISSING),
                    "counts": [_dict(counts.get(s)).get(lbl, F.MISSING) for lbl in labels],
                    "period": F.fmt_period(ranges.get(s))}
                   for s in split_names],
        "checks": [_dict(c) for c in _list(data.get("checks"))],
        "length_stats": _flatten(_dict(data.get("length_stats"))),
    }


def _config_yaml(config: Any) -> str | None:
    if not config:
        return None
    import yaml

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)


def build_context(results: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the template needs, computed from ``results``; absent sections are ``None``/empty."""
    decision = build_decision(results)
    headline = decision["headline_metric"]
    winner, runner_up = decision["winner"], decision["runner_up"]
    strategies = _dict(results.get("strategies"))
    winner_entry = _dict(strategies.get(winner))
    comparisons = [_with_reading(_dict(c), headline) for c in _list(results.get("comparisons"))]
    lc = _dict(results.get("learning_curve"))
    slices = [_dict(s) for s in _list(results.get("slices"))]
    cm = winner_entry.get("confusion_matrix")
    labels = label_names(results, winner_entry)
    bakeoff = _dict(results.get("bakeoff"))
    ctx = {
        "study": results.get("study") or "study",
        "run_id": results.get("run_id"),
        "date": _date(results.get("created")),
        "version": results.get("graftlab_version"),
        "headline": headline,
        "headline_label": F.metric_label(headline),
        "backbone": _dict(results.get("backbone")),
        "decision": decision,
        "gates": gate_summary(results),
        "comparison": _comparison_table(results, winner, runner_up, headline),
        "failed": decision["failed"],
        "gains": _gains(results, headline),
        "comparisons": comparisons,
        "forest": plots.forest_plot(comparisons, headline) if comparisons else None,
        "training": plots.training_curves(_training_histories(results), f"val_{headline}"),
        "confusion": plots.confusion_matrix_plot(cm, labels, f"Confusion matrix: {winner}") if cm else None,
        "per_class": _dict(winner_entry.get("per_class")),
        "calibration": _calibration(results, winner),
        "slices": slices,
        "slices_figure": plots.slices_plot(slices) if slices else None,
        "robustness": [_dict(r) for r in _list(results.get("robustness"))],
        "learning_curve": {"figure": plots.learning_curve_plot(lc), "reading": lc.get("reading"),
                           "metric": F.metric_label(lc.get("metric") or headline),
                           "failed": [_dict(f) for f in _list(lc.get("failed"))]} if lc else None,
        "bakeoff": bakeoff if _list(bakeoff.get("candidates")) else None,
        "bakeoff_figure": plots.bakeoff_plot(bakeoff) if _list(bakeoff.get("candidates")) else None,
        # a variant that could not run has its error instead of a paired difference
        "ablation": [a if "error" in a else _with_reading(a, headline) for a in map(_dict, _list(results.get("ablation")))],
        "explanations": _explanations(results),
        "image_explanations": _image_explanations(results),
        "class_tokens": _class_tokens(results),
        "explanations_error": str(results.get("explanations_error") or ""),
        "data": _data(results),
        "environment": _dict(results.get("environment")),
        "config_yaml": _config_yaml(results.get("config")),
        "timings": _dict(results.get("timings")),
    }
    ctx["sections"] = _sections(ctx)
    return ctx


def _sections(ctx: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(anchor, title) of the sections that will render, in page order, for the contents bar."""
    present = [
        ("decision", "Decision", True),
        ("comparison", "Comparison", ctx["comparison"]),
        ("paired", "Paired tests", ctx["gains"] or ctx["comparisons"]),
        ("training", "Training", ctx["training"]),
        ("confusion", "Confusion", ctx["confusion"] or ctx["per_class"]),
        ("calibration", "Calibration", ctx["calibration"]),
        ("slices", "Slices", ctx["slices"]),
        ("robustness", "Robustness", ctx["robustness"]),
        ("learning-curve", "Learning curve", ctx["learning_curve"]),
        ("bakeoff", "Bake-off", ctx["bakeoff"]),
        ("ablation", "Ablation", ctx["ablation"]),
        ("explanations", "Explanations", ctx["explanations"] or ctx["image_explanations"] or ctx["class_tokens"]
                                                    or ctx["explanations_error"]),
        ("data", "Data", ctx["data"]),
        ("reproduce", "Reproduce", ctx["environment"] or ctx["config_yaml"] or ctx["backbone"]),
    ]
    return [(anchor, title) for anchor, title, shown in present if shown]


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("graftlab.reporting", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=F.fmt_num, share=F.fmt_share, ci=F.fmt_ci, p=F.fmt_p, pm=F.fmt_pm, signed=F.fmt_signed,
        count=F.fmt_count, bytes=F.fmt_bytes, ms=F.fmt_ms, secs=F.fmt_seconds,
        metric=F.metric_label, slice_name=F.slice_name, short=lambda s, n=12: str(s)[:n] if s else F.MISSING,
    )
    env.globals["MISSING"] = F.MISSING
    return env


def render_report(results: Mapping[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` from a study's results dict and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = _environment().get_template("report.html.j2").render(**build_context(results))
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
