"""From finished trials to the evidence in results.json: seed-averaged metrics with CIs, paired
comparisons, transfer gain, calibration, slices and gates. Pure bookkeeping around ``evaluation``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.config import StudyConfig
from ..core.metrics import METRICS, REPORTED_METRICS
from ..data.dataset import LabeledData
from ..evaluation import (
    HEADLINE_METRICS,
    auto_slices,
    classification_metrics,
    evaluate_gates,
    expected_calibration_error,
    fit_temperature,
    mcnemar,
    paired_bootstrap,
    reliability_curve,
    seed_averaged,
    separates,
    slice_metrics,
    softmax,
)
from .trials import TrialRecord

__all__ = ["summarise_strategy", "select_winner", "keep_preferred", "compare", "transfer_gain", "slices_for", "gates_for", "TEST_METRICS",
           "TIE_RULE", "tie_key", "cheaper_first"]

TEST_METRICS = REPORTED_METRICS  # measured for every study; cfg.eval.scored_metrics adds those the config names


def _better_first(values: list[float], metric: str) -> np.ndarray:
    """``values`` of ``metric`` as scores where larger is better; an undefined (NaN) value is the worst."""
    return np.nan_to_num(METRICS[metric].sign * np.asarray(values, dtype=np.float64), nan=-np.inf)


#: how select_winner and k-fold selection (study.fewshot) order strategies whose scores tie
TIE_RULE = "ties go to the faster strategy (latency at batch 1), then to fewer trainable parameters"


def tie_key(score: float) -> float:
    """``score`` rounded so that sums in another order (a mean over 3 seeds of 0.8 is 0.8000000000000002) tie."""
    return round(float(score), 9)


def cheaper_first(summary: dict[str, Any]) -> tuple[float, float]:
    """A strategy's cost as :data:`TIE_RULE` orders it: latency at batch 1 (unmeasured: last), trainable parameters."""
    latency = summary.get("latency_ms_b1")
    return (np.inf if latency is None else float(latency), float(summary.get("trainable_params") or 0))


def _calibration(y_val, y_test, trials: list[TrialRecord], shipped: int) -> dict[str, Any]:
    temps, before, after = [], [], []
    for t in trials:
        temp = fit_temperature(t.val_logits, y_val)
        temps.append(temp)
        before.append(expected_calibration_error(y_test, softmax(t.test_logits)))
        after.append(expected_calibration_error(y_test, softmax(t.test_logits, temp)))
    t = trials[shipped]
    note = None
    if separates(t.val_logits, y_val):
        note = ("validation predicted without an error: no temperature fits such data (a lower one is always "
                "better on it), so the probabilities ship as the model gives them (T = 1); they may be over-confident")
    return {
        "temperature": temps[shipped],
        "temperatures": temps,
        "note": note,
        "ece_before": float(np.mean(before)),
        "ece_after": float(np.mean(after)),
        "reliability_before": reliability_curve(y_test, softmax(t.test_logits)),
        "reliability_after": reliability_curve(y_test, softmax(t.test_logits, temps[shipped])),
    }


def summarise_strategy(name: str, trials: list[TrialRecord], val: LabeledData, test: LabeledData, cfg: StudyConfig) -> dict[str, Any]:
    """Everything the report says about one strategy, over its seeds."""
    ev = cfg.eval
    probs = [softmax(t.test_logits) for t in trials]
    test_ci, seed_stats = {}, {}
    for m in ev.scored_metrics:
        s = seed_averaged(test.labels, probs, m, n_boot=ev.bootstrap, confidence=ev.confidence, seed=cfg.seed)
        test_ci[m] = {"value": s["value"], "ci_low": s["ci_low"], "ci_high": s["ci_high"]}
        seed_stats[m] = {"mean": s["mean"], "std": s["std"], "values": s["values"]}
    per_seed = [classification_metrics(test.labels, p, test.label_names) for p in probs]
    per_class = {c: {k: float(np.mean([ps["per_class"][c][k] for ps in per_seed])) for k in ("precision", "recall", "f1", "support")}
                 for c in test.label_names}
    confusion = np.sum([ps["confusion_matrix"] for ps in per_seed], axis=0).tolist()
    per_seed_val = [classification_metrics(val.labels, softmax(t.val_logits)) for t in trials]
    val_metrics = {k: float(np.mean([m[k] for m in per_seed_val])) for k in HEADLINE_METRICS}  # any of them can rank
    # the seed whose model ships: best on validation by the metric that ranks the strategies
    shipped = int(np.argmax(_better_first([m[ev.metric] for m in per_seed_val], ev.metric)))
    first = trials[0].result
    return {
        "kind": first["kind"],
        "strategy": first["name"],
        "params": first["params"],
        "seeds": [t.key.seed for t in trials],
        "test": test_ci,
        "seed_stats": seed_stats,
        "val": val_metrics,
        "per_class": per_class,
        "confusion_matrix": confusion,
        "confusion_note": f"summed over {len(trials)} seed(s)",
        "latency_ms_b1": first.get("latency_ms_b1"),
        "latency_ms_b32": first.get("latency_ms_b32"),
        "model_bytes": first.get("model_bytes"),
        "trainable_params": first.get("trainable_params"),
        "total_params": first.get("total_params"),
        "fit_seconds": float(np.mean([t.result["fit_seconds"] for t in trials])),
        "history": [t.result.get("history", []) for t in trials],
        "calibration": _calibration(val.labels, test.labels, trials, shipped),
        "shipped_seed": trials[shipped].key.seed,
        "stopped_early": any(t.result.get("info", {}).get("stopped_early", False) for t in trials),
        "info": [t.result.get("info", {}) for t in trials],
    }


def select_winner(strategies: dict[str, dict[str, Any]], metric: str) -> tuple[str, str | None, dict[str, Any]]:
    """Best mean validation ``metric`` over seeds (never the test split); :data:`TIE_RULE` breaks ties."""
    score = dict(zip(strategies, _better_first([s["val"][metric] for s in strategies.values()], metric), strict=True))
    ranked = sorted(strategies, key=lambda s: (-tie_key(score[s]), *cheaper_first(strategies[s])))
    best = "highest" if METRICS[metric].higher_is_better else "lowest"
    rule = f"{best} validation {metric} (mean over seeds); {TIE_RULE}"
    why = ", ".join(f"{s}: {strategies[s]['val'][metric]:.3f}" for s in ranked)
    return ranked[0], (ranked[1] if len(ranked) > 1 else None), {"rule": rule, "selection_method": "validation split",
                                                                 "ranking": ranked, "why": f"validation {metric} — {why}"}


def keep_preferred(selection: dict[str, Any], preferred: str | None, trials: dict[str, list[TrialRecord]], val: LabeledData,
                   cfg: StudyConfig) -> tuple[str, str | None, dict[str, Any]]:
    """The validation ranking tested against the measured default order: when the validation leader is not the
    ``preferred`` strategy, it wins only if its lead is significant (paired bootstrap on the validation rows, seeds
    averaged: the CI lies above 0; and McNemar's test on their predictions below 1 - confidence). A small or
    saturated validation split cannot separate strategies, and then the prior decides. Returns (winner, runner-up, selection with ``decided_by`` and the test in ``why``)."""
    ranking = list(selection["ranking"])
    leader = ranking[0]
    if preferred is None or preferred not in trials or not len(val):
        return leader, (ranking[1] if len(ranking) > 1 else None), {**selection, "decided_by": "data"}
    rule = (f"{selection['rule']}; the preferred {preferred} (the measured default order) is kept unless the leader "
            "beats it significantly on the validation rows (paired bootstrap, seeds averaged, and McNemar's test)")
    if leader == preferred:
        return leader, (ranking[1] if len(ranking) > 1 else None), {**selection, "rule": rule, "decided_by": "data and prior"}
    ev = cfg.eval
    lead = [softmax(t.val_logits) for t in trials[leader]]
    pref = [softmax(t.val_logits) for t in trials[preferred]]
    test = paired_bootstrap(val.labels, lead, pref, ev.metric, n_boot=ev.bootstrap, confidence=ev.confidence, seed=cfg.seed)
    # a percentile bootstrap of a handful of rows is overconfident: the exact McNemar test must agree
    exact = mcnemar(val.labels, np.mean(lead, axis=0), np.mean(pref, axis=0))
    verdict = {**{k: test[k] for k in ("diff", "ci_low", "ci_high", "p_value")}, "mcnemar_p": exact["p_value"]}
    span = f"{test['diff']:+.3f} [{test['ci_low']:+.3f}, {test['ci_high']:+.3f}], McNemar p = {exact['p_value']:.3f}"
    if test["ci_low"] > 0 and exact["p_value"] < 1 - ev.confidence:
        why = f" {leader} leads the preferred {preferred} significantly on the {len(val)} validation rows: {span}."
        return leader, ranking[1], {**selection, "rule": rule, "decided_by": "data", "prior_test": verdict,
                                    "why": selection["why"] + why}
    ranking = [preferred] + [n for n in ranking if n != preferred]
    why = (f" {leader}'s lead over the preferred {preferred} on the {len(val)} validation rows, {span}, is not "
           f"significant, so the measured default order decided: {preferred} was kept.")
    return preferred, leader, {**selection, "rule": rule, "ranking": ranking, "decided_by": "prior", "prior_test": verdict,
                               "why": selection["why"] + why}


def compare(a: list[TrialRecord], b: list[TrialRecord], test: LabeledData, cfg: StudyConfig) -> dict[str, Any]:
    """Paired bootstrap (seed-averaged) on the headline metric + McNemar on the first seeds' predictions."""
    pa = [softmax(t.test_logits) for t in a]
    pb = [softmax(t.test_logits) for t in b]
    res = paired_bootstrap(test.labels, pa, pb, cfg.eval.metric, n_boot=cfg.eval.bootstrap, confidence=cfg.eval.confidence, seed=cfg.seed)
    res["mcnemar_p"] = mcnemar(test.labels, pa[0].argmax(1), pb[0].argmax(1))["p_value"]
    res["accuracy"] = paired_bootstrap(test.labels, pa, pb, "accuracy", n_boot=cfg.eval.bootstrap, confidence=cfg.eval.confidence, seed=cfg.seed)
    return res


def transfer_gain(best_transfer: str | None, trials: dict[str, list[TrialRecord]], test: LabeledData, cfg: StudyConfig,
                  strategies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Paired difference of the best transfer strategy over ``scratch`` and over the data's no-pretraining baseline,
    ``tfidf_logreg`` (text) or ``pixel_logreg`` (images); each listed, as None, when it did not run."""
    out: dict[str, Any] = {}
    for base in ("scratch", "pixel_logreg" if cfg.data.modality == "image" else "tfidf_logreg"):
        name = next((s for s, v in strategies.items() if v["strategy"] == base), None)
        if best_transfer and name:
            out[f"over_{base}"] = {"a": best_transfer, "b": name, **compare(trials[best_transfer], trials[name], test, cfg)}
        else:
            out[f"over_{base}"] = None
    return out


def slices_for(record: TrialRecord, test: LabeledData, cfg: StudyConfig, temperature: float) -> list[dict[str, Any]]:
    """Slices of the shipped model: config slice columns, input-length quartiles, each true class."""
    groups = auto_slices([str(x) for x in test.inputs] if isinstance(test.inputs[0], str) else None, test.labels, test.label_names)
    for col in cfg.data.slices:
        if col in test.meta.columns:  # a column named like an automatic slice ("length", "class") keeps both
            groups[f"{col} (column)" if col in groups else col] = test.meta[col].astype(str).to_numpy()
    return slice_metrics(test.labels, softmax(record.test_logits, temperature), groups, metric="accuracy",
                         n_boot=cfg.eval.bootstrap, confidence=cfg.eval.confidence, seed=cfg.seed)


def gates_for(cfg: StudyConfig, winner: dict[str, Any], comparisons: dict[str, dict[str, Any]],
              winner_name: str | None = None, failed: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The config's gates on the winner; ``failed`` (strategy -> its error) says why a ``beats:`` gate on a
    strategy that could not run cannot pass."""
    summary: dict[str, Any] = dict(winner["test"])
    summary["ece"] = {"value": winner["calibration"]["ece_after"]}  # the model ships calibrated
    for k in (name for name, m in METRICS.items() if m.measured in ("latency", "size")):
        if winner.get(k) is not None:
            summary[k] = winner[k]
    unmeasured = {name: f"failed ({f['error']})" for name, f in (failed or {}).items()}
    return evaluate_gates(cfg.eval.gates, summary, comparisons, cfg.eval.confidence, winner=winner_name, unmeasured=unmeasured)
