"""One catalogue of metrics (graftlab.core.metrics): the config validates against it, evaluation computes it, ranking,
the shipped seed, early stopping and gates read its direction, the report its labels; gates are parsed once."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import precision_score

from graftlab.core.config import StudyConfig
from graftlab.core.errors import ConfigError
from graftlab.data.dataset import LabeledData
from graftlab.evaluation import HEADLINE_METRICS, softmax
from graftlab.study.aggregate import gates_for, select_winner, summarise_strategy
from graftlab.study.trials import TrialKey, TrialRecord


def config(**eval_):
    return StudyConfig.from_dict({"name": "t", "data": {"source": "x.csv", "text": "t", "label": "l"},
                                  "eval": {"bootstrap": 100, **eval_}})


def split(y: np.ndarray) -> LabeledData:
    return LabeledData([f"t{i}" for i in range(len(y))], np.asarray(y), ["a", "b"], np.arange(len(y)))


def records(name: str, val_logits: list[np.ndarray], test_logits: list[np.ndarray]) -> list[TrialRecord]:
    result = {"kind": "transfer", "name": name, "params": {}, "fit_seconds": 1.0}
    return [TrialRecord(TrialKey(name, seed), result, v, t, Path(".")) for seed, (v, t) in enumerate(zip(val_logits, test_logits))]


def noisy(y: np.ndarray, skill: float, seed: int) -> np.ndarray:
    return np.eye(2)[y] * skill + np.random.default_rng(seed).normal(size=(y.size, 2))


# ---- gates ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gate", "hint"), [("macro_precison >= 0.8", "(did you mean 'macro_precision'?)"),
                                            ("fit_seconds <= 60", "")])
def test_a_gate_on_a_metric_that_is_not_measured_is_refused_naming_what_a_gate_can_use(gate, hint):
    with pytest.raises(ConfigError) as err:
        config(gates=["macro_f1 >= 0.5", gate])
    text = str(err.value)
    assert "'eval.gates.1'" in text and hint in text and "beats: STRATEGY" in text
    assert all(name in text for name in ("accuracy", "macro_f1", "macro_precision", "latency_ms_b1", "model_bytes"))


def test_a_macro_precision_gate_passes_or_fails_on_the_measured_value():
    y_val, y_test = np.tile([0, 1], 20), np.tile([0, 0, 1], 20)
    trials = records("probe", [noisy(y_val, 1.5, s) for s in range(2)], [noisy(y_test, 1.0, 10 + s) for s in range(2)])
    measured = np.mean([precision_score(y_test, t.test_logits.argmax(1), average="macro", zero_division=0) for t in trials])
    cfg = config(gates=[f"macro_precision >= {measured - 0.01:.4f}", f"macro_precision >= {measured + 0.01:.4f}"])
    summary = summarise_strategy("probe", trials, split(y_val), split(y_test), cfg)
    assert summary["test"]["macro_precision"]["value"] == pytest.approx(measured)
    passed, failed = gates_for(cfg, summary, {})
    assert passed["passed"] and f"macro_precision = {measured:.3f}" in passed["evidence"]
    assert not failed["passed"] and f"not >= {measured + 0.01:.4f}".rstrip("0") in failed["evidence"]


def test_a_study_that_names_no_other_metric_measures_the_same_test_metrics_as_before():
    y = np.tile([0, 1], 20)
    trials = records("probe", [noisy(y, 1.5, 0)], [noisy(y, 1.5, 1)])
    summary = summarise_strategy("probe", trials, split(y), split(y), config(gates=["beats: majority"]))
    assert list(summary["test"]) == ["accuracy", "macro_f1", "roc_auc", "log_loss", "brier", "ece"]
    assert set(summary["val"]) == set(HEADLINE_METRICS)  # validation has every metric of predictions: any can rank


def test_gates_are_parsed_once_into_objects_and_written_back_as_text():
    from graftlab.core.metrics import Gate

    cfg = config(gates=["macro_f1>=0.8", " beats: tfidf_logreg ", "latency_ms_b1 <= 20"])
    assert cfg.eval.gates[:2] == [Gate("macro_f1>=0.8", metric="macro_f1", operator=">=", threshold=0.8),
                                  Gate("beats: tfidf_logreg", beats="tfidf_logreg")]
    assert cfg.eval.gates[0].holds(0.8) and not cfg.eval.gates[0].holds(0.79)
    assert cfg.to_dict()["eval"]["gates"] == ["macro_f1>=0.8", "beats: tfidf_logreg", "latency_ms_b1 <= 20"]
    assert StudyConfig.from_dict(yaml.safe_load(cfg.to_yaml())).eval.gates == cfg.eval.gates
    assert cfg.eval.measures_latency and not config(latency=False, gates=["macro_f1 >= 0.5"]).eval.measures_latency


# ---- ranking and the shipped seed -------------------------------------------------------------------------------


def test_roc_auc_ranks_strategies_and_ships_the_seed_by_validation_roc_auc():
    y = np.tile([0, 0, 1, 1], 10)
    # predicts class 1 on every row (macro F1 1/3) but scores each positive above each negative (ROC AUC 1)
    ranked = np.log(np.where(y[:, None] == 1, [0.3, 0.7], [0.4, 0.6]))
    # right on 3 rows of 4 (macro F1 0.73) with confident mistakes (ROC AUC 0.5)
    sharp = np.log(np.stack([1 - np.tile([0.1, 0.95, 0.9, 0.8], 10), np.tile([0.1, 0.95, 0.9, 0.8], 10)], axis=1))
    trials = {"sharp": records("sharp", [sharp, sharp], [sharp, sharp]),
              "ranked": records("ranked", [sharp, ranked], [sharp, ranked])}
    cfg = config(metric="roc_auc")
    summaries = {name: summarise_strategy(name, recs, split(y), split(y), cfg) for name, recs in trials.items()}
    assert summaries["ranked"]["val"]["macro_f1"] < summaries["sharp"]["val"]["macro_f1"]  # macro F1 would pick sharp
    winner, runner_up, selection = select_winner(summaries, cfg.eval.metric)
    assert (winner, runner_up) == ("ranked", "sharp")
    assert "validation roc_auc" in selection["rule"] and selection["why"].startswith("validation roc_auc")
    assert summaries["ranked"]["shipped_seed"] == 1  # the seed with ROC AUC 1, not the one with the higher macro F1


@pytest.mark.parametrize("metric", list(HEADLINE_METRICS))
def test_every_metric_of_predictions_ranks_and_ships_by_its_own_validation_value(metric):
    from graftlab.core.metrics import METRICS

    y = np.tile([0, 1], 15)
    trials = {f"s{i}": records(f"s{i}", [noisy(y, skill, 3 * i + s) for s in range(3)], [noisy(y, skill, 99)] * 3)
              for i, skill in enumerate([0.3, 0.6, 0.9, 1.2])}
    cfg = config(metric=metric)
    summaries = {name: summarise_strategy(name, recs, split(y), split(y), cfg) for name, recs in trials.items()}
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    per_seed = {name: sign * np.array([HEADLINE_METRICS[metric](y, softmax(t.val_logits)) for t in recs])
                for name, recs in trials.items()}
    assert select_winner(summaries, metric)[0] == max(per_seed, key=lambda name: per_seed[name].mean())
    assert [s["shipped_seed"] for s in summaries.values()] == [int(np.argmax(v)) for v in per_seed.values()]


# ---- one catalogue ----------------------------------------------------------------------------------------------


def test_evaluation_computes_each_metric_of_predictions_in_the_catalogue_and_its_direction():
    from graftlab.core.metrics import METRICS

    assert list(HEADLINE_METRICS) == [name for name, m in METRICS.items() if m.measured == "predictions"]
    assert all(HEADLINE_METRICS[name].higher_is_better == METRICS[name].higher_is_better for name in HEADLINE_METRICS)


def test_the_report_labels_every_metric_as_the_catalogue_does():
    from graftlab.core.metrics import METRICS
    from graftlab.reporting.formatting import metric_label

    assert {name: metric_label(name) for name in METRICS} == {name: m.label for name, m in METRICS.items()}
    assert metric_label("macro_precision") == "Macro precision"


@pytest.mark.parametrize(("key", "value", "phrases"), [
    ("metric", "precision", ["'eval.metric'", "macro_precision", "log_loss"]),
    ("metric", "latency_ms_b1", ["'eval.metric'", "measured on the model", "macro_f1"]),
])
def test_the_headline_metric_must_be_a_metric_of_predictions(key, value, phrases):
    with pytest.raises(ConfigError) as err:
        config(**{key: value})
    assert all(p in str(err.value) for p in phrases), str(err.value)


def test_early_stopping_may_use_only_what_the_training_loop_measures():
    base = {"name": "t", "data": {"source": "x.csv", "text": "t", "label": "l"}}
    with pytest.raises(ConfigError, match="'train.early_stopping.metric'.*accuracy, macro_f1, log_loss, loss"):
        StudyConfig.from_dict({**base, "train": {"early_stopping": {"metric": "roc_auc"}}})
    assert StudyConfig.from_dict({**base, "train": {"early_stopping": {"metric": "loss"}}}).train.early_stopping.metric == "loss"
