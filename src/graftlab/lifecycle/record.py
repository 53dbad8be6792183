"""The retrain decision record: ``decision.json`` (everything) and ``decision.md`` (for people)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..core.artifacts import save_json

__all__ = ["DECISION_JSON", "DECISION_MD", "render_markdown", "write_record"]

DECISION_JSON, DECISION_MD = "decision.json", "decision.md"
_RULE = "Rule: promote only when the lower bound of the paired CI is above 0 and the challenger passed its study gates."


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and math.isfinite(x) else "–"


def _metric_rows(comparison: dict[str, Any]) -> list[str]:
    rows = ["| model | accuracy | macro-F1 |", "|---|---|---|"]
    for who in ("champion", "challenger"):
        m = comparison.get(who) or {}
        cells = [f"{_num(m[k]['value'])} [{_num(m[k]['ci_low'])}, {_num(m[k]['ci_high'])}]" if k in m else "–"
                 for k in ("accuracy", "macro_f1")]
        rows.append(f"| {who} | {' | '.join(cells)} |")
    return rows


def render_markdown(outcome: dict[str, Any]) -> str:
    """A short human-readable account of the decision and its evidence."""
    ev = outcome.get("evidence") or {}
    lines = [f"# Retrain decision for {ev.get('name')}: **{outcome['decision']}**", "",
             f"- when: {ev.get('created')}", f"- champion: version {ev.get('champion_version')}",
             f"- reason: {outcome['reason']}"]
    if outcome.get("challenger_version") is not None:
        lines.append(f"- challenger: version {outcome['challenger_version']} "
                     f"({(ev.get('challenger') or {}).get('winner')}, run {(ev.get('challenger') or {}).get('run_dir')})")
    trigger = ev.get("trigger") or {}
    if trigger:
        alerts = "; ".join(a.get("message", "") for a in trigger.get("alerts") or []) or "none"
        lines.append(f"- trigger: {trigger.get('report')} (alerts: {alerts})")
    labels = ev.get("new_labels") or {}
    if labels:
        lines.append(f"- new labels: {labels.get('usable')} usable of {labels.get('labeled')} labeled "
                     f"({labels.get('without_text')} without text, {labels.get('duplicates')} duplicates, "
                     f"{labels.get('in_original_data')} already in the training data)")
    split = ev.get("split") or {}
    if split:
        lines.append("- time-ordered split of the new data: " + ", ".join(f"{k} {v['n']}" for k, v in split.items()))
    comparison = ev.get("comparison") or {}
    if comparison.get("comparable"):
        pb, mc = comparison["paired_bootstrap"], comparison["mcnemar"]
        lines += ["", f"## On the fresh holdout ({comparison['n']} requests)", "", *_metric_rows(comparison), "",
                  (f"Paired bootstrap, challenger − champion {pb['metric']}: {pb['diff']:+.3f} "
                   f"[{_num(pb['ci_low'])}, {_num(pb['ci_high'])}], p = {pb['p_value']:.3g}. "
                   f"McNemar: the challenger alone is right on {mc['b']}, the champion alone on {mc['c']} "
                   f"requests, p = {mc['p_value']:.3g}."),
                  "", _RULE]
        original = ev.get("original_test") or {}
        if original.get("champion") or original.get("challenger"):
            lines += ["", (f"For context, {original['metric']} on the original test split (older data): champion "
                           f"{_num((original.get('champion') or {}).get('value'))}, challenger "
                           f"{_num((original.get('challenger') or {}).get('value'))}.")]
    if outcome.get("command"):
        lines += ["", "## Next step", "", f"```\n{outcome['command']}\n```"]
    return "\n".join(lines) + "\n"


def write_record(outcome: dict[str, Any], folder: str | Path) -> Path:
    """Write ``decision.json`` and ``decision.md`` into ``folder``; returns the folder."""
    folder = Path(folder)
    save_json(outcome, folder / DECISION_JSON)
    (folder / DECISION_MD).write_text(render_markdown(outcome), encoding="utf-8")
    return folder
