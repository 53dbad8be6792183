"""Gates: parsing, metric thresholds, 'beats' decided by the paired CI, and unmeasured things failing."""

import numpy as np
import pytest

from graftlab.core.errors import ConfigError
from graftlab.evaluation import Gate, evaluate_gates, paired_bootstrap, parse_gate

SUMMARY = {
    "macro_f1": {"value": 0.812, "ci_low": 0.79, "ci_high": 0.83},
    "ece": 0.031,
    "latency_ms_b1": np.float32(12.5),
    "roc_auc": float("nan"),
}
COMPARISONS = {
    "tfidf_logreg": {"metric": "macro_f1", "diff": 0.041, "ci_low": 0.012, "ci_high": 0.07, "p_value": 0.004},
    "lora": {"diff": 0.01, "ci_low": -0.02, "ci_high": 0.04, "p_value": 0.52},
}


def one(gate, summary=SUMMARY, comparisons=COMPARISONS):
    (res,) = evaluate_gates([gate], summary, comparisons)
    assert set(res) == {"gate", "passed", "evidence"}
    return res


def test_parse_gate():
    assert parse_gate("macro_f1 >= 0.8") == Gate("macro_f1 >= 0.8", metric="macro_f1", operator=">=", threshold=0.8)
    assert parse_gate(" ece<=5e-2 ").threshold == pytest.approx(0.05)
    gate = parse_gate("beats: finetune[lr=0.01]")
    assert gate == Gate("beats: finetune[lr=0.01]", beats="finetune[lr=0.01]")


@pytest.mark.parametrize("bad", ["macro_f1 => 0.8", "macro_f1 >= high", "beats tfidf", "", "f1 == 0.8", 0.8,
                                 "f2 >= 0.8", "fit_seconds <= 60"])
def test_bad_gate_syntax_or_an_unknown_metric_raises_config_error(bad):
    with pytest.raises(ConfigError, match="beats: STRATEGY"):
        parse_gate(bad)


def test_a_gate_on_a_catalogue_metric_that_was_not_measured_fails_without_raising():
    (res,) = evaluate_gates([parse_gate("macro_precision >= 0.5")], SUMMARY)
    assert not res["passed"] and res["evidence"] == "macro_precision was not measured, so 'macro_precision >= 0.5' cannot pass."


def test_passing_metric_gate_reports_value_and_ci():
    res = one("macro_f1 >= 0.8")
    assert res["passed"] is True
    assert res["evidence"] == (
        "macro_f1 = 0.812 (95% CI 0.790-0.830) >= 0.8; "
        "the threshold lies inside the 95% CI, so the margin is not significant"
    )


def test_failing_metric_gates():
    res = one("macro_f1 >= 0.85")
    assert res["passed"] is False and "not >= 0.85" in res["evidence"] and "0.812" in res["evidence"]
    assert one("macro_f1 >= 1.5")["passed"] is False  # impossible gate
    assert one("ece <= 0.02")["passed"] is False


def test_plain_float_entries_and_lower_is_better_gates():
    res = one("ece <= 0.05")
    assert res["passed"] is True and res["evidence"] == "ece = 0.031 <= 0.05"
    assert one("latency_ms_b1 <= 20")["passed"] is True
    assert one("latency_ms_b1 < 10")["passed"] is False


def test_seed_averaged_summary_with_mean_key_is_accepted():
    res = one("accuracy > 0.7", summary={"accuracy": {"mean": 0.75, "ci_low": 0.72, "ci_high": 0.78}})
    assert res["passed"] is True and "0.720-0.780" in res["evidence"]


def test_unmeasured_or_undefined_metric_fails_without_raising():
    res = one("brier <= 0.2")
    assert res["passed"] is False and "not measured" in res["evidence"]
    res = one("roc_auc >= 0.5")
    assert res["passed"] is False and "NaN" in res["evidence"]


def test_beats_passes_only_when_ci_is_above_zero():
    res = one("beats: tfidf_logreg")
    assert res["passed"] is True
    assert res["evidence"] == (
        "winner - tfidf_logreg on macro_f1 = +0.041 (95% CI 0.012-0.070, p = 0.004); the CI lies above 0."
    )
    res = one("beats: lora")
    assert res["passed"] is False and "-0.020 to 0.040" in res["evidence"] and "p = 0.520" in res["evidence"]


def test_beats_an_unmeasured_strategy_fails():
    res = one("beats: zero_shot")
    assert res["passed"] is False and "zero_shot was not measured" in res["evidence"]
    assert evaluate_gates(["beats: x"], {}, None)[0]["passed"] is False
    [said] = evaluate_gates(["beats: tfidf_logreg"], {}, {}, unmeasured={"tfidf_logreg": "failed (no words)"})
    assert not said["passed"] and said["evidence"] == ("tfidf_logreg failed (no words), so nothing was measured against "
                                                      "it and the gate cannot pass.")


def test_beats_with_real_paired_bootstrap_results():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    winner = np.eye(2)[np.where(rng.random(300) < 0.9, y, 1 - y)] * 0.8 + 0.1
    weak = np.eye(2)[np.where(rng.random(300) < 0.6, y, 1 - y)] * 0.8 + 0.1
    comparisons = {
        "weak": paired_bootstrap(y, winner, weak, "macro_f1", n_boot=500),
        "itself": paired_bootstrap(y, winner, winner, "macro_f1", n_boot=500),
    }
    results = evaluate_gates(["beats: weak", "beats: itself"], {}, comparisons)
    assert [r["passed"] for r in results] == [True, False]
    # every resampled difference is > 0: p is the bootstrap's floor 2 / (n_boot + 1), never 0
    assert comparisons["weak"]["p_value"] == pytest.approx(2 / 501)
    assert "p = 0.004" in results[0]["evidence"]


def test_beats_gate_fails_when_the_named_baseline_is_itself_the_winner():
    (res,) = evaluate_gates(["beats: tfidf_logreg"], {"accuracy": 0.7}, {}, winner="tfidf_logreg")
    assert not res["passed"] and "is itself the chosen model" in res["evidence"]


def test_a_latency_gate_measures_latency_even_with_latency_off():
    from graftlab.core.config import StudyConfig

    base = {"name": "x", "data": {"source": {"kind": "csv", "path": "r.csv"}, "text": "t", "label": "y"}}
    gated = StudyConfig.from_dict({**base, "eval": {"latency": False, "gates": ["latency_ms_b1 <= 20"]}})
    assert gated.eval.measures_latency  # a config recorded before eval.latency worked still passes its gate
    assert not StudyConfig.from_dict({**base, "eval": {"latency": False, "gates": ["macro_f1 >= 0.5"]}}).eval.measures_latency
