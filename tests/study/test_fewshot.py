"""Tiny-data selection (repeated stratified k-fold on train+val) and the size-dependent defaults."""

import re
from pathlib import Path

import numpy as np
import pytest

from graftlab.core.config import TrainConfig
from graftlab.core.errors import ConfigError, DataError
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, Strategy, make_strategy
from graftlab.study.fewshot import (
    DEFAULTS,
    KFOLD_MAX_ROWS,
    TINY_PER_CLASS,
    as_study_selection,
    combine,
    inner_split,
    make_ctx_factory,
    recommend,
    select_by_kfold,
    selection_plan,
    typical_per_class,
)
from graftlab.testing import synthetic_reviews

DOC = Path(__file__).resolve().parents[2] / "docs" / "fewshot.md"


def labeled(df) -> LabeledData:
    names = sorted(df.score.unique())
    y = df.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    return LabeledData(df.review.tolist(), y, names, np.arange(len(df)))


def no_backbone(seed: int) -> FitContext:
    return FitContext(train=TrainConfig(), seed=seed)


class Broken(Strategy):
    """A candidate that cannot fit (e.g. a strategy needing more data than a fold has)."""

    name = "broken"
    uses_backbone = False

    def fit(self, train, val, ctx):
        raise DataError("needs more examples than this fold has")


# -- selection ------------------------------------------------------------------------------------
def test_kfold_selection_picks_the_clearly_better_strategy():
    data = labeled(synthetic_reviews(48, seed=1))  # 16 'other', 32 'great'
    cands = [("majority", make_strategy("majority")), ("tfidf_logreg", make_strategy("tfidf_logreg"))]
    out = select_by_kfold(cands, data, no_backbone, metric="macro_f1", n_splits=3, n_repeats=2, seed=0)
    assert out["selection_method"] == "repeated stratified k-fold"
    assert out["winner"] == "tfidf_logreg" and out["ranking"] == ["tfidf_logreg", "majority"]
    assert out["n_splits"] == 3 and out["n_repeats"] == 2
    for name in ("majority", "tfidf_logreg"):
        assert len(out["scores"][name]["folds"]) == 6
        assert out["scores"][name]["mean"] == pytest.approx(np.mean(out["scores"][name]["folds"]))
    assert out["scores"]["tfidf_logreg"]["mean"] > out["scores"]["majority"]["mean"] + 0.2
    assert "3-fold stratified cross-validation repeated 2 times" in out["why"] and "tfidf_logreg" in out["why"]


def test_the_preferred_strategy_is_kept_on_a_tie():
    data = labeled(synthetic_reviews(36, seed=2))
    # the same procedure twice: identical fold scores, so the preferred (first) one must be kept
    cands = [("preferred", make_strategy("tfidf_logreg", {"C": [1.0]})), ("same", make_strategy("tfidf_logreg", {"C": [1.0]}))]
    for preferred in ("preferred", "same", None):
        out = select_by_kfold(cands, data, no_backbone, n_splits=3, n_repeats=1, preferred=preferred)
        assert out["winner"] == (preferred or "preferred")  # without a preference, ties go to the first
    with pytest.raises(ConfigError, match="'preferred' argument.*Got 'other'"):
        select_by_kfold(cands, data, no_backbone, preferred="other")


def test_the_preferred_strategy_gives_way_to_a_significant_gain():
    data = labeled(synthetic_reviews(48, seed=1))
    cands = [("majority", make_strategy("majority")), ("tfidf_logreg", make_strategy("tfidf_logreg"))]
    out = select_by_kfold(cands, data, no_backbone, n_splits=3, n_repeats=2, preferred="majority")
    assert out["winner"] == "tfidf_logreg" and out["decided_by"] == "data"  # every fold far above the majority class
    assert "kept" not in out["why"]


def test_the_preferred_strategy_is_kept_unless_the_t_interval_clears_zero():
    data = labeled(synthetic_reviews(36, seed=2))
    # two C grids that may differ by a fold or two; whichever is preferred must stay unless significantly beaten
    cands = [("a", make_strategy("tfidf_logreg", {"C": [1.0]})), ("b", make_strategy("tfidf_logreg", {"C": [0.01]}))]
    plain = select_by_kfold(cands, data, no_backbone, n_splits=3, n_repeats=2)
    loser = plain["ranking"][-1]
    kept = select_by_kfold(cands, data, no_backbone, n_splits=3, n_repeats=2, preferred=loser)
    diff = np.asarray(plain["scores"][plain["winner"]]["folds"]) - np.asarray(plain["scores"][loser]["folds"])
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    significant = diff.mean() - 2.5706 * se > 0  # t(0.975, 5 degrees of freedom)
    assert kept["winner"] == (plain["winner"] if significant else loser)
    assert kept["decided_by"] == ("data" if significant else "prior")
    assert ("measured default order decided" in kept["why"]) == (not significant)


def test_a_lead_of_one_standard_error_no_longer_overrides_the_preferred():
    from graftlab.study.fewshot import _t_lower_bound

    diff = np.array([0.10, 0.0, 0.05, 0.12, -0.02, 0.08])  # mean 0.055, one standard error 0.022: the old rule switched
    assert diff.mean() > diff.std(ddof=1) / np.sqrt(len(diff))
    assert _t_lower_bound(diff) < 0 < _t_lower_bound(diff + 0.05)
    assert _t_lower_bound(np.array([0.2])) == float("-inf")


def test_folds_shrink_to_the_smallest_class_and_broken_candidates_are_reported():
    df = synthetic_reviews(30, seed=3)
    data = labeled(df).subset(np.r_[np.flatnonzero(df.score == "other")[:2], np.flatnonzero(df.score == "great")[:10]])
    cands = [("broken", Broken()), ("tfidf_logreg", make_strategy("tfidf_logreg"))]
    out = select_by_kfold(cands, data, no_backbone, n_splits=5, n_repeats=1)
    assert out["n_splits"] == 2
    assert "error" in out["scores"]["broken"] and out["winner"] == "tfidf_logreg"
    with pytest.raises(ConfigError, match="No candidate strategy could be fitted"):
        select_by_kfold([("broken", Broken())], data, no_backbone)
    with pytest.raises(ConfigError, match="at least two examples of every class"):
        select_by_kfold(cands, data.subset(np.r_[0, 2:12]), no_backbone)


def test_folds_score_held_out_rows_only():
    """A strategy that memorises its training rows scores perfectly on them but at chance on held-out folds."""
    data = labeled(synthetic_reviews(40, seed=4))
    rng = np.random.default_rng(0)
    data = LabeledData(data.inputs, rng.permutation(data.labels), data.label_names, data.ids)  # labels unrelated to text
    out = select_by_kfold([("tfidf_logreg", make_strategy("tfidf_logreg", {"C": [100.0]}))], data, no_backbone,
                          metric="accuracy", n_splits=4, n_repeats=2)
    assert out["scores"]["tfidf_logreg"]["mean"] < 0.8


def test_selection_plan_uses_kfold_below_the_threshold_only():
    data = labeled(synthetic_reviews(120, seed=0))
    small, val = data.subset(range(30)), data.subset(range(100, 120))
    plan = selection_plan(small, val)
    assert plan["use_kfold"] and plan["selection_method"] == "repeated stratified k-fold"
    assert f"fewer than {TINY_PER_CLASS}" in plan["why"] and str(small.class_counts().min()) in plan["why"]
    assert not selection_plan(data.subset(range(100)), val, threshold=20)["use_kfold"]
    timed = selection_plan(small, val, ordered_by="created_at")  # later rows must not train a fold that scores earlier ones
    assert not timed["use_kfold"] and timed["selection_method"] == "validation split"
    assert "ordered in time ('created_at')" in timed["why"] and "eval.selection: kfold" in timed["why"]


def test_as_study_selection_has_the_study_shape():
    data = labeled(synthetic_reviews(36, seed=5))
    cands = [("majority", make_strategy("majority")), ("tfidf_logreg", make_strategy("tfidf_logreg"))]
    kfold = select_by_kfold(cands, data, no_backbone, n_splits=3, n_repeats=1)
    plan = selection_plan(data, data)
    winner, runner_up, selection = as_study_selection(kfold, plan)
    assert winner == kfold["winner"] and {winner, runner_up} == {"majority", "tfidf_logreg"}
    assert selection["selection_method"] == "repeated stratified k-fold"
    assert selection["ranking"][0] == winner and selection["why"].startswith(plan["why"])
    assert set(selection["kfold"]["scores"]) == {"majority", "tfidf_logreg"}


def test_inner_split_and_combine():
    data = labeled(synthetic_reviews(30, seed=6))
    train, val = inner_split(data, 0.25, seed=0)
    assert sorted(np.r_[train.ids, val.ids].tolist()) == list(range(30))
    assert all(val.class_counts() >= 1)
    np.testing.assert_array_equal(val.class_counts(), np.round(data.class_counts() * 0.25).clip(1))
    both = combine(train, val)
    assert len(both) == 30 and both.inputs[len(train)] == val.inputs[0]
    np.testing.assert_array_equal(both.labels, np.r_[train.labels, val.labels])


def test_ctx_factory_builds_study_like_contexts():
    ctx = make_ctx_factory(TrainConfig(epochs=2), backbone=None)(7)
    assert ctx.seed == 7 and ctx.train.epochs == 2 and ctx.trainer is not None
    assert ctx.trainer_factory(train_cfg=TrainConfig(epochs=3)).cfg.epochs == 3


# -- defaults by size -----------------------------------------------------------------------------
def documented_table() -> list[tuple[int, int | None, str, list[str], float, int, str]]:
    """Rows of the defaults table in docs/fewshot.md: (lo, hi or None, selection, strategies, lr, epochs, preferred)."""
    text = DOC.read_text()
    block = text.split("<!-- defaults-table -->")[1]
    rows = []
    for line in block.strip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        size, selection, strategies, lr, epochs, preferred = [c.strip() for c in line.strip("|").split("|")][:6]
        lo, hi = re.fullmatch(r"(\d+)(?:-(\d+)|\+)", size).groups()
        selection = selection.removesuffix(", then a refit on train+val")
        rows.append((int(lo), int(hi) if hi else None, selection, [s.strip() for s in strategies.split(",")], float(lr),
                     int(epochs), preferred))
    return rows


def test_recommend_follows_the_documented_table():
    rows = documented_table()
    assert len(rows) == len(DEFAULTS)
    for lo, hi, selection, strategies, lr, epochs, preferred in rows:
        for n in {lo, hi or lo + 1000, (lo + (hi or lo)) // 2}:
            rec = recommend(n)
            assert rec["selection"] == selection, n
            assert [s["name"] for s in rec["strategies"]] == strategies, n
            assert rec["preferred"] == preferred, n
            assert rec["train"] == {"lr": lr, "epochs": epochs}, n
    starts = [r[0] for r in rows]
    assert starts[0] == 1 and all(rows[i][1] + 1 == starts[i + 1] for i in range(len(rows) - 1))  # no gaps


def test_recommend_switches_to_validation_selection_at_the_threshold():
    assert recommend(TINY_PER_CLASS - 1)["selection"] == "repeated stratified k-fold"
    assert recommend(TINY_PER_CLASS)["selection"] == "validation split"
    with pytest.raises(ConfigError, match="n_per_class"):
        recommend(0)


def test_recommend_for_images_follows_the_image_measurements():
    full = {"name": "full", "params": {"lr": 5e-4, "epochs": 5}}
    assert recommend(20, "image")["strategies"] == [full, {"name": "linear_probe", "params": {}}]
    assert recommend(20, "image")["preferred"] == "full"
    assert recommend(TINY_PER_CLASS, "image")["strategies"][-1] == full
    assert recommend(TINY_PER_CLASS - 1, "image")["selection"] == "repeated stratified k-fold"
    with pytest.raises(ConfigError, match="'modality' argument of recommend must be 'text' or 'image'"):
        recommend(10, "audio")


def test_one_rare_class_in_large_data_is_not_few_shot():
    big = labeled(synthetic_reviews(3000, seed=1))
    keep = np.flatnonzero(big.labels != 0)
    rare = np.flatnonzero(big.labels == 0)[:40]
    train = big.subset(np.concatenate([keep, rare]))
    assert train.class_counts().min() == 40 and typical_per_class(train) >= TINY_PER_CLASS
    val = big.subset(rare[:5])
    plan = selection_plan(train, val)  # more than KFOLD_MAX_ROWS rows: six fits per strategy would be the cost
    assert len(train) + len(val) > KFOLD_MAX_ROWS
    assert not plan["use_kfold"] and "median class" in plan["why"] and "eval.selection: kfold" in plan["why"]
    small = train.subset(np.concatenate([np.arange(300), np.arange(len(train) - 40, len(train))]))
    assert len(small) + len(val) <= KFOLD_MAX_ROWS and selection_plan(small, val)["use_kfold"]  # cheap: k-fold


def test_many_small_classes_in_more_than_kfold_max_rows_are_ranked_on_the_validation_split():
    def data(n_classes: int, per_class: int) -> LabeledData:
        y = np.repeat(np.arange(n_classes), per_class)
        return LabeledData([f"text {i}" for i in range(len(y))], y, [f"c{k}" for k in range(n_classes)], np.arange(len(y)))

    train, val = data(130, 14), data(130, 3)  # course titles in 130 subjects: median class 14, 2,210 rows
    assert typical_per_class(train) < TINY_PER_CLASS and len(train) + len(val) > KFOLD_MAX_ROWS
    plan = selection_plan(train, val)
    assert not plan["use_kfold"] and plan["selection_method"] == "validation split"
    assert "14 in its median class, but train+val hold 2,210 rows: the validation split (390 rows" in plan["why"]
    assert selection_plan(data(30, 14), data(30, 3))["use_kfold"]  # 510 rows: k-fold, six fits are cheap


def test_typical_per_class_is_the_median_class():
    def counts(*per_class):
        labels = np.repeat(np.arange(len(per_class) + 1), [*per_class, 0])  # the last class has no rows
        names = [f"c{i}" for i in range(len(per_class) + 1)]
        return LabeledData(["x"] * len(labels), labels, names, np.arange(len(labels)))

    assert typical_per_class(counts(3, 40, 900)) == 40
    assert typical_per_class(counts(49, 50)) == 50  # a class without rows does not count
    assert typical_per_class(counts(7)) == 7
