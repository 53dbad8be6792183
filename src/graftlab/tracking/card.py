"""The model card (markdown + JSON), built only from what a study recorded in ``results.json``.

Nothing in a card is written by hand: intended use and labels come from the config and the data,
license lineage from the backbone card and ``data.license``, every number from the evidence. A key a
study did not record is shown as "not recorded", never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..core.artifacts import (
    MANIFEST,
    load_json,
    save_json,
    verify_manifest,
    write_manifest,
)

__all__ = [
    "CARD_FORMAT",
    "MODEL_CARD_JSON",
    "MODEL_CARD_MD",
    "attach_model_card",
    "build_model_card",
    "card_markdown",
    "write_model_card",
]

CARD_FORMAT = "graftlab-model-card/1"
MODEL_CARD_MD = "model_card.md"
MODEL_CARD_JSON = "model_card.json"
NOT_RECORDED = "not recorded"
_TOP = 3


def _d(x: Any) -> dict[str, Any]:
    return dict(x) if isinstance(x, Mapping) else {}


def _l(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else []


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _json_safe(x: Any) -> Any:
    """NaN/inf become null so the card is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


# -- building the card ------------------------------------------------------------------------------
def _intended_use(results: Mapping[str, Any]) -> dict[str, Any]:
    cfg, data = _d(results.get("config")), _d(results.get("data"))
    dcfg = _d(cfg.get("data"))
    labels = [str(x) for x in _l(data.get("label_names"))]
    sources = [s.get("name") for s in _d(_d(data.get("summary")).get("sources")).values() if isinstance(s, Mapping)]
    return {
        "task": f"{len(labels)}-class classification of the '{dcfg.get('text', 'text')}' input into "
                f"'{dcfg.get('label', 'label')}'",
        "labels": labels,
        "trained_on": sources,
        "scope": "evaluated only on held-out rows of the data above (same fingerprint); performance on other "
                 "data is unknown until measured (see graft monitor)",
    }


def _lineage(results: Mapping[str, Any], winner_entry: Mapping[str, Any]) -> dict[str, Any]:
    bb = _d(results.get("backbone"))
    uses_backbone = winner_entry.get("kind") == "transfer"
    data_license = _d(results.get("data")).get("license") or _d(_d(results.get("config")).get("data")).get("license")
    return {
        "backbone": {k: bb.get(k) for k in ("name", "architecture", "source_package", "package_version",
                                          "weights_sha256", "license", "commercial_use", "params",
                                          "pretraining_data", "path") if k in bb} or None,
        "shipped_model_uses_backbone_weights": uses_backbone,
        "backbone_license": (bb.get("license") or NOT_RECORDED) if bb else None,
        "dataset_license": data_license or "not given in the config (data.license)",
        "note": ("the shipped weights derive from the backbone and the dataset: both licenses apply"
                 if uses_backbone else "the shipped model does not contain pretrained backbone weights; "
                 "the dataset license applies"),
    }


def _data(results: Mapping[str, Any]) -> dict[str, Any]:
    data = _d(results.get("data"))
    checks = [_d(c) for c in _l(data.get("checks"))]
    return {
        "fingerprint": data.get("fingerprint"),
        "sources": _d(data.get("summary")).get("sources"),
        "splits": data.get("splits"),
        "class_counts": data.get("class_counts"),
        "checks_not_ok": [{k: c.get(k) for k in ("name", "status", "count", "detail", "action")}
                          for c in checks if c.get("status") not in (None, "ok")],
        "checks_run": len(checks),
    }


def _metrics(entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {m: {k: _d(v).get(k) for k in ("value", "ci_low", "ci_high")} for m, v in _d(entry.get("test")).items()}


def _baselines(results: Mapping[str, Any], metric: str) -> dict[str, Any]:
    strategies = _d(results.get("strategies"))
    winner = results.get("winner")
    comps = {c.get("b"): c for c in map(_d, _l(results.get("comparisons"))) if c.get("a") == winner}
    out = {}
    for name, entry in strategies.items():
        if _d(entry).get("kind") != "baseline" or name == winner:
            continue
        c = _d(comps.get(name))
        out[name] = {
            metric: _metrics(entry).get(metric),
            "winner_minus_baseline": {k: c.get(k) for k in ("diff", "ci_low", "ci_high", "p_value")} if c else None,
        }
    return out


def _transfer_gain(results: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, c in _d(results.get("transfer_gain")).items():
        c = _d(c)
        out[key] = ({k: c.get(k) for k in ("a", "b", "metric", "diff", "ci_low", "ci_high", "p_value")}
                    if c else None)
    return out


def _slices(results: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    keys = ("slice_column", "slice", "n", "metric", "value", "ci_low", "ci_high", "diff", "flagged", "too_small")
    slices = [{k: s.get(k) for k in keys} for s in map(_d, _l(results.get("slices")))]
    ranked = sorted((s for s in slices if _finite(s.get("value")) and not s.get("too_small")),
                    key=lambda s: s["value"])
    return slices, ranked[:_TOP]


def _confused(entry: Mapping[str, Any], labels: list[str]) -> list[dict[str, Any]]:
    cm = [list(r) for r in _l(entry.get("confusion_matrix"))]
    if not cm or len(labels) != len(cm):
        return []
    pairs = [{"true": labels[i], "predicted": labels[j], "count": int(c), "share_of_true": c / max(sum(row), 1)}
             for i, row in enumerate(cm) for j, c in enumerate(row) if i != j and _finite(c) and c > 0]
    return sorted(pairs, key=lambda p: -p["count"])[:_TOP]


def _failure_modes(results: Mapping[str, Any], entry: Mapping[str, Any], labels: list[str]) -> dict[str, Any]:
    per_class = _d(entry.get("per_class"))
    weakest = sorted(((c, _d(v).get("f1")) for c, v in per_class.items() if _finite(_d(v).get("f1"))),
                     key=lambda cv: cv[1])
    return {
        "flagged_slices": [s for s in _slices(results)[0] if s.get("flagged")],
        "most_confused": _confused(entry, labels),
        "weakest_classes": [{"class": c, "f1": f} for c, f in weakest[:_TOP]],
        "robustness": _l(results.get("robustness")) or None,
    }


def build_model_card(results: Mapping[str, Any], reproduce_ref: str | None = None) -> dict[str, Any]:
    """The card as a JSON-ready dict, computed from a study's ``results``.

    Args:
        results: a study's ``results.json`` content.
        reproduce_ref: the run reference for ``graft reproduce`` (the MLflow run id); default the
            study's run id.
    """
    winner = results.get("winner")
    entry = _d(_d(results.get("strategies")).get(winner))
    metric = results.get("headline_metric") or "macro_f1"
    labels = [str(x) for x in _l(_d(results.get("data")).get("label_names"))]
    calibration = _d(entry.get("calibration"))
    gates = [_d(g) for g in _l(results.get("gates"))]
    slices, worst = _slices(results)
    ref = reproduce_ref or results.get("run_id") or "RUN_ID"
    cfg = _d(results.get("config"))
    card = {
        "format": CARD_FORMAT,
        "model": {
            "name": _d(cfg.get("tracking")).get("register_as") or results.get("study"),
            "study": results.get("study"),
            "run_id": results.get("run_id"),
            "created": results.get("created"),
            "graftlab_version": results.get("graftlab_version"),
            "strategy": winner,
            "kind": entry.get("kind"),
            "params": entry.get("params"),
            "shipped_seed": entry.get("shipped_seed"),
            "trainable_params": entry.get("trainable_params"),
            "total_params": entry.get("total_params"),
            "selection": _d(results.get("selection")).get("why"),
        },
        "intended_use": _intended_use(results),
        "license_lineage": _lineage(results, entry),
        "data": _data(results),
        "headline_metric": metric,
        "confidence": _d(cfg.get("eval")).get("confidence"),
        "seeds": entry.get("seeds"),
        "metrics": _metrics(entry),
        "baselines": _baselines(results, metric),
        "transfer_gain": _transfer_gain(results),
        "calibration": {k: calibration.get(k) for k in ("temperature", "ece_before", "ece_after")} or None,
        "slices": slices,
        "worst_slices": worst,
        "gates": {"passed": _d(results.get("exit")).get("gates_passed"), "entries": gates},
        "known_failure_modes": _failure_modes(results, entry, labels),
        "reproduce": {
            "command": f"graft reproduce {ref}",
            "run_ref": ref,
            "data_fingerprint": _d(results.get("data")).get("fingerprint"),
            "config": cfg,
        },
    }
    return _json_safe(card)


# -- markdown ---------------------------------------------------------------------------------------
def _num(x: Any) -> str:
    if not _finite(x):
        return "—"
    return f"{x:.3f}" if abs(x) < 1000 else f"{x:,.0f}"


def _ci(m: Mapping[str, Any] | None) -> str:
    m = _d(m)
    if not m:
        return "—"
    if _finite(m.get("ci_low")) and _finite(m.get("ci_high")):
        return f"{_num(m.get('value'))} [{_num(m['ci_low'])}, {_num(m['ci_high'])}]"
    return _num(m.get("value"))


def _diff(c: Mapping[str, Any] | None) -> str:
    c = _d(c)
    if not c or not _finite(c.get("diff")):
        return "—"
    p = f", p = {c['p_value']:.3g}" if _finite(c.get("p_value")) else ""
    return f"{c['diff']:+.3f} [{_num(c.get('ci_low'))}, {_num(c.get('ci_high'))}]{p}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(x) for x in r) + " |" for r in rows), ""]


def _md_head(card: Mapping[str, Any]) -> list[str]:
    m, use, lin = _d(card["model"]), _d(card["intended_use"]), _d(card["license_lineage"])
    bb = _d(lin.get("backbone"))
    lines = [f"# Model card: {m.get('name')}", "",
             (f"Generated by graftlab {m.get('graftlab_version')} from the evidence of study `{m.get('study')}`, "
              f"run `{m.get('run_id')}` ({m.get('created')}). Every number below was measured, not written by hand."),
             "",
             "## Intended use", "",
             f"- Task: {use.get('task')}", f"- Labels: {', '.join(use.get('labels') or []) or NOT_RECORDED}",
             f"- Trained on: {', '.join(map(str, use.get('trained_on') or [])) or NOT_RECORDED}",
             f"- Scope: {use.get('scope')}", "",
             "## Model", "",
             (f"- Strategy: **{m.get('strategy')}** ({m.get('kind')}), parameters {m.get('params') or {}}, "
              f"shipped seed {m.get('shipped_seed')}"),
             f"- Trainable / total parameters: {m.get('trainable_params')} / {m.get('total_params')}",
             f"- Why this one: {m.get('selection') or NOT_RECORDED}", "",
             "## Backbone and license lineage", ""]
    if bb:
        lines += [f"- Backbone: {bb.get('name')} ({bb.get('architecture')}), {bb.get('params')} parameters, "
                  f"source package {bb.get('source_package') or NOT_RECORDED} {bb.get('package_version') or ''}".rstrip(),
                  f"- Backbone weights sha256: `{bb.get('weights_sha256') or NOT_RECORDED}`",
                  f"- Pretraining data: {bb.get('pretraining_data') or NOT_RECORDED}"]
    lines += [f"- Backbone license: {lin.get('backbone_license') or 'no backbone'}",
              f"- Dataset license: {lin.get('dataset_license')}", f"- Lineage: {lin.get('note')}", ""]
    return lines


def _md_data(card: Mapping[str, Any]) -> list[str]:
    d = _d(card["data"])
    lines = ["## Data provenance", "", f"- Fingerprint (sha256): `{d.get('fingerprint')}`"]
    for key, src in _d(d.get("sources")).items():
        src = _d(src)
        lines.append(f"- {key}: {src.get('name')} ({src.get('rows')} rows, ids from {src.get('first_id')})")
    splits, counts = _d(d.get("splits")), _d(d.get("class_counts"))
    for split, n in splits.items():
        cc = ", ".join(f"{k}: {v}" for k, v in _d(counts.get(split)).items())
        lines.append(f"- {split}: {n} rows ({cc})")
    issues = d.get("checks_not_ok") or []
    lines.append(f"- Data checks: {d.get('checks_run')} run; "
                 + ("all ok" if not issues else "; ".join(f"{c['name']} {c['status']}: {c['detail']}" for c in issues)))
    return [*lines, ""]


def _md_evidence(card: Mapping[str, Any]) -> list[str]:
    conf = card.get("confidence")
    level = f"{conf:.0%}" if _finite(conf) else "bootstrap"
    lines = [f"## Test metrics ({level} CI, mean over seeds {card.get('seeds')})", ""]
    lines += _table(["metric", "value [CI]"], [[k, _ci(v)] for k, v in _d(card["metrics"]).items()])
    metric = card["headline_metric"]
    lines += ["## Baselines and transfer gain", ""]
    base = _d(card["baselines"])
    if base:
        lines += _table(["baseline", f"{metric} [CI]", "winner − baseline [CI]"],
                        [[n, _ci(b.get(metric)), _diff(b.get("winner_minus_baseline"))] for n, b in base.items()])
    else:
        lines += ["No baseline other than the winner was run.", ""]
    for key, g in _d(card["transfer_gain"]).items():
        g = _d(g)
        lines.append(f"- Transfer gain {key.replace('_', ' ')}: " + (f"{g.get('a')} − {g.get('b')} on {g.get('metric')} = "
                     f"{_diff(g)}" if g else "not measured (strategy not run)"))
    cal = _d(card["calibration"])
    lines += ["", "## Calibration", "",
              (f"- Temperature {_num(cal.get('temperature'))} (fitted on validation); ECE on test "
               f"{_num(cal.get('ece_before'))} before, {_num(cal.get('ece_after'))} after"), ""]
    return lines


def _slice_value(s: Mapping[str, Any]) -> str:
    """The slice's value without its column repeated: the automatic class slices are stored as "class=great"."""
    return str(s.get("slice")).removeprefix(f"{s.get('slice_column')}=")


def _slice_label(s: Mapping[str, Any]) -> str:
    return f"{s.get('slice_column')}: {_slice_value(s)}"


def _md_slices(card: Mapping[str, Any]) -> list[str]:
    lines = ["## Slices", ""]
    rows = [[s.get("slice_column"), _slice_value(s), s.get("n"), _ci(s), _num(s.get("diff")),
             "yes" if s.get("flagged") else ("too small" if s.get("too_small") else "")] for s in card["slices"]]
    metric = next((s.get("metric") for s in card["slices"] if s.get("metric")), "metric")
    lines += (_table(["column", "slice", "n", f"{metric} [CI]", "vs overall", "flagged"], rows) if rows
              else ["No slices measured.", ""])
    worst = card.get("worst_slices") or []
    if worst:
        lines += ["Worst slices: " + "; ".join(f"{_slice_label(s)} {_ci(s)} (n={s['n']})" for s in worst), ""]
    g = _d(card["gates"])
    verdict = {True: "PASS", False: "FAIL"}.get(g.get("passed"), NOT_RECORDED)
    lines += [f"## Gates: {verdict}", ""]
    lines += [f"- {'PASS' if e.get('passed') else 'FAIL'} `{e.get('gate')}`: {e.get('evidence')}" for e in g["entries"]]
    if not g["entries"]:
        lines.append("- no gates were declared in the config")
    return [*lines, ""]


def _md_failures(card: Mapping[str, Any]) -> list[str]:
    f = _d(card["known_failure_modes"])
    lines = ["## Known failure modes", ""]
    flagged = f.get("flagged_slices") or []
    lines.append("- Flagged slices: " + ("; ".join(f"{_slice_label(s)} {_ci(s)} ({_num(s.get('diff'))} vs overall)"
                                                  for s in flagged) or "none"))
    lines.append("- Most confused: " + ("; ".join(f"{p['true']} → {p['predicted']}: {p['count']} "
                                                 f"({p['share_of_true']:.0%} of {p['true']})" for p in f["most_confused"])
                                       or "no confusions on the test split"))
    lines.append("- Weakest classes (F1): " + (", ".join(f"{c['class']} {_num(c['f1'])}" for c in f["weakest_classes"])
                                              or NOT_RECORDED))
    for r in f.get("robustness") or []:
        lines.append(f"- Robustness: {r}")
    return [*lines, ""]


def _md_reproduce(card: Mapping[str, Any]) -> list[str]:
    r = _d(card["reproduce"])
    return ["## How to reproduce", "", "```", r["command"], "```", "",
            f"The data must have fingerprint `{r.get('data_fingerprint')}`. The run's config:", "",
            "```yaml", yaml.safe_dump(r.get("config") or {}, sort_keys=False).rstrip(), "```", ""]


def card_markdown(card: Mapping[str, Any]) -> str:
    """Render a card built by :func:`build_model_card` as markdown."""
    parts = (_md_head, _md_data, _md_evidence, _md_slices, _md_failures, _md_reproduce)
    return "\n".join(line for part in parts for line in part(card))


# -- writing ----------------------------------------------------------------------------------------
def write_model_card(results: Mapping[str, Any], out_dir: Path, reproduce_ref: str | None = None) -> tuple[Path, Path]:
    """Write ``model_card.md`` and ``model_card.json`` into ``out_dir``.

    Returns:
        (markdown path, JSON path).
    """
    out_dir = Path(out_dir)
    card = build_model_card(results, reproduce_ref)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / MODEL_CARD_MD
    md.write_text(card_markdown(card))
    return md, save_json(card, out_dir / MODEL_CARD_JSON)


def attach_model_card(results: Mapping[str, Any], run_dir: Path, reproduce_ref: str | None = None) -> list[Path]:
    """Write the card into the run folder and into its packaged model (whose manifest is then rewritten).

    The model's manifest is verified first, so a tampered file is never blessed by the new manifest.

    Returns:
        The paths written.
    """
    run_dir = Path(run_dir)
    written = list(write_model_card(results, run_dir, reproduce_ref))
    model_dir = run_dir / "model"
    if (model_dir / MANIFEST).is_file():
        verify_manifest(model_dir)
        extra = {k: v for k, v in load_json(model_dir / MANIFEST).items() if k not in ("format", "files")}
        written += write_model_card(results, model_dir, reproduce_ref)
        write_manifest(model_dir, extra)
    return written
