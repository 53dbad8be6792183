"""Small-data traps in the report and the decision record: a test split too small to trust warns, and a study that
declared no gate says so instead of showing a passed verdict."""

import json

from graftlab.core.results import Exit, Interval
from graftlab.reporting import build_decision, render_report, write_decision_record


def _small_test(results):
    """``results`` as if the test split held 7 rows (3 'great', 4 'other') and the chosen model's CI were wide."""
    results.data.class_counts["test"] = {"great": 3, "other": 4}
    results.champion.test[results.headline_metric] = Interval(value=0.86, ci_low=0.56, ci_high=1.0)
    return results


def test_a_large_test_split_does_not_warn(binary_results):
    assert binary_results.small_test_warning() is None
    assert build_decision(binary_results).small_test is None


def test_a_class_under_30_test_examples_or_a_wide_ci_warns(binary_results):
    binary_results.data.class_counts["test"] = {"great": 12, "other": 500}
    few = binary_results.small_test_warning()
    assert "fewer than 30 in a class ('great' 12)" in few and "CI" not in few
    binary_results.data.class_counts["test"] = {"great": 500, "other": 500}
    binary_results.champion.test["macro_f1"] = Interval(value=0.7, ci_low=0.55, ci_high=0.8)
    wide = binary_results.small_test_warning()
    assert "macro_f1 CI [0.55, 0.80] is 0.25 wide (wider than 0.2)" in wide and "fewer than 30" not in wide


def test_a_small_test_split_warns_in_the_decision_record_and_the_report(binary_results, tmp_path):
    warning = _small_test(binary_results).small_test_warning()
    assert warning.startswith("The test split is too small to trust its scores: 7 rows, fewer than 30 in 2 classes "
                              "('great' 3, 'other' 4)")
    assert "CI [0.56, 1.00] is 0.44 wide" in warning and "data.split.test" in warning
    md_path, json_path = write_decision_record(binary_results, tmp_path)
    assert f"- **Small test split:** {warning}" in md_path.read_text()
    assert json.loads(json_path.read_text())["small_test"] == warning
    html = render_report(binary_results, tmp_path).read_text()
    assert "Small test split" in html and "fewer than 30 in 2 classes (&#39;great&#39; 3, &#39;other&#39; 4)" in html


def test_no_gates_declared_is_said_not_passed(binary_results, tmp_path):
    binary_results.gates = []
    binary_results.exit = Exit(gates_passed=True)  # what a study without eval.gates records
    record = build_decision(binary_results)
    assert record.gates.verdict == "NONE"
    md_path, json_path = write_decision_record(binary_results, tmp_path)
    assert "- Gates: **No gates declared**" in md_path.read_text()
    assert json.loads(json_path.read_text())["gates"]["verdict"] == "NONE"
    html = render_report(binary_results, tmp_path).read_text()
    assert "No gates declared" in html and "GATES PASSED" not in html and 'class="banner pass"' not in html


def test_a_recorded_failure_without_gate_entries_still_fails(binary_results):
    binary_results.gates = []
    binary_results.exit = Exit(gates_passed=False)
    assert build_decision(binary_results).gates.verdict == "FAIL"


def test_a_narrow_refit_ci_does_not_hide_the_wide_ci_of_the_trials(binary_results):
    from graftlab.core.results import Refit

    binary_results.champion.test["macro_f1"] = Interval(value=0.68, ci_low=0.4, ci_high=1.0)
    binary_results.selection.refit = Refit(done=True, test={"macro_f1": Interval(value=0.4, ci_low=0.4, ci_high=0.4)})
    assert "macro_f1 CI [0.40, 1.00] is 0.60 wide" in binary_results.small_test_warning()
