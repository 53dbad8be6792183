"""`graft validate`: exit 0 with the tables on good data; exit 2 with one readable message otherwise."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import assert_user_error


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _run(runner, *args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def test_validate_good_csv_exits_0_and_prints_tables(runner, write_study):
    result = _run(runner, "validate", write_study())
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Data summary" in out and "Data checks" in out
    for word in ("train", "val", "test", "great: 21", "fingerprint:", "leakage_exact", "imbalance"):
        assert word in out
    assert "All data checks passed or were resolved" in out
    # no strategies in the config: it says which the study would run, and why those
    assert ("strategies: majority, tfidf_logreg, contrastive, linear_probe — the defaults for text data, few-shot (< 50 "
            "per class); list 'strategies' in the config to choose") in out


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lable": "score"}, "Unknown key 'data.lable'"),
        ({"split": {"train": "most"}}, "'data.split.train' parameter is invalid"),
        ({"source": {"kind": "csv", "path": "missing.csv"}}, "does not exist"),
        ({"label": "scores"}, "did you mean 'score'"),
        ({"split": {"order_by": "posted"}}, "'data.split.order_by' column 'posted' is not in"),
        ({"split": {"order_by": "product"}}, "'data.split.order_by' column 'product' must hold a date"),
        ({"group": "review", "split": {"order_by": "score"}}, "a group may span the time boundaries"),
    ],
)
def test_validate_bad_config_exits_2_without_traceback(runner, write_study, data, message):
    result = _run(runner, "validate", write_study(**data))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""  # the message goes to stderr


def test_validate_failed_checks_print_table_then_error(runner, write_study, reviews):
    dupes = pd.concat([reviews, reviews.iloc[:12]], ignore_index=True)
    result = _run(runner, "validate", write_study(dupes))
    assert result.exit_code == 2
    assert "Data checks" in result.stdout and "fail" in result.stdout
    assert "set data.checks.leakage: group" in result.stderr
    assert "Traceback" not in result.output


def test_validate_a_time_ordered_split_prints_each_periods(runner, write_study, reviews):
    reviews["posted"] = [f"2024-05-{1 + i % 30:02d}" for i in range(len(reviews))]  # both classes every day
    result = _run(runner, "validate", write_study(reviews, split={"order_by": "posted"}))
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # rich wraps long lines
    assert "split by time on 'posted': train 2024-05-01T00:00:00+00:00 to 2024-05-" in out
    assert "; test 2024-05-" in out and "absent_classes" in out


def test_single_class_exits_2(runner, write_study, reviews):
    reviews["score"] = "x"
    result = _run(runner, "validate", write_study(reviews))
    assert result.exit_code == 2 and "needs at least 2 classes; found only 'x'" in result.stderr


def test_missing_config_file_exits_2(runner, tmp_path):
    result = _run(runner, "validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_debug_shows_the_traceback(runner, write_study):
    path = write_study(label="scores")
    result = _run(runner, "--debug", "validate", path)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "did you mean 'score'" in result.stderr
    env_result = _run(runner, "validate", path, env={"GRAFT_DEBUG": "1"})
    assert env_result.exit_code == 2 and "Traceback" in env_result.stderr


@pytest.mark.parametrize("args", [["validate"], ["validate", "a.yaml", "b.yaml"], ["--nope"], ["no-such-command"]])
def test_usage_errors_exit_2(runner, args):
    result = _run(runner, *args)
    assert result.exit_code == 2


def test_the_graft_entry_point_exits_2_on_user_errors(write_study):
    path = write_study(lable="score")
    proc = subprocess.run(
        [sys.executable, "-c", "from graftlab.cli import main; main()", "validate", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Unknown key 'data.lable'" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_validate_says_which_rare_classes_were_merged(runner, write_study, reviews_factory):
    frame = pd.concat([reviews_factory(), pd.DataFrame({"review": ["one odd review", "a stray one"],
                                                        "score": ["odd", "stray"]})], ignore_index=True)
    result = _run(runner, "validate", write_study(frame))
    assert result.exit_code == 2 and "data.checks.rare_classes: other" in result.output
    result = _run(runner, "validate", write_study(frame, checks={"rare_classes": "other"}))
    assert result.exit_code == 0, result.output
    assert "rare classes merged into 'other': 'odd', 'stray'" in result.stdout
    assert "labels: great, other" in result.stdout


def test_tables_written_to_a_log_are_wide_enough_not_to_cut_names(runner, write_study, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = _run(runner, "validate", write_study()).stdout  # CliRunner's output is not a terminal, as a log file is not
    row = next(line for line in out.splitlines() if "leakage_normalised" in line)
    assert "no input is shared between splits" in row  # at rich's 80 columns the cell wrapped over three lines
    assert max(map(len, out.splitlines())) <= 160
    narrow = _run(runner, "validate", write_study(), env={"COLUMNS": "80"}).stdout  # COLUMNS still decides
    assert "no input is shared between splits" not in narrow and max(map(len, narrow.splitlines())) <= 80


def test_validate_refuses_a_gate_on_a_metric_that_is_not_measured_and_lists_what_a_gate_can_use(runner, write_study):
    path = write_study()
    cfg = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**cfg, "eval": {"gates": ["macro_f1 >= 0.5", "macro_precison >= 0.8"]}}))
    assert_user_error(_run(runner, "validate", path), "'eval.gates.1' parameter is invalid",
                      "'macro_precison' is not a known metric (did you mean 'macro_precision'?)",
                      "a gate can use accuracy, macro_f1, macro_precision", "latency_ms_b1", "or 'beats: STRATEGY'")
    path.write_text(yaml.safe_dump({**cfg, "eval": {"gates": ["macro_precision >= 0.5"], "metric": "macro_recall"}}))
    result = _run(runner, "validate", path)
    assert result.exit_code == 0, result.output
