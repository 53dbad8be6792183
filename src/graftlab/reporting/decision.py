"""The decision record: which model was chosen, why, on what evidence, and what could go wrong.

Everything is computed from ``results`` (the study's results.json): every number in the record is a
number in ``results`` or derived from one (a confusion share), so the record cannot drift from the
evidence. :func:`build_decision` returns the structure; :func:`write_decision_record` writes it as
``decision.json`` and renders it as ``decision.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .formatting import (
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_periods,
    fmt_pm,
    fmt_signed,
    higher_is_better,
    is_number,
    metric_label,
    reading,
    slice_name,
)

__all__ = [
    "build_decision",
    "confused_pairs",
    "decision_markdown",
    "gate_summary",
    "label_names",
    "write_decision_record",
]

_TOP_CONFUSIONS = 3


def _dict(x: Any) -> dict[str, Any]:
    return dict(x) if isinstance(x, Mapping) else {}


def _list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else []


def _val_score(entry: Mapping[str, Any], metric: str) -> Any:
    val = _dict(entry.get("val")).get(metric)
    return val.get("value") if isinstance(val, Mapping) else val


def _ranked_by_validation(strategies: Mapping[str, Any], metric: str) -> tuple[list[str], str]:
    """Strategy names ranked by validation metric, transfer strategies first if any have one."""
    scored = {n: _val_score(_dict(s), metric) for n, s in strategies.items()}
    scored = {n: v for n, v in scored.items() if is_number(v)}
    transfer = {n: v for n, v in scored.items() if _dict(strategies[n]).get("kind") == "transfer"}
    pool, among = (transfer, "transfer strategies") if transfer else (scored, "all strategies")
    ranked = sorted(pool, key=pool.get, reverse=higher_is_better(metric))
    return ranked, among


def _selection(results: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """Winner, runner-up and the rule that chose them: as recorded, else recomputed."""
    strategies = _dict(results.get("strategies"))
    recorded = _dict(results.get("selection"))
    ranked, among = _ranked_by_validation(strategies, metric)
    default_rule = f"highest validation {metric} (mean over seeds) among {among}"
    winner = results.get("winner") or (ranked[0] if ranked else None)
    runner_up = results.get("runner_up")
    if runner_up is None and winner is not None:
        runner_up = next((n for n in ranked if n != winner), None)
    source = "results" if results.get("winner") else ("computed" if winner else "none")
    selection = {
        "winner": winner,
        "runner_up": runner_up,
        "rule": recorded.get("rule") or default_rule,
        "method": recorded.get("selection_method"),
        "why": recorded.get("why"),
        "decided_by": recorded.get("decided_by"),
        "source": source,
        "validation": {
            "metric": metric,
            "winner": _val_score(_dict(strategies.get(winner)), metric) if winner else None,
            "runner_up": _val_score(_dict(strategies.get(runner_up)), metric) if runner_up else None,
        },
    }
    if not selection["why"] and winner:
        v = selection["validation"]
        why = f"{winner} has the best validation {metric} ({fmt_num(v['winner'])})"
        if runner_up:
            why += f"; runner-up {runner_up} has {fmt_num(v['runner_up'])}"
        selection["why"] = why + "."
    return selection


def _comparisons(results: Mapping[str, Any], winner: str | None, runner_up: str | None) -> list[dict]:
    """Paired comparisons of the winner against the baselines and the runner-up, with a reading."""
    strategies = _dict(results.get("strategies"))
    rows = [_dict(c) for c in _list(results.get("comparisons"))]
    mine = [c for c in rows if c.get("a") in (winner, None)] or rows
    relevant = [
        c for c in mine
        if c.get("b") == runner_up or _dict(strategies.get(c.get("b"))).get("kind") == "baseline"
    ] or mine
    for c in relevant:
        c["reading"] = reading(c.get("diff"), c.get("ci_low"), c.get("ci_high"),
                               c.get("p_value"), c.get("metric"))
    return relevant


def _transfer_gain(results: Mapping[str, Any], metric: str) -> dict[str, Any]:
    gains = {}
    for name, gain in _dict(results.get("transfer_gain")).items():
        if isinstance(gain, Mapping):
            gain = dict(gain)
            gain["reading"] = reading(gain.get("diff"), gain.get("ci_low"), gain.get("ci_high"),
                                      gain.get("p_value"), gain.get("metric") or metric)
        gains[name] = gain  # None: that baseline did not run
    return gains


def gate_summary(results: Mapping[str, Any]) -> dict[str, Any]:
    """Gates with a verdict: ``PASS`` (all passed), ``FAIL`` (any failed) or ``NONE`` (no gates)."""
    items = [_dict(g) for g in _list(results.get("gates"))]
    failed = [g for g in items if g.get("passed") is False]
    passed = [g for g in items if g.get("passed") is True]
    if items:
        verdict = "FAIL" if failed else ("PASS" if passed else "NONE")
    else:
        exit_ok = _dict(results.get("exit")).get("gates_passed")
        verdict = {True: "PASS", False: "FAIL"}.get(exit_ok, "NONE")
    return {"verdict": verdict, "passed": len(passed), "failed": len(failed), "entries": items}


def _square(cm: Any, labels: list[str]) -> tuple[list[list[Any]], list[str]]:
    """A confusion matrix's rows and class names; no rows unless it is square (names default to the indices)."""
    rows = [list(r) for r in _list(cm) if isinstance(r, (list, tuple))]
    if any(len(r) != len(rows) for r in rows):
        return [], []
    return rows, labels if len(labels) == len(rows) else [str(i) for i in range(len(rows))]


def confused_pairs(cm: Any, labels: list[str], top: int = _TOP_CONFUSIONS) -> list[dict[str, Any]]:
    """The largest off-diagonal cells of a confusion matrix (rows true, columns predicted)."""
    rows, names = _square(cm, labels)
    pairs = []
    for i, row in enumerate(rows):
        total = sum(x for x in row if is_number(x))
        for j, count in enumerate(row):
            if i != j and is_number(count) and count > 0:
                pairs.append({"true": names[i], "predicted": names[j], "count": count,
                              "share_of_true": count / total if total else None})
    pairs.sort(key=lambda p: p["count"], reverse=True)
    return pairs[:top]


def never_predicted(cm: Any, labels: list[str], n_seeds: int = 1) -> list[dict[str, Any]]:
    """Classes with test rows that no seed of the strategy ever predicts (an empty column of its confusion matrix,
    summed over ``n_seeds`` seeds): the recall on them is zero, whatever the averaged metrics say."""
    rows, names = _square(cm, labels)
    if not all(is_number(x) for r in rows for x in r):
        return []
    return [{"class": names[j], "rows": round(sum(rows[j]) / max(n_seeds, 1))} for j in range(len(rows))
            if sum(rows[j]) > 0 and sum(r[j] for r in rows) == 0]


def label_names(results: Mapping[str, Any], winner_entry: Mapping[str, Any]) -> list[str]:
    names = _list(_dict(results.get("data")).get("label_names"))
    return [str(x) for x in names] or [str(x) for x in _dict(winner_entry.get("per_class"))]


def _risks(results: Mapping[str, Any], winner_entry: Mapping[str, Any]) -> dict[str, Any]:
    slices = [_dict(s) for s in _list(results.get("slices"))]
    flagged = sorted((s for s in slices if s.get("flagged")),
                     key=lambda s: s["value"] if is_number(s.get("value")) else math.inf)
    calibration = _dict(winner_entry.get("calibration"))
    robustness = sorted((_dict(r) for r in _list(results.get("robustness"))),
                        key=lambda r: r["drop"] if is_number(r.get("drop")) else -math.inf,
                        reverse=True)
    return {
        "flagged_slices": flagged,
        "never_predicted": never_predicted(winner_entry.get("confusion_matrix"), label_names(results, winner_entry),
                                           len(_list(winner_entry.get("seeds"))) or 1),
        "confused_pairs": confused_pairs(winner_entry.get("confusion_matrix"),
                                         label_names(results, winner_entry)),
        "calibration": {k: calibration.get(k) for k in ("temperature", "ece_before", "ece_after", "note")
                        if calibration.get(k) is not None} or None,
        "robustness": robustness,
    }


def build_decision(results: Mapping[str, Any]) -> dict[str, Any]:
    """The decision record as a JSON-ready dict, computed from ``results``; tolerates missing keys."""
    metric = results.get("headline_metric") or "macro_f1"
    selection = _selection(results, metric)
    winner, runner_up = selection["winner"], selection["runner_up"]
    entry = _dict(_dict(results.get("strategies")).get(winner))
    backbone = _dict(results.get("backbone"))
    return {
        "study": results.get("study"),
        "run_id": results.get("run_id"),
        "created": results.get("created"),
        "data_fingerprint": _dict(results.get("data")).get("fingerprint"),
        "time_order": _dict(_dict(results.get("data")).get("summary")).get("time_order"),
        "rare_classes": _dict(_dict(results.get("data")).get("summary")).get("rare_classes"),
        "classes_without_rows": _dict(_dict(results.get("data")).get("summary")).get("classes_without_rows"),
        "backbone": {"name": backbone.get("name"), "license": backbone.get("license")} if backbone else None,
        "headline_metric": metric,
        "winner": winner,
        "runner_up": runner_up,
        "selection": {k: selection[k] for k in ("rule", "method", "why", "decided_by", "source", "validation")},
        "evidence": {
            "kind": entry.get("kind"),
            "params": entry.get("params"),
            "seeds": entry.get("seeds"),
            "test": _dict(entry.get("test")),
            "seed_stats": _dict(entry.get("seed_stats")).get(metric),
            "comparisons": _comparisons(results, winner, runner_up),
            "transfer_gain": _transfer_gain(results, metric),
        },
        "gates": gate_summary(results),
        "risks": _risks(results, entry),
        "failed": _failed_strategies(results),
    }


def _failed_strategies(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The configured strategies that could not run: ``[{"name", "error", "traceback"}]`` (traceback: a bug's file)."""
    return [{"name": name, "error": _dict(f).get("error"), "traceback": _dict(f).get("traceback")}
            for name, f in _dict(results.get("failed")).items()]


def _json_safe(x: Any) -> Any:
    """NaN and infinities become null, so decision.json is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _gates_line(gates: Mapping[str, Any]) -> str:
    total = gates["passed"] + gates["failed"]
    if gates["verdict"] == "NONE":
        return "no gates declared"
    if not total:
        return f"{gates['verdict']} (recorded exit status)"
    if gates["verdict"] == "FAIL":
        return f"FAIL ({gates['failed']} of {total} failed)"
    return f"PASS (all {total} passed)"


def _rare_lines(rare: Mapping[str, Any]) -> list[str]:
    """What ``data.checks.rare_classes`` did: the model cannot tell these classes apart (or never saw them)."""
    merged, dropped = _dict(rare.get("merged")), _list(rare.get("dropped"))
    lines = []
    for target in dict.fromkeys(str(v) for v in merged.values()):
        names = ", ".join(f"`{k}`" for k, v in merged.items() if str(v) == target)
        lines.append(f"- Rare classes merged into `{target}` (data.checks.rare_classes): {names}; the model "
                     "does not tell them apart")
    if dropped:
        lines.append(f"- Rare classes left out (data.checks.rare_classes): {', '.join(f'`{k}`' for k in dropped)}; "
                     "the model never predicts them")
    return lines


def _md_evidence(d: Mapping[str, Any]) -> list[str]:
    ev, metric = d["evidence"], d["headline_metric"]
    lines = ["## Evidence", ""]
    if ev["test"]:
        lines += ["### Test metrics of the chosen model", ""]
        lines += _table(["metric", "value [CI]"],
                        [[metric_label(k), fmt_ci(v)] for k, v in ev["test"].items()])
    stats = _dict(ev["seed_stats"])
    if stats:
        seeds = ", ".join(str(s) for s in _list(ev["seeds"]))
        lines += [f"Across seeds ({seeds or 'n/a'}): {metric} {fmt_pm(stats.get('mean'), stats.get('std'))}.", ""]
    if ev["comparisons"]:
        lines += ["### Paired comparisons (chosen − other)", ""]
        lines += _table(
            ["vs", "metric", "diff [CI]", "p", "McNemar p", "reading"],
            [[c.get("b"), c.get("metric", metric), fmt_ci(
                {"value": c.get("diff"), "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high")}, signed=True),
              fmt_p(c.get("p_value")), fmt_p(c.get("mcnemar_p")), c["reading"]] for c in ev["comparisons"]],
        )
    if ev["transfer_gain"]:
        lines += ["### Transfer gain", ""]
        rows = []
        for name, g in ev["transfer_gain"].items():
            label = name.replace("_", " ", 1)
            if g is None:
                rows.append([label, "not run", "—", "—"])
            else:
                rows.append([label, fmt_ci({"value": g.get("diff"), "ci_low": g.get("ci_low"),
                                            "ci_high": g.get("ci_high")}, signed=True),
                             fmt_p(g.get("p_value")), g["reading"]])
        lines += _table(["gain", "diff [CI]", "p", "reading"], rows)
    return lines


def _md_risks(d: Mapping[str, Any]) -> list[str]:
    risks = d["risks"]
    lines = ["## Known risks", ""]
    missed = _list(risks.get("never_predicted"))
    if missed:
        listed = ", ".join(f"`{m['class']}` ({m['rows']} test row{'s' if m['rows'] != 1 else ''})" for m in missed)
        lines += [f"- **Never predicted on test** by any seed of the chosen strategy: {listed}; its recall on "
                  f"{'that class' if len(missed) == 1 else 'those classes'} is 0 (consider loss.class_weights: "
                  "balanced, more examples, or data.checks.rare_classes).", ""]
    if risks["flagged_slices"]:
        lines += ["### Flagged slices", ""]
        lines += _table(
            ["slice", "n", "metric", "value [CI]", "overall"],
            [[slice_name(s), s.get("n", "—"), s.get("metric", "—"),
              fmt_ci({"value": s.get("value"), "ci_low": s.get("ci_low"), "ci_high": s.get("ci_high")}),
              fmt_num(s.get("overall"))] for s in risks["flagged_slices"]],
        )
    if risks["confused_pairs"]:
        lines += ["### Most-confused class pairs (chosen model)", ""]
        lines += _table(
            ["true", "predicted as", "count", "share of true class"],
            [[p["true"], p["predicted"], p["count"], fmt_num(p["share_of_true"])] for p in risks["confused_pairs"]],
        )
    if risks["calibration"]:
        c = risks["calibration"]
        lines += ["### Calibration", "",
                  f"ECE before {fmt_num(c.get('ece_before'))}, after {fmt_num(c.get('ece_after'))}"
                  f" (temperature {fmt_num(c.get('temperature'))})."
                  + (f" Temperature not fitted: {c['note']}." if c.get("note") else ""), ""]
    if risks["robustness"]:
        lines += ["### Robustness", ""]
        lines += _table(
            ["perturbation", "metric", "clean", "perturbed", "drop"],
            [[r.get("perturbation"), r.get("metric", "—"), fmt_num(r.get("clean")),
              fmt_num(r.get("perturbed")), fmt_num(r.get("drop"))] for r in risks["robustness"]],
        )
    if len(lines) == 2:
        lines += ["No slices, confusion matrix, calibration or robustness results were recorded.", ""]
    return lines


def decision_markdown(d: Mapping[str, Any]) -> str:
    """Render a :func:`build_decision` dict as Markdown."""
    title = f"# Decision record: {d.get('study') or 'study'}"
    if d.get("run_id"):
        title += f" (run {d['run_id']})"
    meta = []
    if d.get("created"):
        meta.append(f"created {d['created']}")
    if d.get("data_fingerprint"):
        meta.append(f"data fingerprint `{str(d['data_fingerprint'])[:12]}`")
    if d.get("backbone"):
        meta.append(f"backbone {d['backbone'].get('name')} ({d['backbone'].get('license') or 'license unknown'})")
    lines = [title, ""] + ([" · ".join(meta), ""] if meta else [])
    sel = d["selection"]
    lines += ["## Decision", ""]
    if d["winner"]:
        lines.append(f"- **Chosen model: {d['winner']}**" + (f" (runner-up: {d['runner_up']})" if d["runner_up"] else ""))
    else:
        lines.append("- **No model chosen**: the results hold no validation scores and no recorded winner.")
    lines += [f"- Gates: **{_gates_line(d['gates'])}**", f"- Selection rule: {sel['rule']}"]
    if sel.get("method"):
        lines.append(f"- Selection method: {sel['method']}")
    if sel.get("decided_by") == "prior":
        lines.append("- Made by the prior: the data could not separate the candidates, so the measured default order "
                     "decided (see why)")
    if sel.get("why"):
        lines.append(f"- Why: {sel['why']}")
    if sel["source"] == "computed":
        lines.append("- The results did not record a winner; it was recomputed with the rule above.")
    time_order = d.get("time_order") or {}
    if time_order.get("column"):
        lines.append(f"- Split by time on `{time_order['column']}`: {fmt_periods(_dict(time_order.get('ranges')))}")
    lines += _rare_lines(_dict(d.get("rare_classes")))
    if d.get("classes_without_rows"):
        lines.append("- Classes left out, every row removed by the data checks: "
                     f"{', '.join(f'`{k}`' for k in _list(d['classes_without_rows']))}; the model never predicts them")
    for f in _list(d.get("failed")):
        where = f" (traceback: `{f['traceback']}`)" if f.get("traceback") else ""
        lines.append(f"- **{f['name']} could not run** and is left out of the comparison: {f['error']}{where}")
    lines.append("")
    if d["winner"]:
        lines += _md_evidence(d)
    if d["gates"]["entries"]:
        lines += ["## Gates", ""]
        lines += _table(["gate", "result", "evidence"],
                        [[g.get("gate"), {True: "PASS", False: "FAIL"}.get(g.get("passed"), "n/a"),
                          g.get("evidence", "")] for g in d["gates"]["entries"]])
    lines += _md_risks(d)
    return "\n".join(lines).rstrip() + "\n"


def write_decision_record(results: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``decision.md`` and ``decision.json`` into ``out_dir``.

    Returns:
        (path of decision.md, path of decision.json).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    decision = _json_safe(build_decision(results))
    md_path, json_path = out_dir / "decision.md", out_dir / "decision.json"
    md_path.write_text(decision_markdown(decision), encoding="utf-8")
    json_path.write_text(json.dumps(decision, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return md_path, json_path
