"""A study whose TF-IDF baseline finds no words in the training texts stops there with the baseline's message
(exit code 2, no traceback), as a study does for any strategy that raises a user error; the trials that
finished before it stay in the run folder for ``--resume``."""

import random

import pandas as pd
import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import assert_user_error

FAST_EVAL = {"seeds": 1, "bootstrap": 100, "robustness": False, "explain": "off", "latency": False, "ablation": False}


def one_letter_reviews(n: int) -> pd.DataFrame:
    """Distinct texts of five one-letter tokens, labelled by whether an 'a' is among them."""
    rng, seen = random.Random(0), set()
    while len(seen) < n:
        seen.add(" ".join(rng.choice("abcdefghij") for _ in range(5)))
    texts = sorted(seen)
    return pd.DataFrame({"review": texts, "score": ["pos" if "a" in t.split() else "neg" for t in texts]})


def test_a_baseline_without_words_stops_the_study_with_its_message(tmp_path):
    one_letter_reviews(80).to_csv(tmp_path / "reviews.csv", index=False)
    cfg = {"name": "letters", "data": {"source": {"kind": "csv", "path": str(tmp_path / "reviews.csv")},
                                       "text": "review", "label": "score"},
           "strategies": ["majority", "tfidf_logreg"], "eval": FAST_EVAL, "tracking": {"enabled": False},
           "output_dir": str(tmp_path / "runs")}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = CliRunner().invoke(app, ["study", str(tmp_path / "study.yaml"), "--no-progress"])
    assert_user_error(result, "The TF-IDF baseline (tfidf_logreg) found no words of two or more letters",
                      "leave tfidf_logreg out")
    run_dir = next((tmp_path / "runs" / "letters").iterdir())
    assert (run_dir / "trials" / "majority" / "size-all" / "seed-0" / "result.json").is_file()
    assert not (run_dir / "results.json").exists()
