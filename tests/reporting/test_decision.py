import json

from graftlab.reporting import build_decision, write_decision_record
from graftlab.reporting.formatting import fmt_ci


def test_record_names_winner_rule_and_failed_gates(results, tmp_path):
    md_path, json_path = write_decision_record(results, tmp_path / "out")
    assert (md_path.name, json_path.name) == ("decision.md", "decision.json")
    md = md_path.read_text()
    record = json.loads(json_path.read_text())
    winner = results["winner"]
    assert record["winner"] == winner and record["runner_up"] == "full"
    assert f"**Chosen model: {winner}**" in md
    assert results["selection"]["rule"] in md and results["selection"]["why"] in md
    assert record["gates"]["verdict"] == "FAIL" and record["gates"]["failed"] == 1
    assert "FAIL (1 of 3 failed)" in md
    assert "| ece <= 0.02 | FAIL | ece 0.037 > 0.02 |" in md


def test_evidence_comes_from_results(results, tmp_path):
    md_path, _ = write_decision_record(results, tmp_path)
    md = md_path.read_text()
    test = results["strategies"][results["winner"]]["test"]
    for entry in test.values():
        assert fmt_ci(entry) in md
    record = build_decision(results)
    compared = {c["b"] for c in record["evidence"]["comparisons"]}
    assert compared == {"full", "majority", "tfidf_logreg", "scratch"}  # baselines + runner-up, not linear_probe
    readings = {c["b"]: c["reading"] for c in record["evidence"]["comparisons"]}
    assert readings["full"] == "not distinguishable" and readings["tfidf_logreg"] == "significantly better"
    assert record["evidence"]["transfer_gain"]["over_scratch"]["reading"] == "significantly better"


def test_risks(results):
    risks = build_decision(results)["risks"]
    assert [s["slice"] for s in risks["flagged_slices"]] == ["pet_food"]
    calibration = results["strategies"][results["winner"]]["calibration"]
    assert risks["calibration"] == {k: calibration[k] for k in ("temperature", "ece_before", "ece_after")}
    cm = results["strategies"][results["winner"]]["confusion_matrix"]
    labels = results["data"]["label_names"]
    top = risks["confused_pairs"][0]
    i, j = labels.index(top["true"]), labels.index(top["predicted"])
    assert top["count"] == cm[i][j] == max(cm[a][b] for a in range(len(cm)) for b in range(len(cm)) if a != b)
    assert risks["robustness"][0]["perturbation"] == "typos"  # largest drop first


def test_winner_recomputed_from_validation_when_not_recorded(binary_results, tmp_path):
    for key in ("winner", "runner_up", "selection"):
        del binary_results[key]
    record = build_decision(binary_results)
    assert record["winner"] == "finetune[trainable_layers=2]"
    assert record["runner_up"] == "full"
    assert record["selection"]["source"] == "computed"
    assert "among transfer strategies" in record["selection"]["rule"]
    md = write_decision_record(binary_results, tmp_path)[0].read_text()
    assert "recomputed" in md and "0.874" in md  # the winner's validation macro_f1


def test_minimal_and_empty_results(minimal_results, tmp_path):
    md_path, json_path = write_decision_record(minimal_results, tmp_path / "a")
    assert "Chosen model: linear_probe" in md_path.read_text()
    assert json.loads(json_path.read_text())["gates"]["verdict"] == "NONE"
    md_path, json_path = write_decision_record({}, tmp_path / "b")
    assert "No model chosen" in md_path.read_text()
    assert json.loads(json_path.read_text())["winner"] is None


def test_nan_becomes_null(binary_results, tmp_path):
    binary_results["strategies"][binary_results["winner"]]["test"]["roc_auc"]["value"] = float("nan")
    _, json_path = write_decision_record(binary_results, tmp_path)
    assert json.loads(json_path.read_text())["evidence"]["test"]["roc_auc"]["value"] is None


def test_a_flagged_class_slice_is_named_once_in_the_record_and_the_report(results, tmp_path):
    from graftlab.reporting import render_report

    flagged = {"slice_column": "class", "slice": "class=other", "n": 90, "metric": "macro_f1", "value": 0.7,
               "ci_low": 0.6, "ci_high": 0.8, "overall": 0.861, "flagged": True}
    results = {**results, "slices": [*results["slices"], flagged]}
    md = write_decision_record(results, tmp_path)[0].read_text()
    html = render_report(results, tmp_path).read_text()
    assert "| class=other | 90 |" in md and "product_type=pet_food" in md
    assert "class=class" not in md and "class=class" not in html and "<b>class=other</b>" in html


def test_a_time_ordered_split_is_stated_in_the_decision(results, tmp_path):
    data = {**results["data"], "summary": {"time_order": {"column": "posted", "ranges": {
        "train": ["2024-01-01", "2024-06-10"], "val": ["2024-07-01", "2024-08-10"], "test": ["2024-09-01", "2024-10-10"]}}}}
    md = write_decision_record({**results, "data": data}, tmp_path)[0].read_text()
    assert ("- Split by time on `posted`: train 2024-01-01 to 2024-06-10; "
            "val 2024-07-01 to 2024-08-10; test 2024-09-01 to 2024-10-10") in md
    assert "Split by time" not in write_decision_record(results, tmp_path / "plain")[0].read_text()


def test_rare_classes_merged_or_left_out_are_named_in_the_decision(results, tmp_path):
    merged = {**results["data"], "summary": {"rare_classes": {"merged": {"Loss, Theft": "Other", "Unknown": "Other"}}}}
    md = write_decision_record({**results, "data": merged}, tmp_path)[0].read_text()
    assert ("- Rare classes merged into `Other` (data.checks.rare_classes): `Loss, Theft`, `Unknown`; "
            "the model does not tell them apart") in md
    dropped = {**results["data"], "summary": {"rare_classes": {"dropped": ["Unknown"]}}}
    md = write_decision_record({**results, "data": dropped}, tmp_path / "dropped")[0].read_text()
    assert "- Rare classes left out (data.checks.rare_classes): `Unknown`; the model never predicts them" in md
    assert "Rare classes" not in write_decision_record(results, tmp_path / "plain")[0].read_text()


def test_a_class_the_chosen_model_never_predicts_is_a_known_risk(results, tmp_path):
    winner = results["winner"]
    n = len(results["data"]["label_names"])
    cm = [[15 if j == 0 else 0 for j in range(n)] for _ in range(n)]  # 3 seeds x 5 rows, all predicted as class 0
    strategies = {**results["strategies"], winner: {**results["strategies"][winner], "confusion_matrix": cm,
                                                    "seeds": [0, 1, 2]}}
    md = write_decision_record({**results, "strategies": strategies}, tmp_path)[0].read_text()
    names = results["data"]["label_names"]
    assert f"**Never predicted on test** by any seed of the chosen strategy: `{names[1]}` (5 test rows)" in md
    assert "Never predicted" not in write_decision_record(results, tmp_path / "plain")[0].read_text()


def test_a_temperature_left_unfitted_is_said_in_the_record_and_the_report(results, tmp_path):
    from graftlab.reporting import render_report

    winner = results["winner"]
    note = "validation predicted without an error: no temperature fits such data"
    cal = {**results["strategies"][winner]["calibration"], "temperature": 1.0, "note": note}
    strategies = {**results["strategies"], winner: {**results["strategies"][winner], "calibration": cal}}
    md = write_decision_record({**results, "strategies": strategies}, tmp_path)[0].read_text()
    assert f"Temperature not fitted: {note}." in md
    html = render_report({**results, "strategies": strategies}, tmp_path / "html").read_text()
    assert "temperature not fitted</span> chosen model: " + note in html
    assert "Temperature not fitted" not in write_decision_record(results, tmp_path / "plain")[0].read_text()


def test_a_pick_made_by_the_prior_says_so(results, tmp_path):
    md = write_decision_record(results, tmp_path / "data")[0].read_text()
    assert "Made by the prior" not in md
    by_prior = {**results, "selection": {**results["selection"], "decided_by": "prior"}}
    md_path, json_path = write_decision_record(by_prior, tmp_path / "prior")
    assert "- Made by the prior: the data could not separate the candidates" in md_path.read_text()
    assert json.loads(json_path.read_text())["selection"]["decided_by"] == "prior"
