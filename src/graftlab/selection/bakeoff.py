"""Backbone bake-off: score every candidate cheaply on a subset of train, then pick one by a stated rule.

For each candidate whose license the study allows: frozen pooled embeddings of a stratified subset
of train (from the embedding cache, so a candidate is embedded once per data), LogME evidence on
them, the cross-validated accuracy of a logistic-regression probe, optionally a short fine-tune
scored on val, and the backbone's latency on this machine (from the catalog's cache). The winner
has the best configured score among candidates within the latency budget; within
``prefer_faster_within`` of the best score, the faster candidate wins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backbones import Backbone, get_backbone
from ..backbones.catalog import backbone_latency
from ..backbones.embedding_cache import STATS
from ..core.config import BakeoffConfig, StudyConfig
from ..core.errors import ConfigError, DataError
from ..core.progress import Progress, Task
from ..data.dataset import LabeledData
from .license import check_license, license_verdict
from .logme import logme

__all__ = ["SCORE_KEYS", "bakeoff_subset", "pick_winner", "probe_cv_accuracy", "run_bakeoff"]

#: bakeoff.score -> the candidate field it reads
SCORE_KEYS = {"logme": "logme", "probe_cv": "probe_cv_accuracy", "finetune": "finetune_val_accuracy"}
_SCORE_WORDS = {
    "logme": "LogME evidence of frozen embeddings",
    "probe_cv": "nested cross-validated accuracy of a logistic-regression probe on frozen embeddings",
    "finetune": "val accuracy after a short fine-tune",
}


def bakeoff_subset(train: LabeledData, size: int | None, seed: int) -> LabeledData:
    """A stratified sample of ``size`` rows of ``train`` (all of it when ``size`` is None or larger)."""
    if size is None or size >= len(train):
        return train
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train))
    try:
        keep, _ = train_test_split(index, train_size=size, stratify=train.labels, random_state=seed)
    except ValueError:  # a class too small to stratify: a plain random sample is the best we can do
        keep = np.random.default_rng(seed).choice(index, size=size, replace=False)
    return train.subset(np.sort(keep))


def probe_cv_accuracy(x: np.ndarray, y: np.ndarray, folds: int, C: float | Sequence[float], seed: int) -> np.ndarray:
    """Stratified k-fold accuracies of standardise + logistic regression, one per fold (the same folds
    for every candidate given the same labels and seed, so candidates can be compared fold by fold).

    With several ``C`` values, each outer training fold picks its own by an inner stratified CV
    (nested, so the reported accuracy never saw the data that chose C). ``k`` is lowered to the
    smallest class count when a class has fewer than ``folds`` examples.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    counts = np.bincount(y)
    k = int(min(folds, counts[counts > 0].min()))
    if k < 2:
        raise DataError(
            "The bake-off probe needs at least 2 examples of every class in its subset; raise bakeoff.subset "
            f"(now {len(y)} rows, class counts {counts.tolist()})."
        )
    grid = [float(C)] if np.isscalar(C) else [float(c) for c in C]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=grid[0], max_iter=2000))
    inner_k = min(3, k - 1) if len(grid) > 1 else 0  # an outer training fold has >= k-1 examples per class
    if inner_k >= 2:
        inner = StratifiedKFold(inner_k, shuffle=True, random_state=seed)
        model = GridSearchCV(model, {"logisticregression__C": grid}, cv=inner, scoring="accuracy")
    outer = StratifiedKFold(k, shuffle=True, random_state=seed)
    with threadpool_limits(1):  # many tiny fits: one BLAS thread beats several contending for the cores
        scores = cross_val_score(model, x, y, cv=outer, scoring="accuracy")
    return np.asarray(scores, dtype=float)


def _finetune_val_accuracy(bb: Backbone, sub: LabeledData, val: LabeledData, config: StudyConfig,
                           progress: bool) -> float:
    """Accuracy on val after ``finetune_epochs`` of fine-tuning the top ``finetune_layers`` blocks on ``sub``."""
    from ..strategies import make_strategy, trial_context
    from ..training import Trainer, seed_everything

    b = config.bakeoff
    layers = min(b.finetune_layers, bb.card.num_layers)
    # one rate for every candidate (train.lr): partial_lr would scale it by each backbone's depth and confound the scores
    strategy = make_strategy("finetune", {"trainable_layers": layers, "epochs": b.finetune_epochs, "lr": config.train.lr})
    seed_everything(config.seed)
    outcome = strategy.fit(sub, val, trial_context(config.train, config.seed, Trainer, backbone=bb, progress=progress))
    logits = outcome.predictor.predict_logits(list(val.inputs), config.train.eval_batch_size)
    return float(np.mean(logits.argmax(1) == val.labels))


def pick_winner(candidates: list[dict[str, Any]], score: str, margin: float = 0.0) -> dict[str, Any] | None:
    """Best ``score`` among allowed candidates; within ``margin`` of the best, the lowest latency wins."""
    key = SCORE_KEYS[score]
    eligible = [c for c in candidates if c["allowed"] and c.get(key) is not None and math.isfinite(c[key])]
    if not eligible:
        return None
    best = max(c[key] for c in eligible)
    close = [c for c in eligible if c[key] >= best - margin]
    return min(close, key=lambda c: (c["latency_ms_b1"] if c["latency_ms_b1"] is not None else math.inf, -c[key]))


def _rule(b: BakeoffConfig, config: StudyConfig, n: int) -> str:
    parts = [f"highest {b.score} ({_SCORE_WORDS[b.score]}; {n} stratified training examples"
             + (f", {b.folds}-fold CV" if b.score == "probe_cv" else "") + ")"]
    limits = []
    if b.latency_budget_ms is not None:
        limits.append(f"latency ≤ {b.latency_budget_ms:g} ms/example at batch 1")
    req = config.require
    if req.commercial_use or req.licenses is not None:
        lic = []
        if req.commercial_use:
            lic.append("commercial use")
        if req.licenses is not None:
            lic.append("license in " + ", ".join(req.licenses))
        limits.append("a license allowing " + " and ".join(lic))
    if limits:
        parts.append("among candidates with " + " and ".join(limits))
    if b.prefer_faster_within > 0:
        parts.append(f"the faster candidate wins within {b.prefer_faster_within:g} of the best score")
    return "; ".join(parts)


def _say(progress: bool | Progress, text: str) -> None:
    """What the bake-off is doing: a step of the study's progress display, or a dim line on stderr."""
    if isinstance(progress, Progress):
        progress.step(f"bake-off: {text}")
    elif progress:
        from rich.console import Console

        Console(stderr=True, highlight=False).print(f"[dim]bake-off[/dim] {text}")


def _score_candidate(bb: Backbone, sub: LabeledData, val: LabeledData, config: StudyConfig, row: dict[str, Any],
                     progress: bool | Progress) -> None:
    """Fill ``row`` with the candidate's LogME, probe CV accuracy and (optionally) fine-tune accuracy."""
    b = config.bakeoff
    t0, batches0 = time.perf_counter(), STATS["forward_batches"]
    x = bb.embed(sub.inputs, max_length=config.train.max_length, batch_size=config.train.eval_batch_size)
    row["embed_seconds"] = round(time.perf_counter() - t0, 3)
    row["forward_batches"] = STATS["forward_batches"] - batches0  # 0 when the embeddings were cached
    row["logme"] = round(logme(x, sub.labels), 6)
    folds = probe_cv_accuracy(x, sub.labels, b.folds, b.C, config.seed)
    row.update(probe_cv_accuracy=round(float(folds.mean()), 6), probe_cv_std=round(float(folds.std()), 6),
               folds=len(folds), probe_cv_folds=[round(float(v), 6) for v in folds])
    if b.finetune and row["allowed"]:
        _say(progress, f"{bb.card.name}: short fine-tune ({b.finetune_epochs} epoch(s), top {b.finetune_layers} blocks)")
        t1 = time.perf_counter()
        shown = progress.enabled if isinstance(progress, Progress) else progress
        row["finetune_val_accuracy"] = round(_finetune_val_accuracy(bb, sub, val, config, shown), 6)
        row["finetune_seconds"] = round(time.perf_counter() - t1, 3)


def run_bakeoff(config: StudyConfig, train: LabeledData, val: LabeledData, progress: bool | Progress = True) -> dict[str, Any]:
    """Score every backbone of ``config.backbones`` and pick the winner (the ``results['bakeoff']`` section).

    ``progress``: a study's :class:`~graftlab.core.progress.Progress` shows each candidate's scoring as a trial and
    each phase as a step; True prints the phases on stderr.

    Licenses are checked first (refused candidates are excluded without compute; an error when none
    complies), then latency (an error when no allowed candidate meets the budget), then the scores.

    Returns:
        ``{"candidates": [...], "winner", "runner_up", "rule", "reading", "score", "subset", "seconds"}``;
        each candidate has backbone, logme, probe_cv_accuracy, finetune_val_accuracy (when enabled),
        latency_ms_b1/b32, license, commercial_use, allowed, reason, score, seconds.
    """
    t_start = time.perf_counter()
    b = config.bakeoff
    backbones = [get_backbone(name) for name in config.backbones]
    names = [bb.card.name for bb in backbones]
    if len(set(names)) != len(names):
        raise ConfigError(f"The 'backbones' list names the same backbone twice: {names}. List each candidate once.")
    check_license(config, backbones, require_all=False)  # before any compute; raises when none complies

    rows: list[dict[str, Any]] = []
    licensed: list[dict[str, Any]] = []  # license allowed: scored (over-budget ones too)
    for bb in backbones:
        t0 = time.perf_counter()
        verdict = license_verdict(bb, config.require)
        row: dict[str, Any] = {"backbone": bb.card.name, "params": bb.card.params, "license": verdict.license,
                               "commercial_use": verdict.commercial_use, "allowed": verdict.allowed,
                               "reason": "ok" if verdict.allowed else f"license: {verdict.reason}",
                               "logme": None, "probe_cv_accuracy": None, "latency_ms_b1": None, "latency_ms_b32": None}
        if b.finetune:
            row["finetune_val_accuracy"] = None
        if verdict.allowed:
            licensed.append(row)
            _say(progress, f"{bb.card.name}: latency on this machine")
            lat = backbone_latency(bb) or {}
            row["latency_ms_b1"], row["latency_ms_b32"] = lat.get("latency_ms_b1"), lat.get("latency_ms_b32")
            budget = b.latency_budget_ms
            if budget is not None and (row["latency_ms_b1"] is None or row["latency_ms_b1"] > budget):
                got = "not measurable" if row["latency_ms_b1"] is None else f"{row['latency_ms_b1']:.1f} ms"
                row["allowed"], row["reason"] = False, f"latency {got}/example at batch 1 exceeds the budget of {budget:g} ms"
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
    if not any(r["allowed"] for r in rows):
        fastest = min(licensed, key=lambda r: r["latency_ms_b1"] if r["latency_ms_b1"] is not None else math.inf)
        raise ConfigError(
            f"No bake-off candidate meets bakeoff.latency_budget_ms = {b.latency_budget_ms:g} ms/example at batch 1: "
            + "; ".join(f"{r['backbone']}: {r['latency_ms_b1']} ms" for r in licensed)
            + f". Raise the budget (the fastest, {fastest['backbone']}, needs {fastest['latency_ms_b1']} ms) "
            "or add a smaller backbone to 'backbones'."
        )

    sub = bakeoff_subset(train, b.subset, config.seed)
    tracker = progress if isinstance(progress, Progress) else Progress(False)
    tasks = {bb.card.name: Task(f"bake-off {bb.card.name}", "bake-off", len(sub), "bake-off")
             for bb, row in zip(backbones, rows, strict=True) if any(row is r for r in licensed)}
    tracker.plan(tasks.values())
    for bb, row in zip(backbones, rows, strict=True):
        if any(row is r for r in licensed):  # over budget too: the report shows what the budget costs
            _say(progress, f"{bb.card.name}: embeddings, LogME and {b.folds}-fold probe on {len(sub)} examples")
            t0 = time.perf_counter()
            with tracker.trial(tasks[bb.card.name]):
                _score_candidate(bb, sub, val, config, row, progress)
            row["seconds"] = round(row["seconds"] + time.perf_counter() - t0, 3)
        value = row.get(SCORE_KEYS[b.score])
        row["score"] = value

    winner = pick_winner(rows, b.score, b.prefer_faster_within)
    if winner is None:
        raise ConfigError(f"No bake-off candidate has a {b.score} score; check the 'bakeoff' section of the config.")
    others = sorted((r for r in rows if r is not winner and r["score"] is not None), key=lambda r: -r["score"])
    runner = others[0] if others else None
    return {
        "candidates": rows,
        "winner": winner["backbone"],
        "runner_up": runner["backbone"] if runner else None,
        "rule": _rule(b, config, len(sub)),
        "reading": _reading(winner, runner, b),
        "score": b.score,
        "subset": len(sub),
        "seconds": round(time.perf_counter() - t_start, 3),
    }


def _reading(winner: dict[str, Any], runner: dict[str, Any] | None, b: BakeoffConfig) -> str:
    """One sentence on why the winner won; for probe_cv, the fold-by-fold (paired) difference as the yardstick."""
    key = SCORE_KEYS[b.score]
    head = f"{winner['backbone']} selected: {b.score} {winner[key]:.4g}"
    if runner is None:
        return head + " (the only scored candidate)."
    diff = winner[key] - runner[key]
    text = f"{head} vs {runner['backbone']} {runner[key]:.4g} ({diff:+.3g})"
    if not runner["allowed"]:
        text += f"; {runner['backbone']} was excluded ({runner['reason']})"
    elif diff < 0:
        text += f"; within bakeoff.prefer_faster_within = {b.prefer_faster_within:g} the faster one wins"
    a, r = winner.get("probe_cv_folds"), runner.get("probe_cv_folds")
    if b.score == "probe_cv" and a and r and len(a) == len(r) and len(a) > 1:
        d = np.asarray(a) - np.asarray(r)  # same folds for both: a paired comparison
        se = float(d.std(ddof=1) / np.sqrt(len(d)))
        text += (f"; paired over the same {len(d)} folds: {d.mean():+.3f} ± {se:.3f} (SE), "
                 f"ahead on {int((d > 0).sum())} of {len(d)} folds")
        if abs(d.mean()) <= 2 * se:
            text += ", so the two are close: the rule's pick is not a clear win"
    return text + "."
