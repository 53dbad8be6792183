"""The few-shot regime: when to distrust the validation split, how to select instead, and defaults by data size.

With fewer than about 50 training examples per class a validation split holds a handful of examples: its
accuracy moves in steps of 10-25 points, so "highest validation score" picks at random. :func:`select_by_kfold`
instead scores every candidate by repeated stratified k-fold on train+val — each fold runs the candidate's
whole procedure (its own inner train/val split, as in the study) and scores it on the held-out fold.
:func:`recommend` gives the strategies and settings to run for a given number of examples per class; the
table comes from ``bench/fewshot.py`` (figures and how they were read: ``docs/fewshot.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold

from ..core.config import TrainConfig
from ..core.errors import ConfigError, GraftError
from ..core.progress import Progress, Task
from ..data.dataset import LabeledData
from ..evaluation import get_metric, softmax
from ..strategies import FitContext, Strategy, trial_context
from ..training import Trainer, seed_everything
from .aggregate import TIE_RULE, cheaper_first, tie_key

__all__ = [
    "DEFAULTS",
    "IMAGE_DEFAULTS",
    "TINY_PER_CLASS",
    "as_study_selection",
    "combine",
    "inner_split",
    "kfold_tasks",
    "make_ctx_factory",
    "recommend",
    "select_by_kfold",
    "selection_plan",
    "typical_per_class",
]

#: below this many training examples in the smallest class, selection uses k-fold on train+val
TINY_PER_CLASS = 50
#: ... unless train+val hold more rows than this: k-fold fits every strategy six times, and on larger data that
#: multiplies hours of fine-tuning (contrastive on 11k bird-strike remarks for one 44-example class; on 2,300 course
#: titles in 130 classes) to rank on a validation split of 150 rows or more, where the few-shot measurements that
#: chose k-fold had 16-64 examples (docs/fewshot.md); eval.selection: kfold forces it
KFOLD_MAX_ROWS = 1000

#: measured defaults by examples per class (upper bound exclusive), from bench/fewshot.py (docs/fewshot.md)
_CONTRASTIVE = {"name": "contrastive", "params": {"loss": "supcon", "lr": 2e-5, "epochs": 1, "pairs_per_example": 20}}
_PROBE = {"name": "linear_probe", "params": {}}

DEFAULTS: list[dict[str, Any]] = [
    {
        "max_per_class": TINY_PER_CLASS,
        "regime": f"few-shot (< {TINY_PER_CLASS} per class)",
        # contrastive preferred: +0.06 / +0.12 over the probe at 16 / 32 per class, level with it at 8 (where
        # k-fold fits both anyway, so preferring the probe would save one fit and cost accuracy on the confirmation run);
        # bench/peers.py kept it on 11 of 11 samples, refit: +0.015 over a plain probe at 8 per class, four datasets
        "strategies": [_CONTRASTIVE, _PROBE],
        "train": {"lr": 5e-5, "epochs": 10},
        "evidence": "docs/fewshot.md#measurements (8, 16 and 32 per class); beside SetFit, the Trainer, TF-IDF and a plain "
                    "probe: docs/fewshot.md#side-by-side-with-what-users-would-pick-instead-benchpeerspy",
    },
    {
        "max_per_class": None,
        "regime": f"small data (>= {TINY_PER_CLASS} per class)",
        # finetune (top 2 blocks) left out: at these settings it ranked below full fine-tuning on validation on
        # every real dataset and size measured (docs/fewshot.md), for about a quarter of the default study's time
        "strategies": [
            {"name": "majority", "params": {}},
            {"name": "tfidf_logreg", "params": {}},
            {"name": "linear_probe", "params": {}},
            {"name": "full", "params": {}},
        ],
        # full fine-tuning measured above the probe and TF-IDF at 100+ examples per class wherever they were compared
        # (docs/fewshot.md); a validation lead over it must be significant (study.aggregate.keep_preferred)
        "preferred": "full",
        "train": {"lr": 5e-5, "epochs": 4},
        "evidence": "docs/benchmarks.md#default-study-against-one-trainer-run (B15: 1,000 fine-food reviews); "
                    "docs/fewshot.md#defaults-by-data-size (full vs finetune top-2)",
    },
]


#: the same for images (efficientnet-lite0@112), full fine-tuning (lr 5e-4, 5 epochs) in both rows; the probe stays a
#: candidate below 50 per class, where one single-seed run had it ahead of full (docs/benchmarks.md#images, B29-B31;
#: docs/images.md#without-strategies).
_FULL_IMAGE = {"name": "full", "params": {"lr": 5e-4, "epochs": 5}}
IMAGE_DEFAULTS: list[dict[str, Any]] = [
    {
        "max_per_class": TINY_PER_CLASS,
        "regime": f"few-shot (< {TINY_PER_CLASS} per class)",
        # full first: k-fold keeps it unless the probe beats it significantly (it led by
        # +0.006 to +0.088, +0.046 on average, in the six measurements)
        "strategies": [_FULL_IMAGE, _PROBE],
        "train": {"lr": 5e-4, "epochs": 5},
        "evidence": "docs/images.md#without-strategies (20 images per class: Fashion-MNIST, digits, MNIST)",
    },
    {
        "max_per_class": None,
        "regime": f"small data (>= {TINY_PER_CLASS} per class)",
        "strategies": [_PROBE, _FULL_IMAGE],
        "preferred": "full",  # ranked first at 100 per class on Fashion-MNIST and at 126 on digits
        "train": {"lr": 5e-4, "epochs": 5},
        "evidence": "docs/images.md#measured-graft-study-examplesfashion_mnistyaml (100 images per class)",
    },
]


def recommend(n_per_class: int, modality: str = "text") -> dict[str, Any]:
    """Strategies and settings to run for ``n_per_class`` training examples per class (the study passes its median
    class, :func:`typical_per_class`) of ``modality`` data ("text" or "image").

    Returns:
        ``{"regime", "strategies": [{"name", "params"}], "train": {"lr", "epochs"}, "selection":
        "repeated stratified k-fold" | "validation split", "preferred": the first strategy (for
        ``select_by_kfold(preferred=...)``), "evidence"}``.

    Raises:
        ConfigError: for a count below 1.
    """
    if not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ConfigError(f"The 'n_per_class' argument of recommend must be an integer >= 1. Got {n_per_class!r} instead.")
    if modality not in ("text", "image"):
        raise ConfigError(f"The 'modality' argument of recommend must be 'text' or 'image'. Got {modality!r} instead.")
    table = IMAGE_DEFAULTS if modality == "image" else DEFAULTS
    row = next(r for r in table if r["max_per_class"] is None or n_per_class < r["max_per_class"])
    strategies = [{"name": s["name"], "params": dict(s["params"])} for s in row["strategies"]]
    return {
        "regime": row["regime"],
        "strategies": strategies,
        "train": dict(row["train"]),
        "selection": "repeated stratified k-fold" if n_per_class < TINY_PER_CLASS else "validation split",
        # kept unless another strategy beats it significantly (select_by_kfold(preferred=...), keep_preferred)
        "preferred": row.get("preferred", strategies[0]["name"]),
        "evidence": row["evidence"],
    }


def selection_plan(train: LabeledData, val: LabeledData, threshold: int = TINY_PER_CLASS,
                   ordered_by: str | None = None) -> dict[str, Any]:
    """Whether the study should select by k-fold (tiny training split) or by its validation split, and why.

    ``ordered_by``: the split is ordered in time by this column; the validation split then ranks the strategies
    whatever its size, since shuffled k-fold would train on rows newer than those it scores.
    """
    counts = train.class_counts()
    smallest = int(counts.min()) if len(counts) else 0
    typical = typical_per_class(train)
    val_smallest = int(val.class_counts().min()) if len(val) else 0
    rows = len(train) + len(val)
    if smallest < threshold and ordered_by:
        why = (f"The training split has {smallest} examples in its smallest class (fewer than {threshold}), but the "
               f"split is ordered in time ({ordered_by!r}): the later validation rows ({val_smallest} in the smallest "
               "class) rank the strategies, as shuffled k-fold would train on rows newer than those it scores "
               "(eval.selection: kfold asks for it anyway).")
        return {"use_kfold": False, "n_per_class": smallest, "selection_method": "validation split", "why": why}
    if smallest < threshold and rows > KFOLD_MAX_ROWS:
        why = (f"The training split has {smallest} examples in its smallest class (fewer than {threshold}) and "
               f"{typical} in its median class, but train+val hold {rows:,} rows: the validation split ({len(val):,} "
               f"rows, {val_smallest} in the smallest class) ranks the strategies, as repeated k-fold would fit each "
               f"six times on data this size (more than {KFOLD_MAX_ROWS:,} rows; eval.selection: kfold asks for it anyway).")
        return {"use_kfold": False, "n_per_class": smallest, "selection_method": "validation split", "why": why}
    if smallest < threshold:
        why = (f"The training split has {smallest} examples in its smallest class (fewer than {threshold}), so its "
               f"validation split ({val_smallest} in the smallest class) is too small to rank strategies reliably; "
               "they are ranked by repeated stratified k-fold on train+val instead.")
        return {"use_kfold": True, "n_per_class": smallest, "selection_method": "repeated stratified k-fold", "why": why}
    why = f"The training split has {smallest} examples in its smallest class (at least {threshold}): the validation split ranks the strategies."
    return {"use_kfold": False, "n_per_class": smallest, "selection_method": "validation split", "why": why}


def typical_per_class(train: LabeledData) -> int:
    """The median number of training examples per class (classes without rows left out): what decides the data-size
    regime, so that one rare class among thousands of rows does not make a study few-shot."""
    counts = train.class_counts()
    counts = counts[counts > 0]
    return int(np.floor(np.median(counts) + 0.5)) if len(counts) else 0  # [49, 50] -> 50


def combine(a: LabeledData, b: LabeledData) -> LabeledData:
    """Rows of ``a`` then ``b`` (same label map) as one :class:`LabeledData`."""
    if list(a.label_names) != list(b.label_names):
        raise ConfigError("combine needs two splits of one task (the same label names).")
    inputs = list(a.inputs) + list(b.inputs) if not isinstance(a.inputs, np.ndarray) else np.concatenate([a.inputs, b.inputs])
    meta = pd.concat([a.meta, b.meta], ignore_index=True) if len(a.meta.columns) and len(b.meta.columns) else pd.DataFrame()
    return LabeledData(inputs, np.concatenate([a.labels, b.labels]), list(a.label_names), np.concatenate([a.ids, b.ids]), meta)


def inner_split(data: LabeledData, val_fraction: float, seed: int) -> tuple[LabeledData, LabeledData]:
    """Stratified (train, val): each class with at least two rows puts round(count * fraction) of them (>= 1) in val."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in range(data.n_classes):
        rows = rng.permutation(np.flatnonzero(data.labels == c))
        k = max(1, round(len(rows) * val_fraction)) if len(rows) >= 2 else 0
        val_idx.extend(rows[:k])
        train_idx.extend(rows[k:])
    return data.subset(np.sort(train_idx)), data.subset(np.sort(val_idx))


def make_ctx_factory(train_cfg: TrainConfig, backbone: Any) -> Callable[[int], FitContext]:
    """FitContexts as a study trial builds them (no work folder: fold models are thrown away)."""

    def factory(seed: int) -> FitContext:
        return trial_context(train_cfg, seed, Trainer, backbone=backbone, progress=False)

    return factory


def kfold_tasks(names: Sequence[str], data: LabeledData, n_splits: int = 3, n_repeats: int = 2) -> list[Task]:
    """The fits :func:`select_by_kfold` runs on ``data``, one per candidate and fold, as a progress plan counts them
    (none when a class is too small for k-fold)."""
    counts = data.class_counts()
    smallest = int(counts.min()) if len(counts) else 0
    if smallest < 2:
        return []
    folds = min(n_splits, smallest)
    rows = len(data) - len(data) // folds  # each fit trains on the other folds
    return [_fold_task(name, i, folds * n_repeats, rows) for name in names for i in range(folds * n_repeats)]


def _fold_task(name: str, i: int, n: int, rows: int) -> Task:
    return Task(f"k-fold {name} fit {i + 1}/{n}", name, rows=rows, kind="k-fold")


def _fit_fold(strategy: Strategy, fold_train: LabeledData, held: LabeledData, ctx: FitContext, val_fraction: float) -> np.ndarray:
    inner_train, inner_val = inner_split(fold_train, val_fraction, ctx.seed)
    seed_everything(ctx.seed)
    outcome = strategy.fit(inner_train, inner_val, ctx)
    return softmax(outcome.predictor.predict_logits(list(held.inputs)))


def select_by_kfold(
    candidates: Sequence[tuple[str, Strategy]],
    data: LabeledData,
    ctx_factory: Callable[[int], FitContext],
    metric: str = "macro_f1",
    n_splits: int = 3,
    n_repeats: int = 2,
    seed: int = 0,
    val_fraction: float = 0.2,
    preferred: str | None = None,
    costs: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Rank candidate strategies by repeated stratified k-fold on ``data`` (train+val).

    Args:
        candidates: (display name, strategy); ties in mean score go to the cheaper one by ``costs``, else the earlier.
        data: every labeled example the study may train on (train+val; never test).
        ctx_factory: seed -> FitContext (see :func:`make_ctx_factory`).
        metric: a headline metric name (``graftlab.evaluation.HEADLINE_METRICS``).
        n_splits, n_repeats: folds, and how many times the fold assignment is redrawn (lowered to the smallest
            class count when a class is too small for ``n_splits`` folds).
        seed: fold assignment and the fits' seed (repeat r fits with ``seed + r``).
        val_fraction: each fold's training part is split again into train/val for the strategy's own choices.
        preferred: a candidate kept unless the best one beats it significantly: the 95% t interval of their paired
            fold differences lies above 0 (:func:`recommend` says which; at 8 examples per class fold scores are
            noise, docs/fewshot.md, and the measured default order then decides); None: the best mean wins.
        costs: name -> the candidate's ``latency_ms_b1`` and ``trainable_params`` (its strategy summary), which order
            ties as ``study.aggregate.TIE_RULE`` says; a candidate without one comes after those with one.
        progress: shows each fit as a trial (:func:`kfold_tasks` plans them).

    Returns:
        ``{"selection_method", "why", "metric", "n_splits", "n_repeats", "scores": {name: {"mean", "std",
        "folds", "fit_seconds"} or {"error"}}, "ranking", "winner", "preferred", "decided_by": "data" | "prior" |
        "data and prior"}``.

    Raises:
        ConfigError: for no candidates, an unknown ``preferred`` or a class with fewer than two examples.
    """
    if not candidates:
        raise ConfigError("select_by_kfold needs at least one candidate strategy; got none.")
    names = [n for n, _ in candidates]
    if preferred is not None and preferred not in names:
        raise ConfigError(f"The 'preferred' argument of select_by_kfold must be one of the candidates {names} or None. "
                          f"Got {preferred!r} instead.")
    m = get_metric(metric)
    sign = 1.0 if m.higher_is_better else -1.0
    smallest = int(data.class_counts().min())
    if smallest < 2:
        raise ConfigError(f"k-fold selection needs at least two examples of every class; the smallest class has {smallest}. "
                          "Add examples or drop the class.")
    folds = min(n_splits, smallest)
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=n_repeats, random_state=seed)
    splits = list(splitter.split(np.zeros(len(data)), data.labels))
    scores: dict[str, dict[str, Any]] = {}
    progress = progress or Progress(False)
    for name, strategy in candidates:
        values, t0 = [], time.perf_counter()
        tasks = [_fold_task(name, i, len(splits), len(tr)) for i, (tr, _) in enumerate(splits)]
        try:
            for i, (tr, held) in enumerate(splits):
                with progress.trial(tasks[i]):
                    proba = _fit_fold(strategy, data.subset(tr), data.subset(held), ctx_factory(seed + i // folds), val_fraction)
                values.append(float(m.fn(data.labels[held], proba)))
        except GraftError as err:  # a candidate that cannot run on a fold is reported, not fatal
            scores[name] = {"error": str(err)}
            progress.drop(tasks)  # its other fits will not run
            continue
        arr = np.asarray(values)
        scores[name] = {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                        "folds": values, "fit_seconds": round(time.perf_counter() - t0, 3)}
    ok = [n for n, _ in candidates if "mean" in scores[n]]
    if not ok:
        raise ConfigError("No candidate strategy could be fitted on the k-fold splits: "
                          + "; ".join(f"{n}: {s['error']}" for n, s in scores.items()))

    def cost(name: str) -> tuple[float, float]:
        return cheaper_first(costs[name]) if costs and name in costs else (np.inf, np.inf)

    ranking = sorted(ok, key=lambda n: (-tie_key(sign * scores[n]["mean"]), *cost(n)))  # stable: else config order
    winner, note, decided_by = ranking[0], "", "data"
    if preferred is not None and preferred in ok and winner != preferred:
        diff = sign * (np.asarray(scores[winner]["folds"]) - np.asarray(scores[preferred]["folds"]))
        low = _t_lower_bound(diff)
        if not low > 0:
            note = (f" {winner} scored {diff.mean():+.3f} against the preferred {preferred}, not significantly (95% "
                    f"lower bound of the paired fold differences {low:+.3f}), so the measured default order decided: "
                    f"{preferred} was kept.")
            winner, decided_by = preferred, "prior"
    elif preferred is not None and winner == preferred:
        decided_by = "data and prior"
    listing = ", ".join(f"{n} {scores[n]['mean']:.3f} ± {scores[n]['std']:.3f}" for n in ranking)
    why = (f"{folds}-fold stratified cross-validation repeated {n_repeats} times on train+val ({len(data)} examples, "
           f"{smallest} in the smallest class), {m.name} (mean ± sd over {len(splits)} folds): {listing}.{note}")
    return {"selection_method": "repeated stratified k-fold", "why": why, "metric": m.name, "n_splits": folds,
            "n_repeats": n_repeats, "scores": scores, "ranking": ranking, "winner": winner, "preferred": preferred,
            "decided_by": decided_by}


def _t_lower_bound(diff: np.ndarray, confidence: float = 0.95) -> float:
    """Lower end of the two-sided t confidence interval of the mean of paired differences (-inf for fewer than 2)."""
    from scipy import stats

    if len(diff) < 2:
        return float("-inf")
    se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    if se == 0.0:
        return float(diff.mean())
    return float(diff.mean() - stats.t.ppf(0.5 + confidence / 2, len(diff) - 1) * se)


def as_study_selection(kfold: dict[str, Any], plan: dict[str, Any] | None = None) -> tuple[str, str | None, dict[str, Any]]:
    """(winner, runner-up, selection record) in the shape of ``study.aggregate.select_winner`` for results.json."""
    ranking = [kfold["winner"]] + [n for n in kfold["ranking"] if n != kfold["winner"]]
    rule = f"highest mean k-fold {kfold['metric']} on train+val; {TIE_RULE}"
    if kfold.get("preferred"):
        rule += (f"; the preferred {kfold['preferred']} (the measured default order) is kept unless another beats it "
                 "significantly (95% t interval of the paired fold differences above 0)")
    why = ((plan["why"] + " ") if plan else "") + kfold["why"]
    selection = {"rule": rule, "selection_method": kfold["selection_method"], "ranking": ranking, "why": why,
                 "decided_by": kfold.get("decided_by", "data"),
                 "kfold": {k: kfold[k] for k in ("metric", "n_splits", "n_repeats", "scores")}}
    return ranking[0], (ranking[1] if len(ranking) > 1 else None), selection
