"""The per-strategy predictions/<name>.parquet a study writes: one row per example, split and seed, with a probability
column per class, written without pandas' fragmentation warning however many classes there are."""

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd

from graftlab.data.dataset import LabeledData
from graftlab.study.outputs import write_predictions
from graftlab.study.trials import TrialKey, TrialRecord


def test_predictions_of_150_classes_hold_a_probability_per_class_and_raise_no_warning(tmp_path):
    n_classes, rng = 150, np.random.default_rng(0)
    names = [f"class {k}" for k in range(n_classes)]

    def split(n: int) -> LabeledData:
        return LabeledData([f"t{i}" for i in range(n)], rng.integers(0, n_classes, n), names, np.arange(n))

    prepared = SimpleNamespace(val=split(30), test=split(40), label_names=names)
    trials = {"probe": [TrialRecord(TrialKey("probe", seed), {}, rng.normal(size=(30, n_classes)),
                                    rng.normal(size=(40, n_classes)), tmp_path) for seed in (0, 1)]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' PerformanceWarning, once per class beyond 100, flooded the console
        write_predictions(trials, prepared, tmp_path)
    frame = pd.read_parquet(tmp_path / "predictions" / "probe.parquet")
    assert len(frame) == 2 * (30 + 40) and list(frame.columns[:5]) == ["id", "split", "seed", "y_true", "y_pred"]
    probs = frame[[f"p_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    assert (probs.argmax(1) == frame["y_pred"].to_numpy()).all()
