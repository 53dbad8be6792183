"""graft study on a small dataset without gates: the console, report.html and decision.md warn that the test split is
too small to trust and say that no gate was declared (not a passed verdict)."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import synthetic_reviews

FAST_EVAL = {"seeds": 1, "bootstrap": 100, "robustness": False, "explain": "off", "latency": False, "ablation": False}


def test_a_small_study_without_gates_warns_and_says_no_gates_declared(tmp_path):
    synthetic_reviews(60, seed=0).to_csv(tmp_path / "reviews.csv", index=False)  # a test split of 9 rows
    cfg = {"name": "tiny", "data": {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review", "label": "score"},
           "strategies": ["majority", "tfidf_logreg"], "eval": FAST_EVAL, "tracking": {"enabled": False},
           "output_dir": str(tmp_path / "runs")}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = CliRunner().invoke(app, ["study", str(tmp_path / "study.yaml"), "--no-progress"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "Warning: The test split is too small to trust its scores: 9 rows, fewer than 30 in 2 classes" in output
    assert "No gates declared" in output
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    decision = (run_dir / "decision.md").read_text()
    assert "**Small test split:** The test split is too small" in decision and "**No gates declared**" in decision
    html = (run_dir / "report.html").read_text()
    assert "The test split is too small to trust its scores" in html and "GATES PASSED" not in html
