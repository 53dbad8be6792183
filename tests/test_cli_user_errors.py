"""Data and config mistakes met through the CLI: exit 2, one paragraph that says what to fix, no traceback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.core.errors import ConfigError
from graftlab.core.registry import Registry


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _fails(runner, *args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.stderr.split())  # rich wraps long lines


@pytest.fixture
def text_model(tmp_path, reviews):
    """A packaged tf-idf model (no backbone: quick)."""
    from graftlab.core.config import TrainConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.packaging import export_model
    from graftlab.strategies import FitContext, make_strategy

    names = sorted(reviews.score.unique())
    y = reviews.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(reviews.review.tolist(), y, names, np.arange(len(reviews)))
    fitted = make_strategy("tfidf_logreg").fit(data.subset(range(0, 60, 2)), data.subset(range(1, 60, 2)),
                                               FitContext(train=TrainConfig(), seed=0, backbone=None))
    return export_model(fitted.predictor, tmp_path / "model", {"name": "tiny-tfidf", "temperature": 1.0})


def test_a_broken_jsonl_line_is_named(runner, tmp_path, write_study, reviews):
    lines = reviews.to_json(orient="records", lines=True).splitlines()
    lines[11] = '{"review": "oops", "score":'
    (tmp_path / "reviews.jsonl").write_text("\n".join(lines) + "\n")
    msg = _fails(runner, "validate", write_study(source={"kind": "jsonl", "path": "reviews.jsonl"}))
    assert "line 12 is not a valid JSON object" in msg and '\'{"review": "oops", "score":\'' in msg


def test_a_header_only_file_for_predict_does_not_mention_a_config(runner, tmp_path, text_model):
    (tmp_path / "hdr.csv").write_text("review,score\n")
    msg = _fails(runner, "predict", text_model, "--file", tmp_path / "hdr.csv")
    assert "--file (hdr.csv) has no rows. Give --file a file with at least one row under the header." in msg
    assert "config" not in msg


def test_a_header_only_file_in_a_study_says_to_add_rows(runner, tmp_path, write_study):
    path = write_study(pd.DataFrame({"review": [], "score": []}))
    msg = _fails(runner, "validate", path)
    assert "data.source (reviews.csv) has no rows. Add rows under the header of" in msg


def test_an_empty_drop_that_leaves_nothing_names_the_check(runner, write_study, reviews):
    msg = _fails(runner, "validate", write_study(reviews.assign(review=" "), checks={"empty": "drop"}))
    assert "the empty check (data.checks.empty: drop) removed 60 rows, so there is nothing to train on" in msg
    assert "n_samples" not in msg and "add examples of other classes" not in msg


def test_text_and_label_naming_one_column_is_refused(runner, write_study):
    msg = _fails(runner, "validate", write_study(label="review"))
    assert "'data.text' and 'data.label' both name the column 'review'" in msg
    assert "min_per_class" not in msg


def test_missing_labels_are_placed_by_file_line(runner, write_study, reviews):
    reviews.loc[3, "score"] = None
    msg = _fails(runner, "validate", write_study(reviews))
    assert "1 row of reviews.csv has no 'score' label (first at line 5 of the file)" in msg


def test_an_unknown_strategy_gets_a_suggestion(runner, tmp_path, write_study):
    path = write_study()
    path.write_text(path.read_text() + "strategies: [majority, tfidf_logrg]\n")
    msg = _fails(runner, "validate", path)
    assert "Unknown strategy 'tfidf_logrg'. Did you mean 'tfidf_logreg'? Known strategies:" in msg


@pytest.mark.parametrize(("kind", "plural"), [("strategy", "strategies"), ("backbone", "backbones"),
                                              ("predictor kind", "predictor kinds"), ("box", "boxes"),
                                              ("day", "days")])
def test_registry_names_its_kind_in_the_plural_and_suggests_a_close_name(kind, plural):
    reg: Registry = Registry(kind)
    reg.register("tfidf_logreg")(object())
    reg.register("linear_probe")(object())
    with pytest.raises(ConfigError, match=rf"Unknown {kind} 'tfidf_logrg'. Did you mean 'tfidf_logreg'\? "
                                          rf"Known {plural}: linear_probe, tfidf_logreg\.$"):
        reg.get("tfidf_logrg")
    with pytest.raises(ConfigError) as err:
        reg.get("zzz")
    assert "Did you mean" not in str(err.value)
