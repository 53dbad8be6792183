"""A strategy that cannot run costs the study only itself: the others finish, the report, the decision record and
the console say which failed and why, a ``beats:`` gate on it fails with that reason, and a bug's traceback is kept
in its trial folder. Only when no strategy runs does the study stop, with the error (exit code 2 for a user error)."""

import json
import random
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.core.config import StudyConfig
from graftlab.strategies.tfidf_logreg import TfidfLogreg
from graftlab.study import Study
from graftlab.testing import assert_user_error

FAST_EVAL = {"seeds": 1, "bootstrap": 100, "robustness": False, "explain": "off", "latency": False, "ablation": False}
NO_WORDS = "The TF-IDF baseline (tfidf_logreg) found no words of two or more letters"


def one_letter_reviews(n: int) -> pd.DataFrame:
    """Distinct texts of five one-letter tokens, labelled by whether an 'a' is among them."""
    rng, seen = random.Random(0), set()
    while len(seen) < n:
        seen.add(" ".join(rng.choice("abcdefghij") for _ in range(5)))
    texts = sorted(seen)
    return pd.DataFrame({"review": texts, "score": ["pos" if "a" in t.split() else "neg" for t in texts]})


def write_study(tmp_path, strategies, gates=()) -> str:
    one_letter_reviews(80).to_csv(tmp_path / "reviews.csv", index=False)
    cfg = {"name": "letters", "data": {"source": str(tmp_path / "reviews.csv"), "text": "review", "label": "score"},
           "strategies": strategies, "eval": {**FAST_EVAL, "gates": list(gates)}, "tracking": {"enabled": False},
           "output_dir": str(tmp_path / "runs")}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(tmp_path / "study.yaml")


def test_a_baseline_that_cannot_run_is_reported_and_the_study_finishes_without_it(tmp_path):
    config = write_study(tmp_path, ["majority", "tfidf_logreg"], gates=["beats: tfidf_logreg"])
    result = CliRunner().invoke(app, ["study", config, "--no-progress"])
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output  # the study ran; its gate on the baseline cannot pass
    assert "Traceback" not in result.output
    assert f"tfidf_logreg could not run and is left out of the comparison: {NO_WORDS}" in text
    run_dir = next((tmp_path / "runs" / "letters").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    assert list(results["strategies"]) == ["majority"] and results["winner"] == "majority"
    failure = results["failed"]["tfidf_logreg"]
    assert failure["user_error"] and failure["type"] == "DataError" and NO_WORDS in failure["error"]
    assert "traceback" not in failure  # a user error needs none
    [gate] = results["gates"]
    assert not gate["passed"] and gate["evidence"].startswith(f"tfidf_logreg failed ({NO_WORDS}")
    assert f"tfidf_logreg could not run** and is left out of the comparison: {NO_WORDS}" in (run_dir / "decision.md").read_text()
    report = " ".join((run_dir / "report.html").read_text().split())
    assert "<b>tfidf_logreg</b> could not run and is left out of the comparison: The TF-IDF baseline" in report


def test_a_bug_in_one_strategy_keeps_its_traceback_and_the_other_strategies_run(tmp_path, monkeypatch):
    def broken_fit(self, train, val, ctx):
        raise RuntimeError("boom inside fit")

    monkeypatch.setattr(TfidfLogreg, "fit", broken_fit)
    cfg = yaml.safe_load(Path(write_study(tmp_path, ["tfidf_logreg", "majority"])).read_text())
    result = Study(StudyConfig.from_dict(cfg), progress=False).run()
    failure = result.results["failed"]["tfidf_logreg"]
    assert failure["error"] == "RuntimeError: boom inside fit" and not failure["user_error"]
    traceback = Path(failure["traceback"]).read_text()
    assert "Traceback (most recent call last)" in traceback and "broken_fit" in traceback
    assert list(result.results["strategies"]) == ["majority"]
    assert json.loads((result.run_dir / "results.json").read_text())["failed"]["tfidf_logreg"]["traceback"] == failure["traceback"]


def test_when_no_strategy_can_run_the_study_stops_with_the_error(tmp_path):
    result = CliRunner().invoke(app, ["study", write_study(tmp_path, ["tfidf_logreg"]), "--no-progress"])
    assert_user_error(result, NO_WORDS, "leave tfidf_logreg out")
    run_dir = next((tmp_path / "runs" / "letters").iterdir())
    assert not (run_dir / "results.json").exists()


def test_when_several_strategies_fail_and_none_runs_every_message_is_given(tmp_path, monkeypatch):
    from graftlab.core.errors import ConfigError, GraftError
    from graftlab.strategies.majority import Majority

    def refused(self, train, val, ctx):
        raise ConfigError("majority refused here.")

    monkeypatch.setattr(Majority, "fit", refused)
    cfg = StudyConfig.from_dict(yaml.safe_load(Path(write_study(tmp_path, ["majority", "tfidf_logreg"])).read_text()))
    with pytest.raises(GraftError, match=re.escape(f"No strategy could run. majority: majority refused here. tfidf_logreg: {NO_WORDS}")):
        Study(cfg, progress=False).run()
