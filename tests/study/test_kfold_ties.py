"""k-fold selection breaks a tie in mean score as validation selection does: the faster strategy, then the one with
fewer trainable parameters (study.aggregate.TIE_RULE)."""

import numpy as np

from graftlab.core.config import TrainConfig
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, make_strategy
from graftlab.study.fewshot import as_study_selection, select_by_kfold
from graftlab.testing import synthetic_reviews


def _summary(latency: float | None, params: int | None) -> dict:
    return {"latency_ms_b1": latency, "trainable_params": params}


def test_a_kfold_tie_goes_to_the_faster_model():
    df = synthetic_reviews(36, seed=2)
    names = sorted(df.score.unique())
    data = LabeledData(df.review.tolist(), df.score.map({n: i for i, n in enumerate(names)}).to_numpy(), names,
                       np.arange(len(df)))
    # the same procedure twice: identical fold scores
    cands = [("slow", make_strategy("tfidf_logreg", {"C": [1.0]})), ("fast", make_strategy("tfidf_logreg", {"C": [1.0]}))]
    out = select_by_kfold(cands, data, lambda seed: FitContext(train=TrainConfig(), seed=seed), n_splits=3, n_repeats=1,
                          costs={"slow": _summary(30.0, 10), "fast": _summary(3.0, 10)})
    assert out["ranking"] == ["fast", "slow"] and out["winner"] == "fast"
    assert "ties go to the faster strategy" in as_study_selection(out)[2]["rule"]
