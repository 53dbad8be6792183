"""Validation selection against the measured default order: a lead over the preferred strategy must be significant."""

from pathlib import Path

import numpy as np

from graftlab.core.config import StudyConfig
from graftlab.data.dataset import LabeledData
from graftlab.study.aggregate import keep_preferred
from graftlab.study.trials import TrialKey, TrialRecord


def records(name: str, logits: list[np.ndarray]) -> list[TrialRecord]:
    return [TrialRecord(TrialKey(name, s), {}, v, v, Path(".")) for s, v in enumerate(logits)]


def setup(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    val = LabeledData([f"t{i}" for i in range(n)], y, ["a", "b"], np.arange(n))
    right = np.eye(2)[y] * 4.0  # confident and right on every row
    noise = [rng.normal(size=(n, 2)) for _ in range(3)]  # right about half the time
    trials = {"tfidf_logreg": records("tfidf_logreg", [right] * 3), "full": records("full", noise)}
    selection = {"rule": "highest validation macro_f1", "ranking": ["tfidf_logreg", "full"], "why": "validation macro_f1"}
    cfg = StudyConfig.from_dict({"name": "t", "data": {"source": "x.csv", "text": "t", "label": "l"}, "eval": {"bootstrap": 200}})
    return selection, trials, val, cfg


def test_a_significant_lead_on_many_validation_rows_overrides_the_prior():
    selection, trials, val, cfg = setup(200)
    winner, runner_up, out = keep_preferred(selection, "full", trials, val, cfg)
    assert (winner, runner_up, out["decided_by"]) == ("tfidf_logreg", "full", "data")
    assert out["prior_test"]["ci_low"] > 0 and "leads the preferred full significantly" in out["why"]


def test_a_lead_on_a_handful_of_rows_is_not_enough():
    selection, trials, val, cfg = setup(4)
    winner, runner_up, out = keep_preferred(selection, "full", trials, val, cfg)
    assert (winner, runner_up, out["decided_by"]) == ("full", "tfidf_logreg", "prior")
    # four rows: even a lead on every row the bootstrap calls sure is no evidence by McNemar's exact test
    assert out["ranking"] == ["full", "tfidf_logreg"] and out["prior_test"]["mcnemar_p"] >= 0.05
    assert "measured default order decided: full was kept" in out["why"]


def test_without_a_preferred_strategy_the_validation_ranking_stands():
    selection, trials, val, cfg = setup(4)
    assert keep_preferred(selection, None, trials, val, cfg)[:2] == ("tfidf_logreg", "full")
    assert keep_preferred(selection, "tfidf_logreg", trials, val, cfg)[2]["decided_by"] == "data and prior"
