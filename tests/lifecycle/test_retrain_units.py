"""The retrain building blocks without a study: time-ordered split, the decision rule, the record, the policy."""

import numpy as np
import pandas as pd
import pytest

from graftlab.core.errors import ConfigError
from graftlab.lifecycle import RetrainPolicy, render_markdown, time_split, write_record
from graftlab.lifecycle.record import HoldoutComparison
from graftlab.lifecycle.retrain import _decide


def test_time_split_is_ordered_by_time_newest_last():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ts": rng.permutation(100).astype(float), "x": range(100)})
    parts = time_split(frame, 0.3, 0.2)
    assert [len(parts[k]) for k in ("train", "val", "holdout")] == [50, 20, 30]
    assert parts["train"]["ts"].max() < parts["val"]["ts"].min() < parts["val"]["ts"].max() < parts["holdout"]["ts"].min()
    assert parts["holdout"]["ts"].tolist() == list(range(70, 100))  # the newest 30%
    no_val = time_split(frame, 0.25, 0.0)
    assert len(no_val["val"]) == 0 and len(no_val["holdout"]) == 25


def comparison(diff, lo, hi, n=80):
    return HoldoutComparison.model_validate({
        "comparable": True, "n": n, "metric": "macro_f1", "confidence": 0.95,
        "paired_bootstrap": {"metric": "macro_f1", "diff": diff, "ci_low": lo, "ci_high": hi, "p_value": 0.01},
        "mcnemar": {"b": 12, "c": 2, "p_value": 0.01}})


def test_decision_rule():
    policy = RetrainPolicy()
    decision, reason = _decide(comparison(0.08, 0.02, 0.14), True, policy)
    assert decision == "promote" and "+0.080 [+0.020, +0.140]" in reason and "80 fresh holdout" in reason
    decision, reason = _decide(comparison(0.05, -0.01, 0.11), True, policy)
    assert decision == "keep" and "not significantly better" in reason and "lower bound above 0" in reason
    decision, reason = _decide(comparison(-0.05, -0.10, 0.0), True, policy)
    assert decision == "keep"
    decision, reason = _decide(comparison(0.08, 0.02, 0.14), False, policy)
    assert decision == "keep" and "failed its study gates" in reason
    decision, reason = _decide(comparison(0.08, 0.02, 0.14), True, RetrainPolicy(canary_percent=10))
    assert decision == "canary" and "10% canary" in reason
    decision, reason = _decide(HoldoutComparison(comparable=False, message="labels differ"), True, policy)
    assert decision == "keep" and "labels differ" in reason
    decision, _ = _decide(comparison(float("nan"), float("nan"), float("nan")), True, policy)
    assert decision == "keep"


def test_policy_validation():
    with pytest.raises(ConfigError, match="holdout_fraction"):
        RetrainPolicy.from_dict({"holdout_fraction": 0.6, "val_fraction": 0.5})
    with pytest.raises(ConfigError, match="min_new_labels"):
        RetrainPolicy.from_dict({"min_new_labels": 0})
    with pytest.raises(ConfigError, match="canary_percent"):
        RetrainPolicy.from_dict({"canary_percent": 150})


def test_record_holds_the_evidence(tmp_path):
    outcome = {"decision": "canary", "reason": "significantly better", "record_dir": str(tmp_path),
               "challenger_version": 4, "command": "graft serve m@champion --canary m:4 --canary-percent 10",
               "evidence": {"name": "m", "champion_version": 3, "created": "now",
                            "comparison": {**comparison(0.08, 0.02, 0.14).to_dict(),
                                           "champion": {"accuracy": {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8}},
                                           "challenger": {"accuracy": {"value": 0.8, "ci_low": 0.7, "ci_high": 0.9}}}}}
    write_record(outcome, tmp_path)
    md = (tmp_path / "decision.md").read_text()
    assert "**canary**" in md and "version 4" in md and "--canary m:4" in md
    assert "| challenger | 0.800 [0.700, 0.900] | – |" in md
    assert "challenger alone is right on 12" in md
    assert '"challenger_version": 4' in (tmp_path / "decision.json").read_text()
    assert render_markdown({**outcome, "evidence": {"name": "m"}, "command": None}).startswith("# Retrain decision")


def test_the_retrain_config_replaces_a_time_ordered_split_by_the_recorded_one(tmp_path):
    from graftlab.core.config import StudyConfig
    from graftlab.lifecycle.protocol import SPLIT_COLUMN
    from graftlab.lifecycle.retrain import _config

    champion = StudyConfig.from_dict({"name": "t", "data": {
        "source": {"kind": "csv", "path": "x.csv", "encoding": "latin-1"}, "split": {"order_by": "created_at"}}})
    cfg = _config(champion, tmp_path / "retrain.parquet", "t", "sqlite:///x.db")
    assert cfg.data.split.column == SPLIT_COLUMN and cfg.data.split.order_by is None
    assert cfg.data.source.kind == "parquet" and cfg.data.source.encoding is None


def test_the_retrain_data_keeps_the_champions_merged_classes_and_grouping(tmp_path, reviews_factory):
    """A champion trained with rare_classes: other on a fixed test set: the retrain study, which reads the test rows
    back into its source, must see the same classes (counted over source + test, 'rare' would be a class again)."""
    import pandas as pd

    from graftlab.core.config import StudyConfig
    from graftlab.data import prepare_data
    from graftlab.data.split import load_split_info
    from graftlab.lifecycle.protocol import Protocol, original_frame
    from graftlab.lifecycle.retrain import _config

    source = pd.concat([reviews_factory(n_per_class=20), pd.DataFrame({"review": ["rare a", "rare b"],
                                                                        "score": ["rare", "rare"]})], ignore_index=True)
    test = pd.DataFrame({"review": ["test great", "test other", "test rare c", "test rare d"],
                         "score": ["great", "other", "rare", "rare"]})
    source.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    champion = StudyConfig.from_dict({"name": "t", "data": {
        "source": {"kind": "csv", "path": str(tmp_path / "train.csv")},
        "test_source": {"kind": "csv", "path": str(tmp_path / "test.csv")}, "text": "review", "label": "score",
        "split": {"train": 0.8, "val": 0.2, "test": 0.0},
        "checks": {"rare_classes": "other", "leakage": "group"}}})
    prepared = prepare_data(champion.data)
    assert prepared.label_names == ["great", "other"]
    record = load_split_info(prepared.save_split(tmp_path / "split.json"))
    rows, _ = original_frame(Protocol(champion, record, None, "test", None))
    assert "rare" not in set(rows["score"]) and len(rows) == len(source) + len(test)
    rows.to_parquet(tmp_path / "retrain.parquet")
    cfg = _config(champion, tmp_path / "retrain.parquet", "t", "sqlite:///x.db")  # group -> drop: split is fixed
    assert cfg.data.checks.leakage == "drop"
    again = prepare_data(cfg.data)
    assert again.label_names == prepared.label_names
    assert {n: len(d) for n, d in again.splits.items()} == {n: len(d) for n, d in prepared.splits.items()}
