"""The retrain decision record: ``decision.json`` (everything) and ``decision.md`` (for people).

The record is typed (:class:`DecisionRecord`, its :class:`RetrainEvidence` and their parts), built as the retrain
goes and serialised once; ``decision.json`` holds the keys each part was built with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from ..core.artifacts import save_json
from ..core.results import Interval, PairedDiff, Record

__all__ = ["DECISION_JSON", "DECISION_MD", "RETRAIN_FORMAT", "ChallengerRun", "DecisionRecord", "HoldoutComparison",
           "McNemar", "NewLabels", "OriginalTest", "RetrainEvidence", "SplitPart", "Trigger", "TriggerAlert",
           "render_markdown", "write_record"]

DECISION_JSON, DECISION_MD = "decision.json", "decision.md"
RETRAIN_FORMAT = "graftlab-retrain/1"
_RULE = "Rule: promote only when the lower bound of the paired CI is above 0 and the challenger passed its study gates."


class TriggerAlert(Record):
    """An alert of the monitor report, as the report holds it."""

    kind: str = ""
    message: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)


class Trigger(Record):
    """The monitor report that decided whether to retrain, and whether it was run for this retrain."""

    report: str
    ran_monitor: bool
    created: str | None = None
    monitored_version: str | int | None = None
    alerted: bool
    alerts: list[TriggerAlert] = Field(default_factory=list)


class NewLabels(Record):
    """The feedback-labeled requests newer than the champion's data, and how many of them are usable."""

    since: float
    labeled: int
    without_text: int
    duplicates: int
    unreadable_images: int | None = None  # image models only
    in_original_data: int | None = None
    usable: int | None = None


class SplitPart(Record):
    """One part of the time-ordered split of the new data: its size and first and last request time."""

    n: int
    first_ts: float | None = None
    last_ts: float | None = None


class ChallengerRun(Record):
    """The retrain study: its run folder, the version it registered, its winner and the winner's test scores."""

    run_dir: str
    version: int
    winner: str
    gates_passed: bool
    test: dict[str, Interval] = Field(default_factory=dict)


class OriginalTest(Record):
    """Both models on the champion's own test split (older data), for context."""

    metric: str
    champion: Interval | None = None
    challenger: Interval | None = None


class McNemar(Record):
    """McNemar's test: ``b`` requests only the challenger got right, ``c`` only the champion."""

    b: int
    c: int
    statistic: float | None = None
    p_value: float
    method: str | None = None


class HoldoutComparison(Record):
    """Challenger against champion on the fresh holdout (or why they cannot be compared: ``message``)."""

    comparable: bool
    message: str | None = None
    n: int | None = None
    metric: str | None = None
    confidence: float | None = None
    paired_bootstrap: PairedDiff | None = None  # challenger - champion
    mcnemar: McNemar | None = None
    challenger: dict[str, Interval] = Field(default_factory=dict)
    champion: dict[str, Interval] = Field(default_factory=dict)
    class_counts: dict[str, int] = Field(default_factory=dict)


class RetrainEvidence(Record):
    """Everything a retrain found, section by section in the order it found them; a skipped retrain stops early."""

    format: str = RETRAIN_FORMAT
    name: str | None = None
    champion_version: int | None = None
    created: str | None = None
    tracking_uri: str | None = None
    log_db: str | None = None
    policy: dict[str, Any] | None = None
    trigger: Trigger | None = None
    new_labels: NewLabels | None = None
    original_data: dict[str, Any] | None = None
    protocol: dict[str, Any] | None = None
    split: dict[str, SplitPart] | None = None
    challenger: ChallengerRun | None = None
    original_test: OriginalTest | None = None
    comparison: HoldoutComparison | None = None
    promotion: dict[str, Any] | None = None
    decision: str | None = None
    reason: str | None = None
    challenger_version: int | None = None
    command: str | None = None


class DecisionRecord(Record):
    """What ``decision.json`` holds: the decision (``skipped``, ``keep``, ``promote`` or ``canary``), why, and the
    evidence."""

    decision: str
    reason: str
    record_dir: str | None = None
    evidence: RetrainEvidence = Field(default_factory=RetrainEvidence)
    challenger_version: int | None = None
    command: str | None = None


def _as_record(outcome: DecisionRecord | Mapping[str, Any]) -> DecisionRecord:
    return outcome if isinstance(outcome, DecisionRecord) else DecisionRecord.model_validate(dict(outcome))


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and math.isfinite(x) else "–"


def _score(score: Interval | None) -> str:
    return f"{_num(score.value)} [{_num(score.ci_low)}, {_num(score.ci_high)}]" if score is not None else "–"


def _metric_rows(comparison: HoldoutComparison) -> list[str]:
    rows = ["| model | accuracy | macro-F1 |", "|---|---|---|"]
    for who, scores in (("champion", comparison.champion), ("challenger", comparison.challenger)):
        cells = [_score(scores.get(k)) for k in ("accuracy", "macro_f1")]
        rows.append(f"| {who} | {' | '.join(cells)} |")
    return rows


def render_markdown(outcome: DecisionRecord | Mapping[str, Any]) -> str:
    """A short human-readable account of the decision and its evidence."""
    record = _as_record(outcome)
    ev = record.evidence
    lines = [f"# Retrain decision for {ev.name}: **{record.decision}**", "",
             f"- when: {ev.created}", f"- champion: version {ev.champion_version}",
             f"- reason: {record.reason}"]
    if record.challenger_version is not None:
        winner, run_dir = (ev.challenger.winner, ev.challenger.run_dir) if ev.challenger is not None else (None, None)
        lines.append(f"- challenger: version {record.challenger_version} ({winner}, run {run_dir})")
    if ev.trigger is not None:
        alerts = "; ".join(a.message for a in ev.trigger.alerts) or "none"
        lines.append(f"- trigger: {ev.trigger.report} (alerts: {alerts})")
    labels = ev.new_labels
    if labels is not None:
        lines.append(f"- new labels: {labels.usable} usable of {labels.labeled} labeled "
                     f"({labels.without_text} without text, {labels.duplicates} duplicates, "
                     f"{labels.in_original_data} already in the training data)")
    if ev.split:
        lines.append("- time-ordered split of the new data: " + ", ".join(f"{k} {v.n}" for k, v in ev.split.items()))
    comparison = ev.comparison
    if comparison is not None and comparison.comparable:
        pb, mc = comparison.paired_bootstrap, comparison.mcnemar
        lines += ["", f"## On the fresh holdout ({comparison.n} requests)", "", *_metric_rows(comparison), "",
                  (f"Paired bootstrap, challenger − champion {pb.metric}: {pb.diff:+.3f} "
                   f"[{_num(pb.ci_low)}, {_num(pb.ci_high)}], p = {pb.p_value:.3g}. "
                   f"McNemar: the challenger alone is right on {mc.b}, the champion alone on {mc.c} "
                   f"requests, p = {mc.p_value:.3g}."),
                  "", _RULE]
        original = ev.original_test
        if original is not None and (original.champion is not None or original.challenger is not None):
            champion = original.champion.value if original.champion is not None else None
            challenger = original.challenger.value if original.challenger is not None else None
            lines += ["", (f"For context, {original.metric} on the original test split (older data): champion "
                           f"{_num(champion)}, challenger {_num(challenger)}.")]
    if record.command:
        lines += ["", "## Next step", "", f"```\n{record.command}\n```"]
    return "\n".join(lines) + "\n"


def write_record(outcome: DecisionRecord | Mapping[str, Any], folder: str | Path) -> Path:
    """Write ``decision.json`` and ``decision.md`` into ``folder``; returns the folder."""
    folder = Path(folder)
    record = _as_record(outcome)
    save_json(record.to_dict(), folder / DECISION_JSON)
    (folder / DECISION_MD).write_text(render_markdown(record), encoding="utf-8")
    return folder
