import json
import math

import pytest

from graftlab.core.errors import ArtifactError
from graftlab.core.results import Calibration, Interval, Selection, SliceResult
from graftlab.reporting import build_decision, write_decision_record
from graftlab.reporting.formatting import fmt_ci


def test_record_names_winner_rule_and_failed_gates(results, tmp_path):
    md_path, json_path = write_decision_record(results, tmp_path / "out")
    assert (md_path.name, json_path.name) == ("decision.md", "decision.json")
    md = md_path.read_text()
    record = json.loads(json_path.read_text())
    winner = results.winner
    assert record["winner"] == winner and record["runner_up"] == "full"
    assert f"**Chosen model: {winner}**" in md
    assert results.selection.rule in md and results.selection.why in md
    assert record["gates"]["verdict"] == "FAIL" and record["gates"]["failed"] == 1
    assert "FAIL (1 of 3 failed)" in md
    assert "| ece <= 0.02 | FAIL | ece 0.037 > 0.02 |" in md


def test_the_dict_of_a_results_json_gives_the_same_record(results, tmp_path):
    from_record = write_decision_record(results, tmp_path / "record")
    from_dict = write_decision_record(json.loads(json.dumps(results.to_dict())), tmp_path / "dict")
    assert [p.read_text() for p in from_record] == [p.read_text() for p in from_dict]


def test_evidence_comes_from_results(results, tmp_path):
    md_path, _ = write_decision_record(results, tmp_path)
    md = md_path.read_text()
    for entry in results.champion.test.values():
        assert fmt_ci(entry.to_dict()) in md
    record = build_decision(results)
    compared = {c.b for c in record.evidence.comparisons}
    assert compared == {"full", "majority", "tfidf_logreg", "scratch"}  # baselines + runner-up, not linear_probe
    readings = {c.b: c.reading for c in record.evidence.comparisons}
    assert readings["full"] == "not distinguishable" and readings["tfidf_logreg"] == "significantly better"
    assert record.evidence.transfer_gain["over_scratch"].reading == "significantly better"


def test_risks(results):
    risks = build_decision(results).risks
    assert [s.slice for s in risks.flagged_slices] == ["pet_food"]
    calibration = results.champion.calibration
    assert risks.calibration.to_dict() == {"temperature": calibration.temperature,
                                           "ece_before": calibration.ece_before, "ece_after": calibration.ece_after}
    cm = results.champion.confusion_matrix
    labels = results.label_names
    top = risks.confused_pairs[0]
    i, j = labels.index(top.true), labels.index(top.predicted)
    assert top.count == cm[i][j] == max(cm[a][b] for a in range(len(cm)) for b in range(len(cm)) if a != b)
    assert risks.robustness[0]["perturbation"] == "typos"  # largest drop first


def test_runner_up_and_rule_recomputed_from_validation_when_not_recorded(binary_results, tmp_path):
    binary_results.runner_up = None
    binary_results.selection = Selection()
    record = build_decision(binary_results)
    assert record.winner == "finetune[trainable_layers=2]"
    assert record.runner_up == "full"
    assert record.selection.source == "results"
    assert "among transfer strategies" in record.selection.rule
    md = write_decision_record(binary_results, tmp_path)[0].read_text()
    assert "has the best validation macro_f1 (0.874)" in md  # the winner's validation macro_f1


def test_minimal_and_malformed_results(minimal_results, tmp_path):
    md_path, json_path = write_decision_record(minimal_results, tmp_path / "a")
    assert "Chosen model: linear_probe" in md_path.read_text()
    assert json.loads(json_path.read_text())["gates"]["verdict"] == "NONE"
    with pytest.raises(ArtifactError, match="not a graftlab study's results"):
        write_decision_record({}, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_nan_becomes_null(binary_results, tmp_path):
    binary_results.champion.test["roc_auc"] = Interval(value=math.nan, ci_low=0.9, ci_high=0.95)
    _, json_path = write_decision_record(binary_results, tmp_path)
    assert json.loads(json_path.read_text())["evidence"]["test"]["roc_auc"]["value"] is None


def test_a_flagged_class_slice_is_named_once_in_the_record_and_the_report(results, tmp_path):
    from graftlab.reporting import render_report

    flagged = SliceResult(slice_column="class", slice="class=other", n=90, metric="macro_f1", value=0.7, ci_low=0.6,
                          ci_high=0.8, overall=0.861, flagged=True)
    results.slices = [*results.slices, flagged]
    md = write_decision_record(results, tmp_path)[0].read_text()
    html = render_report(results, tmp_path).read_text()
    assert "| class=other | 90 |" in md and "product_type=pet_food" in md
    assert "class=class" not in md and "class=class" not in html and "<b>class=other</b>" in html


def test_a_time_ordered_split_is_stated_in_the_decision(results, tmp_path):
    assert "Split by time" not in write_decision_record(results, tmp_path / "plain")[0].read_text()
    results.data.summary = {"time_order": {"column": "posted", "ranges": {
        "train": ["2024-01-01", "2024-06-10"], "val": ["2024-07-01", "2024-08-10"], "test": ["2024-09-01", "2024-10-10"]}}}
    md = write_decision_record(results, tmp_path)[0].read_text()
    assert ("- Split by time on `posted`: train 2024-01-01 to 2024-06-10; "
            "val 2024-07-01 to 2024-08-10; test 2024-09-01 to 2024-10-10") in md


def test_rare_classes_merged_or_left_out_are_named_in_the_decision(results, tmp_path):
    assert "Rare classes" not in write_decision_record(results, tmp_path / "plain")[0].read_text()
    results.data.summary = {"rare_classes": {"merged": {"Loss, Theft": "Other", "Unknown": "Other"}}}
    md = write_decision_record(results, tmp_path)[0].read_text()
    assert ("- Rare classes merged into `Other` (data.checks.rare_classes): `Loss, Theft`, `Unknown`; "
            "the model does not tell them apart") in md
    results.data.summary = {"rare_classes": {"dropped": ["Unknown"]}}
    md = write_decision_record(results, tmp_path / "dropped")[0].read_text()
    assert "- Rare classes left out (data.checks.rare_classes): `Unknown`; the model never predicts them" in md


def test_a_class_the_chosen_model_never_predicts_is_a_known_risk(results, tmp_path):
    assert "Never predicted" not in write_decision_record(results, tmp_path / "plain")[0].read_text()
    names = results.label_names
    n = len(names)
    results.champion.confusion_matrix = [[15 if j == 0 else 0 for j in range(n)] for _ in range(n)]  # 3 seeds x 5 rows
    results.champion.seeds = [0, 1, 2]
    md = write_decision_record(results, tmp_path)[0].read_text()
    assert f"**Never predicted on test** by any seed of the chosen strategy: `{names[1]}` (5 test rows)" in md


def test_a_temperature_left_unfitted_is_said_in_the_record_and_the_report(results, tmp_path):
    from graftlab.reporting import render_report

    assert "Temperature not fitted" not in write_decision_record(results, tmp_path / "plain")[0].read_text()
    note = "validation predicted without an error: no temperature fits such data"
    results.champion.calibration = Calibration(**{**results.champion.calibration.to_dict(), "temperature": 1.0,
                                                  "note": note})
    md = write_decision_record(results, tmp_path)[0].read_text()
    assert f"Temperature not fitted: {note}." in md
    html = render_report(results, tmp_path / "html").read_text()
    assert "temperature not fitted</span> chosen model: " + note in html


def test_a_pick_made_by_the_prior_says_so(results, tmp_path):
    md = write_decision_record(results, tmp_path / "data")[0].read_text()
    assert "Made by the prior" not in md
    results.selection.decided_by = "prior"
    md_path, json_path = write_decision_record(results, tmp_path / "prior")
    assert "- Made by the prior: the data could not separate the candidates" in md_path.read_text()
    assert json.loads(json_path.read_text())["selection"]["decided_by"] == "prior"


def test_the_record_of_a_real_study(real_results, tmp_path):
    record = build_decision(real_results)
    assert record.winner == real_results.winner and record.winner in real_results.strategies
    assert record.evidence.kind == real_results.champion.kind
    assert record.evidence.test == real_results.champion.test
    assert [g.gate for g in record.gates.entries] == ["macro_f1 >= 0.5", "beats: majority"]
    assert record.gates.passed + record.gates.failed == 2
    assert record.gates.verdict == ("PASS" if real_results.gates_passed else "FAIL")
    assert record.evidence.comparisons and all(c.a == record.winner for c in record.evidence.comparisons)
    assert {c.b for c in record.evidence.comparisons} >= {"majority", "tfidf_logreg"} - {record.winner}
    assert record.risks.calibration is not None
    md_path, json_path = write_decision_record(real_results, tmp_path)
    md, saved = md_path.read_text(), json.loads(json_path.read_text())
    assert f"**Chosen model: {record.winner}**" in md
    for g in real_results.gates:
        assert f"| {g.gate} | {'PASS' if g.passed else 'FAIL'} |" in md
    assert saved == record.to_dict()
