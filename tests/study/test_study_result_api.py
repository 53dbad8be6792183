"""The study from Python: ``Study.strategies`` as a property, ``StudyResult.leaderboard()`` as a DataFrame read from
the typed results, and ``StudyResult.evaluate()`` of the packaged model on new labeled rows."""

import numpy as np
import pandas as pd
import pytest

import graftlab
from graftlab.core.config import StudyConfig
from graftlab.core.errors import DataError
from graftlab.core.metrics import METRICS
from graftlab.evaluation import metrics_with_ci
from graftlab.packaging import load_model
from graftlab.study import Study
from graftlab.testing import synthetic_reviews


def _config(tiny_bert, folder, **eval_over):
    return StudyConfig.from_dict({
        "name": "api",
        "data": {"source": {"kind": "csv", "path": str(folder / "reviews.csv")}, "text": "review", "label": "score"},
        "backbones": [tiny_bert],
        "strategies": ["majority", "tfidf_logreg", "linear_probe"],
        "eval": {"seeds": 1, "bootstrap": 100, "robustness": False, "explain": "off",
                 "gates": ["macro_precision >= 0.1"], **eval_over},
        "tracking": {"enabled": False},
        "output_dir": str(folder / "runs"),
    })


@pytest.fixture(scope="module")
def finished(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-study")
    synthetic_reviews(240, seed=0).to_csv(folder / "reviews.csv", index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAFT_CACHE_DIR", str(folder / "cache"))
        return Study(_config(tiny_bert, folder), progress=False).run()


def test_strategies_is_a_property(tiny_bert, tmp_path):
    study = Study(_config(tiny_bert, tmp_path), progress=False)
    assert isinstance(Study.strategies, property)
    assert list(study.strategies) == ["majority", "tfidf_logreg", "linear_probe"]
    spec, strategy = study.strategies["linear_probe"]
    assert spec.name == strategy.name == "linear_probe"


def test_leaderboard_is_one_row_per_strategy_in_ranking_order(finished):
    results = finished.results
    board = finished.leaderboard()
    assert isinstance(board, pd.DataFrame)
    assert board["strategy"].tolist() == results.selection.ranking
    assert board["chosen"].tolist() == [s == results.winner for s in results.selection.ranking]
    assert board.loc[board["chosen"], "strategy"].item() == results.winner


def test_leaderboard_columns_follow_the_metric_catalogue(finished):
    board = finished.leaderboard()
    reported = [m for m in METRICS if m in finished.results.champion.test]
    assert "macro_precision" in reported  # named by a gate, so measured on test
    metric_cols = [c for c in board.columns if c.removesuffix("_ci_low").removesuffix("_ci_high") in reported]
    assert metric_cols == [c for m in reported for c in (m, f"{m}_ci_low", f"{m}_ci_high")]
    headline = finished.results.headline_metric
    assert list(board.columns) == ["strategy", "kind", *metric_cols, f"val_{headline}", "fit_seconds", "latency_ms_b1",
                                   "trainable_params", "chosen"]


def test_leaderboard_values_are_the_results_fields(finished):
    board = finished.leaderboard().set_index("strategy")
    for name, s in finished.results.strategies.items():
        row = board.loc[name]
        assert row["kind"] == s.kind
        for m, ci in s.test.items():
            assert (row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"]) == pytest.approx((ci.value, ci.ci_low, ci.ci_high),
                                                                                       nan_ok=True)
        assert row[f"val_{finished.results.headline_metric}"] == pytest.approx(s.val[finished.results.headline_metric])
        assert row["fit_seconds"] == pytest.approx(s.fit_seconds)
        assert pd.isna(row["trainable_params"]) if s.trainable_params is None else row["trainable_params"] == s.trainable_params
    assert board.loc["linear_probe", "latency_ms_b1"] > 0


def test_evaluate_scores_the_packaged_model_on_new_rows(finished, tmp_path):
    new = synthetic_reviews(90, seed=7)
    got = finished.evaluate(new)
    assert isinstance(got, graftlab.Evaluation)
    assert got.n == 90 and got.label_names == finished.results.label_names
    assert list(got.metrics) == [m for m in METRICS if m in finished.results.champion.test]
    model = load_model(finished.model_dir)
    y = new["score"].map({n: i for i, n in enumerate(model.label_names)}).to_numpy()
    expected = metrics_with_ci(y, model.predict_proba(new["review"].tolist()), list(got.metrics), n_boot=100, seed=0)
    for m, ci in got.metrics.items():
        assert (ci.value, ci.ci_low, ci.ci_high) == pytest.approx(tuple(expected[m].values()), nan_ok=True)
        assert ci.ci_low <= ci.value <= ci.ci_high or np.isnan(ci.value)
    assert set(got.per_class) == set(model.label_names)
    assert sum(map(sum, got.confusion_matrix)) == 90

    new.rename(columns={"score": "truth"}).to_csv(tmp_path / "new.csv", index=False)
    from_file = finished.evaluate(tmp_path / "new.csv", label="truth")
    assert from_file.metrics == got.metrics


def test_evaluate_refuses_labels_the_model_does_not_know(finished):
    new = synthetic_reviews(30, seed=3)
    new.loc[0, "score"] = "terrible"
    with pytest.raises(DataError, match="terrible"):
        finished.evaluate(new)


def test_evaluate_names_a_missing_label_column(finished, tmp_path):
    new = synthetic_reviews(30, seed=3).rename(columns={"score": "truth"})
    with pytest.raises(DataError, match="'score'.*truth"):
        finished.evaluate(new)
    with pytest.raises(DataError, match="does not exist"):
        finished.evaluate(tmp_path / "missing.csv")
