"""The shipped model's slices: automatic ones (length quartiles, classes) and the config's slice columns."""

import numpy as np
import pandas as pd

from graftlab.core.config import StudyConfig
from graftlab.data.dataset import LabeledData
from graftlab.study.aggregate import slices_for
from graftlab.study.trials import TrialRecord


def test_a_slice_column_named_like_an_automatic_slice_keeps_both(tmp_path):
    rng = np.random.default_rng(0)
    n = 80
    labels = np.arange(n) % 2
    meta = pd.DataFrame({"class": rng.choice(["gold", "basic"], n), "length": rng.choice(["short", "long"], n)})
    test = LabeledData([" ".join(["word"] * (3 + i % 17)) for i in range(n)], labels, ["bad", "good"], np.arange(n), meta)
    cfg = StudyConfig.from_dict({"name": "s", "data": {"source": {"kind": "csv", "path": "x.csv"}, "text": "text",
                                                       "label": "label", "slices": ["class", "length"]},
                                 "eval": {"bootstrap": 100}})
    logits = np.stack([labels == 0, labels == 1], axis=1).astype(float) * 3
    record = TrialRecord(None, {}, logits, logits, tmp_path)
    columns = {s["slice_column"] for s in slices_for(record, test, cfg, temperature=1.0)}
    assert columns == {"class", "length", "class (column)", "length (column)"}
    names = {s["slice"] for s in slices_for(record, test, cfg, temperature=1.0) if s["slice_column"] == "class (column)"}
    assert names == {"gold", "basic"}
