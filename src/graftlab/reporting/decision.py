"""The decision record: which model was chosen, why, on what evidence, and what could go wrong.

Everything is computed from a study's results (:class:`~graftlab.core.results.StudyResults`, or the dict of its
results.json): every number in the record is a number in the results or derived from one (a confusion share), so the
record cannot drift from the evidence. :func:`build_decision` returns it as a typed :class:`Decision`;
:func:`write_decision_record` writes it as ``decision.json`` (:meth:`Decision.to_dict`) and renders it as
``decision.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.artifacts import strict_json
from ..core.results import Comparison, GateResult, Interval, SeedStats, SliceResult, StudyResults, as_results
from .formatting import (
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_periods,
    fmt_pm,
    higher_is_better,
    is_number,
    metric_label,
    reading,
    slice_name,
)

__all__ = [
    "BackboneRef",
    "CalibrationRisk",
    "Choice",
    "ConfusedPair",
    "Decision",
    "Evidence",
    "FailedStrategy",
    "GateSummary",
    "MissedClass",
    "ReadComparison",
    "Risks",
    "Validation",
    "build_decision",
    "confused_pairs",
    "decision_markdown",
    "gate_summary",
    "label_names",
    "never_predicted",
    "write_decision_record",
]

_TOP_CONFUSIONS = 3


# -- the record ----------------------------------------------------------------------------------------------------
class _Part:
    """A part of the decision record: its fields, in order, are its object in decision.json."""

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: nested parts and results records as dicts, NaN and infinities as null."""
        return strict_json(dict(vars(self)))


class ReadComparison(Comparison):
    """A paired comparison as the results hold it, with its reading in plain words."""

    reading: str


@dataclass(frozen=True)
class Validation(_Part):
    """The validation scores that chose the winner over the runner-up."""

    metric: str
    winner: float | None
    runner_up: float | None


@dataclass(frozen=True)
class Choice(_Part):
    """How the winner was chosen: the rule, the method, why, and who decided (the data or the measured prior)."""

    rule: str
    method: str | None
    why: str
    decided_by: str | None
    source: str  # where the winner comes from: always "results" (the study records it)
    validation: Validation


@dataclass(frozen=True)
class Evidence(_Part):
    """The chosen strategy's test scores and its paired comparisons with the baselines and the runner-up."""

    kind: str
    params: dict[str, Any]
    seeds: list[int]
    test: dict[str, Interval]
    seed_stats: SeedStats | None  # of the headline metric
    comparisons: list[ReadComparison]
    transfer_gain: dict[str, ReadComparison | None]  # None: that baseline did not run


@dataclass(frozen=True)
class GateSummary(_Part):
    """The gates with a verdict: ``PASS`` (all passed), ``FAIL`` (any failed) or ``NONE`` (nothing recorded)."""

    verdict: str
    passed: int
    failed: int
    entries: list[GateResult]


@dataclass(frozen=True)
class MissedClass(_Part):
    """A class with test rows that no seed of the chosen strategy ever predicts."""

    name: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.name, "rows": self.rows}


@dataclass(frozen=True)
class ConfusedPair(_Part):
    """An off-diagonal cell of a confusion matrix: rows of class ``true`` predicted as ``predicted``."""

    true: str
    predicted: str
    count: int
    share_of_true: float | None


@dataclass(frozen=True)
class CalibrationRisk(_Part):
    """The chosen model's temperature scaling: ECE before and after, or why no temperature was fitted."""

    temperature: float | None
    ece_before: float | None
    ece_after: float | None
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return strict_json({k: v for k, v in vars(self).items() if v is not None})


@dataclass(frozen=True)
class Risks(_Part):
    """What could go wrong with the chosen model."""

    flagged_slices: list[SliceResult]  # worst first
    never_predicted: list[MissedClass]
    confused_pairs: list[ConfusedPair]
    calibration: CalibrationRisk | None
    robustness: list[dict[str, Any]]  # largest drop first


@dataclass(frozen=True)
class FailedStrategy(_Part):
    """A configured strategy that could not run; ``traceback`` is a bug's file."""

    name: str
    error: str
    traceback: str | None


@dataclass(frozen=True)
class BackboneRef(_Part):
    """The backbone the study fine-tuned, named with its license."""

    name: str
    license: str | None


@dataclass(frozen=True)
class Decision(_Part):
    """The decision record: what ``decision.json`` holds and ``decision.md`` says."""

    study: str
    run_id: str
    created: str | None
    data_fingerprint: str | None
    # what the data preparation reports in data.summary, as it reports it
    time_order: dict[str, Any] | None
    rare_classes: dict[str, Any] | None
    classes_without_rows: list[str] | None
    backbone: BackboneRef | None
    headline_metric: str
    winner: str
    runner_up: str | None
    selection: Choice
    evidence: Evidence
    gates: GateSummary
    risks: Risks
    failed: list[FailedStrategy]
    small_test: str | None  # why the test split is too small to trust (StudyResults.small_test_warning), or None


# -- building it from the results ----------------------------------------------------------------------------------
def _ranked_by_validation(results: StudyResults, metric: str) -> tuple[list[str], str]:
    """Strategy names ranked by validation metric, transfer strategies first if any have one."""
    scored = {n: s.val.get(metric) for n, s in results.strategies.items()}
    scored = {n: v for n, v in scored.items() if is_number(v)}
    transfer = {n: v for n, v in scored.items() if results.strategies[n].kind == "transfer"}
    pool, among = (transfer, "transfer strategies") if transfer else (scored, "all strategies")
    ranked = sorted(pool, key=pool.get, reverse=higher_is_better(metric))
    return ranked, among


def _val_score(results: StudyResults, name: str | None, metric: str) -> float | None:
    entry = results.strategies.get(name) if name else None
    return entry.val.get(metric) if entry else None


def _choice(results: StudyResults, metric: str) -> tuple[str | None, Choice]:
    """The runner-up and the rule that chose the winner: as recorded, else recomputed from validation scores."""
    ranked, among = _ranked_by_validation(results, metric)
    winner, runner_up, recorded = results.winner, results.runner_up, results.selection
    if runner_up is None:
        runner_up = next((n for n in ranked if n != winner), None)
    validation = Validation(metric, _val_score(results, winner, metric), _val_score(results, runner_up, metric))
    why = recorded.why
    if not why:
        why = f"{winner} has the best validation {metric} ({fmt_num(validation.winner)})"
        if runner_up:
            why += f"; runner-up {runner_up} has {fmt_num(validation.runner_up)}"
        why += "."
    rule = recorded.rule or f"highest validation {metric} (mean over seeds) among {among}"
    return runner_up, Choice(rule, recorded.selection_method, why, recorded.decided_by, "results", validation)


def _read(c: Comparison, metric: str | None) -> ReadComparison:
    """``c`` with its reading (the difference is ``a − b``, from ``a``'s point of view)."""
    return ReadComparison(**c.to_dict(), reading=reading(c.diff, c.ci_low, c.ci_high, c.p_value, metric))


def _comparisons(results: StudyResults, runner_up: str | None) -> list[ReadComparison]:
    """Paired comparisons of the winner against the baselines and the runner-up, with a reading."""
    mine = [c for c in results.comparisons if c.a in (results.winner, None)] or results.comparisons
    relevant = [c for c in mine if c.b == runner_up or _is_baseline(results, c.b)] or mine
    return [_read(c, c.metric) for c in relevant]


def _is_baseline(results: StudyResults, name: str | None) -> bool:
    entry = results.strategies.get(name) if name else None
    return entry is not None and entry.kind == "baseline"


def gate_summary(results: StudyResults | Mapping[str, Any]) -> GateSummary:
    """The gates with a verdict; with none, ``NONE`` (no gate declared), or ``FAIL`` when the recorded exit status
    says the gates failed."""
    results = as_results(results)
    failed = sum(not g.passed for g in results.gates)
    passed = len(results.gates) - failed
    if results.gates:
        verdict = "FAIL" if failed else "PASS"
    elif "exit" in results.model_fields_set and not results.gates_passed:
        verdict = "FAIL"
    else:  # a study without eval.gates passes them all: that is no verdict, not a pass
        verdict = "NONE"
    return GateSummary(verdict, passed, failed, list(results.gates))


def _square(cm: list[list[int]] | None, labels: list[str]) -> tuple[list[list[int]], list[str]]:
    """A confusion matrix's rows and class names; no rows unless it is square (names default to the indices)."""
    rows = cm or []
    if any(len(r) != len(rows) for r in rows):
        return [], []
    return rows, labels if len(labels) == len(rows) else [str(i) for i in range(len(rows))]


def confused_pairs(cm: list[list[int]] | None, labels: list[str], top: int = _TOP_CONFUSIONS) -> list[ConfusedPair]:
    """The largest off-diagonal cells of a confusion matrix (rows true, columns predicted)."""
    rows, names = _square(cm, labels)
    pairs = [ConfusedPair(names[i], names[j], count, count / sum(row))
             for i, row in enumerate(rows) for j, count in enumerate(row) if i != j and count > 0]
    pairs.sort(key=lambda p: p.count, reverse=True)
    return pairs[:top]


def never_predicted(cm: list[list[int]] | None, labels: list[str], n_seeds: int = 1) -> list[MissedClass]:
    """Classes with test rows that no seed of the strategy ever predicts (an empty column of its confusion matrix,
    summed over ``n_seeds`` seeds): the recall on them is zero, whatever the averaged metrics say."""
    rows, names = _square(cm, labels)
    return [MissedClass(names[j], round(sum(rows[j]) / max(n_seeds, 1))) for j in range(len(rows))
            if sum(rows[j]) > 0 and sum(r[j] for r in rows) == 0]


def label_names(results: StudyResults | Mapping[str, Any]) -> list[str]:
    """The class names: the data's, else the chosen strategy's per-class scores."""
    results = as_results(results)
    return [str(x) for x in results.label_names] or [str(x) for x in results.champion.per_class]


def _risks(results: StudyResults) -> Risks:
    champion, labels = results.champion, label_names(results)
    c = champion.calibration
    flagged = sorted((s for s in results.slices if s.flagged),
                     key=lambda s: s.value if is_number(s.value) else math.inf)
    rows = results.robustness if isinstance(results.robustness, list) else []
    robustness = sorted(rows, key=lambda r: r["drop"] if is_number(r.get("drop")) else -math.inf, reverse=True)
    return Risks(flagged_slices=flagged,
                 never_predicted=never_predicted(champion.confusion_matrix, labels, len(champion.seeds) or 1),
                 confused_pairs=confused_pairs(champion.confusion_matrix, labels),
                 calibration=None if c is None else CalibrationRisk(c.temperature, c.ece_before, c.ece_after, c.note),
                 robustness=robustness)


def _evidence(results: StudyResults, runner_up: str | None) -> Evidence:
    champion, metric = results.champion, results.headline_metric
    gains = {name: None if g is None else _read(g, g.metric or metric) for name, g in results.transfer_gain.items()}
    return Evidence(kind=champion.kind, params=champion.params, seeds=champion.seeds, test=champion.test,
                    seed_stats=champion.seed_stats.get(metric), comparisons=_comparisons(results, runner_up),
                    transfer_gain=gains)


def build_decision(results: StudyResults | Mapping[str, Any]) -> Decision:
    """The decision record, computed from a study's results (a record, or the dict of a results.json)."""
    results = as_results(results)
    runner_up, choice = _choice(results, results.headline_metric)
    summary, backbone = results.data.summary, results.backbone
    return Decision(
        study=results.study,
        run_id=results.run_id,
        created=results.created,
        data_fingerprint=results.data.fingerprint,
        time_order=summary.get("time_order"),
        rare_classes=summary.get("rare_classes"),
        classes_without_rows=summary.get("classes_without_rows"),
        backbone=None if backbone is None else BackboneRef(backbone.name, backbone.license),
        headline_metric=results.headline_metric,
        winner=results.winner,
        runner_up=runner_up,
        selection=choice,
        evidence=_evidence(results, runner_up),
        gates=gate_summary(results),
        risks=_risks(results),
        failed=[FailedStrategy(name, f.error, f.traceback) for name, f in results.failed.items()],
        small_test=results.small_test_warning(),
    )


# -- decision.md ---------------------------------------------------------------------------------------------------
def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _fmt_interval(value: Any, low: Any, high: Any, signed: bool = False) -> str:
    return fmt_ci({"value": value, "ci_low": low, "ci_high": high}, signed=signed)


def _gates_line(gates: GateSummary) -> str:
    total = gates.passed + gates.failed
    if gates.verdict == "NONE":
        return "No gates declared"
    if not total:
        return f"{gates.verdict} (recorded exit status)"
    if gates.verdict == "FAIL":
        return f"FAIL ({gates.failed} of {total} failed)"
    return f"PASS (all {total} passed)"


def _rare_lines(rare: Mapping[str, Any]) -> list[str]:
    """What ``data.checks.rare_classes`` did: the model cannot tell these classes apart (or never saw them)."""
    merged, dropped = rare.get("merged") or {}, rare.get("dropped") or []
    lines = []
    for target in dict.fromkeys(str(v) for v in merged.values()):
        names = ", ".join(f"`{k}`" for k, v in merged.items() if str(v) == target)
        lines.append(f"- Rare classes merged into `{target}` (data.checks.rare_classes): {names}; the model "
                     "does not tell them apart")
    if dropped:
        lines.append(f"- Rare classes left out (data.checks.rare_classes): {', '.join(f'`{k}`' for k in dropped)}; "
                     "the model never predicts them")
    return lines


def _md_evidence(d: Decision) -> list[str]:
    ev, metric = d.evidence, d.headline_metric
    lines = ["## Evidence", ""]
    if ev.test:
        lines += ["### Test metrics of the chosen model", ""]
        lines += _table(["metric", "value [CI]"],
                        [[metric_label(k), _fmt_interval(v.value, v.ci_low, v.ci_high)] for k, v in ev.test.items()])
    if ev.seed_stats is not None:
        seeds = ", ".join(str(s) for s in ev.seeds)
        lines += [f"Across seeds ({seeds or 'n/a'}): {metric} {fmt_pm(ev.seed_stats.mean, ev.seed_stats.std)}.", ""]
    if ev.comparisons:
        lines += ["### Paired comparisons (chosen − other)", ""]
        lines += _table(
            ["vs", "metric", "diff [CI]", "p", "McNemar p", "reading"],
            [[c.b, c.metric or metric, _fmt_interval(c.diff, c.ci_low, c.ci_high, signed=True),
              fmt_p(c.p_value), fmt_p(c.mcnemar_p), c.reading] for c in ev.comparisons],
        )
    if ev.transfer_gain:
        lines += ["### Transfer gain", ""]
        rows = []
        for name, g in ev.transfer_gain.items():
            label = name.replace("_", " ", 1)
            if g is None:
                rows.append([label, "not run", "—", "—"])
            else:
                rows.append([label, _fmt_interval(g.diff, g.ci_low, g.ci_high, signed=True), fmt_p(g.p_value),
                             g.reading])
        lines += _table(["gain", "diff [CI]", "p", "reading"], rows)
    return lines


def _md_risks(risks: Risks) -> list[str]:
    lines = ["## Known risks", ""]
    missed = risks.never_predicted
    if missed:
        listed = ", ".join(f"`{m.name}` ({m.rows} test row{'s' if m.rows != 1 else ''})" for m in missed)
        lines += [f"- **Never predicted on test** by any seed of the chosen strategy: {listed}; its recall on "
                  f"{'that class' if len(missed) == 1 else 'those classes'} is 0 (consider loss.class_weights: "
                  "balanced, more examples, or data.checks.rare_classes).", ""]
    if risks.flagged_slices:
        lines += ["### Flagged slices", ""]
        lines += _table(
            ["slice", "n", "metric", "value [CI]", "overall"],
            [[slice_name(s), s.n, s.metric, _fmt_interval(s.value, s.ci_low, s.ci_high), fmt_num(s.overall)]
             for s in risks.flagged_slices],
        )
    if risks.confused_pairs:
        lines += ["### Most-confused class pairs (chosen model)", ""]
        lines += _table(
            ["true", "predicted as", "count", "share of true class"],
            [[p.true, p.predicted, p.count, fmt_num(p.share_of_true)] for p in risks.confused_pairs],
        )
    if risks.calibration:
        c = risks.calibration
        lines += ["### Calibration", "",
                  f"ECE before {fmt_num(c.ece_before)}, after {fmt_num(c.ece_after)}"
                  f" (temperature {fmt_num(c.temperature)})."
                  + (f" Temperature not fitted: {c.note}." if c.note else ""), ""]
    if risks.robustness:
        lines += ["### Robustness", ""]
        lines += _table(
            ["perturbation", "metric", "clean", "perturbed", "drop"],
            [[r.get("perturbation"), r.get("metric", "—"), fmt_num(r.get("clean")),
              fmt_num(r.get("perturbed")), fmt_num(r.get("drop"))] for r in risks.robustness],
        )
    if len(lines) == 2:
        lines += ["No slices, confusion matrix, calibration or robustness results were recorded.", ""]
    return lines


def _md_decision(d: Decision) -> list[str]:
    """The decision itself: the chosen model, the gates, the rule and why, and what the data preparation changed."""
    sel = d.selection
    lines = ["## Decision", "",
             f"- **Chosen model: {d.winner}**" + (f" (runner-up: {d.runner_up})" if d.runner_up else ""),
             f"- Gates: **{_gates_line(d.gates)}**"]
    if d.small_test:
        lines.append(f"- **Small test split:** {d.small_test}")
    lines.append(f"- Selection rule: {sel.rule}")
    if sel.method:
        lines.append(f"- Selection method: {sel.method}")
    if sel.decided_by == "prior":
        lines.append("- Made by the prior: the data could not separate the candidates, so the measured default order "
                     "decided (see why)")
    lines.append(f"- Why: {sel.why}")
    time_order = d.time_order or {}
    if column := time_order.get("column"):
        lines.append(f"- Split by time on `{column}`: {fmt_periods(time_order.get('ranges'))}")
    lines += _rare_lines(d.rare_classes or {})
    if d.classes_without_rows:
        lines.append("- Classes left out, every row removed by the data checks: "
                     f"{', '.join(f'`{k}`' for k in d.classes_without_rows)}; the model never predicts them")
    for f in d.failed:
        where = f" (traceback: `{f.traceback}`)" if f.traceback else ""
        lines.append(f"- **{f.name} could not run** and is left out of the comparison: {f.error}{where}")
    return lines + [""]


def decision_markdown(d: Decision) -> str:
    """Render a :class:`Decision` as Markdown."""
    title = f"# Decision record: {d.study or 'study'}" + (f" (run {d.run_id})" if d.run_id else "")
    meta = []
    if d.created:
        meta.append(f"created {d.created}")
    if d.data_fingerprint:
        meta.append(f"data fingerprint `{d.data_fingerprint[:12]}`")
    if d.backbone:
        meta.append(f"backbone {d.backbone.name} ({d.backbone.license or 'license unknown'})")
    lines = [title, ""] + ([" · ".join(meta), ""] if meta else [])
    lines += _md_decision(d) + _md_evidence(d)
    if d.gates.entries:
        lines += ["## Gates", ""]
        lines += _table(["gate", "result", "evidence"],
                        [[g.gate, "PASS" if g.passed else "FAIL", g.evidence] for g in d.gates.entries])
    lines += _md_risks(d.risks)
    return "\n".join(lines).rstrip() + "\n"


def write_decision_record(results: StudyResults | Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``decision.md`` and ``decision.json`` into ``out_dir``.

    Returns:
        (path of decision.md, path of decision.json).
    """
    decision = build_decision(results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / "decision.md", out_dir / "decision.json"
    md_path.write_text(decision_markdown(decision), encoding="utf-8")
    json_path.write_text(json.dumps(decision.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return md_path, json_path
