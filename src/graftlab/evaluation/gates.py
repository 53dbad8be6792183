"""Success gates: 'macro_f1 >= 0.8', 'ece <= 0.05', 'latency_ms_b1 <= 20', 'beats: tfidf_logreg'.

Gates are parsed once, by :func:`graftlab.core.metrics.parse_gate` (re-exported here); this module checks them.
A metric gate compares the winner's *point value* with the threshold; the CI, when known, is put
in the evidence, with a warning when the threshold lies inside it. A ``beats: X`` gate needs the
paired bootstrap CI of (winner - X), oriented so positive means the winner is better, to lie
entirely above 0. A gate naming something that was not measured fails; it never raises.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

from graftlab.core.metrics import Gate, parse_gate

__all__ = ["Gate", "parse_gate", "evaluate_gates"]


def _num(x: float) -> str:
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.3f}"


def _ci(lo: float | None, hi: float | None, confidence: float) -> str:
    sep = "-" if lo >= 0 and hi >= 0 else " to "  # "0.79-0.83", but "-0.01 to 0.03"
    return f"{confidence:.0%} CI {_num(lo)}{sep}{_num(hi)}"


def _real(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)  # numpy scalars register as Real


def _finite(x: object) -> bool:
    return _real(x) and math.isfinite(x)


def _p(p: object) -> str:
    if not _finite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _failed(gate: Gate, evidence: str) -> dict:
    return {"gate": gate.text, "passed": False, "evidence": evidence}


def _lookup(summary: Mapping[str, object], metric: str) -> tuple[float | None, float | None, float | None]:
    """(value, ci_low, ci_high) from a float or a {value|mean, ci_low, ci_high} entry; None if absent."""
    entry = summary.get(metric)
    if isinstance(entry, Mapping):
        value = entry.get("value", entry.get("mean"))
        lo, hi = entry.get("ci_low"), entry.get("ci_high")
    else:
        value, lo, hi = entry, None, None
    value = float(value) if _real(value) else None
    if not (_finite(lo) and _finite(hi)):
        lo = hi = None
    return value, lo, hi


def _metric_gate(gate: Gate, summary: Mapping[str, object], confidence: float) -> dict:
    value, lo, hi = _lookup(summary, gate.metric)
    target = f"{gate.operator} {gate.threshold:g}"
    if value is None:
        return _failed(gate, f"{gate.metric} was not measured, so '{gate.text}' cannot pass.")
    if math.isnan(value):
        return _failed(gate, f"{gate.metric} could not be computed (NaN), so '{gate.text}' cannot pass.")
    passed = gate.holds(value)
    shown = f"{gate.metric} = {_num(value)}" + (f" ({_ci(lo, hi, confidence)})" if lo is not None else "")
    evidence = f"{shown} {target}" if passed else f"{shown}, not {target}"
    if lo is not None and lo <= gate.threshold <= hi:
        evidence += f"; the threshold lies inside the {confidence:.0%} CI, so the margin is not significant"
    return {"gate": gate.text, "passed": passed, "evidence": evidence}


def _beats_gate(gate: Gate, comparisons: Mapping[str, Mapping[str, object]], confidence: float, winner: str | None,
                unmeasured: Mapping[str, str]) -> dict:
    if gate.beats == winner:
        return _failed(gate, f"{gate.beats} is itself the chosen model: no strategy was chosen over it, so the gate "
                             "cannot pass.")
    cmp = comparisons.get(gate.beats)
    if cmp is None and gate.beats in unmeasured:
        return _failed(gate, f"{gate.beats} {unmeasured[gate.beats]}, so nothing was measured against it and the "
                             "gate cannot pass.")
    if cmp is None:
        return _failed(
            gate, f"{gate.beats} was not measured (no paired comparison with the winner), so the gate cannot pass."
        )
    diff, lo, hi = cmp.get("diff"), cmp.get("ci_low"), cmp.get("ci_high")
    on = f" on {cmp['metric']}" if cmp.get("metric") else ""
    if not (_finite(diff) and _finite(lo) and _finite(hi)):
        return _failed(gate, f"the difference from {gate.beats}{on} could not be computed, so the gate cannot pass.")
    numbers = f"winner - {gate.beats}{on} = {diff:+.3f} ({_ci(lo, hi, confidence)}, {_p(cmp.get('p_value'))})"
    if lo > 0:
        return {"gate": gate.text, "passed": True, "evidence": f"{numbers}; the CI lies above 0."}
    return _failed(gate, f"{numbers}; the CI does not lie above 0, so the winner is not shown to beat {gate.beats}.")


def evaluate_gates(
    gates: Iterable[str | Gate],
    winner_summary: Mapping[str, object],
    comparisons: Mapping[str, Mapping[str, object]] | None = None,
    confidence: float = 0.95,
    winner: str | None = None,
    unmeasured: Mapping[str, str] | None = None,
) -> list[dict]:
    """Check each gate against the winner's numbers.

    Args:
        winner_summary: metric -> float, or metric -> ``{"value" (or "mean"), "ci_low", "ci_high"}``
            (the output of :func:`metrics_with_ci` / :func:`seed_averaged` fits); may also hold
            non-model numbers such as ``latency_ms_b1``.
        comparisons: strategy -> :func:`paired_bootstrap` result of (winner vs strategy):
            ``{"diff", "ci_low", "ci_high", "p_value"}`` and optionally ``"metric"``.
        confidence: the level the CIs were computed at, used only in the wording.
        winner: the chosen strategy's name; ``beats: <winner>`` fails (a baseline that wins beats nothing).
        unmeasured: strategy -> why it has no comparison (``"failed (its error)"``), said by a ``beats:`` gate on it.

    Returns:
        ``[{"gate": str, "passed": bool, "evidence": str}]`` in gate order.

    Raises:
        ConfigError: for a gate string that does not parse or names a metric not in the catalogue.
    """
    comparisons = comparisons or {}
    results = []
    for g in gates:
        gate = g if isinstance(g, Gate) else parse_gate(g)  # a config's gates arrive parsed
        if gate.beats is not None:
            results.append(_beats_gate(gate, comparisons, confidence, winner, unmeasured or {}))
        else:
            results.append(_metric_gate(gate, winner_summary, confidence))
    return results
