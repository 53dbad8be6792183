"""``majority``: always predict the most frequent training class (probabilities = training priors)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset import LabeledData
from .base import PREDICTORS, STRATEGIES, FitContext, FitOutcome, Predictor, Strategy


@PREDICTORS.register("prior")
class PriorPredictor(Predictor):
    kind = "prior"

    def __init__(self, priors: np.ndarray, label_names: Sequence[str]) -> None:
        super().__init__(label_names)
        self.priors = np.asarray(priors, dtype=np.float64)

    def predict_logits(self, inputs: Sequence, batch_size: int = 64) -> np.ndarray:
        return np.tile(np.log(np.clip(self.priors, 1e-12, None)), (len(inputs), 1))

    def save_files(self, folder: Path) -> dict[str, Any]:
        return {"priors": self.priors.tolist()}

    @classmethod
    def load_files(cls, folder: Path, spec: dict[str, Any]) -> PriorPredictor:
        return cls(np.array(spec["priors"]), [str(i) for i in range(len(spec["priors"]))])

    def n_parameters(self) -> int:
        return len(self.priors)


@STRATEGIES.register("majority")
class Majority(Strategy):
    """Baseline: the training class distribution, ignoring the input."""

    name = "majority"
    kind = "baseline"
    fits_without_val = True
    deterministic = True
    uses_backbone = False

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        counts = train.class_counts().astype(np.float64)
        priors = counts / counts.sum()
        # ties broken towards the first class, consistently with argmax
        return FitOutcome(PriorPredictor(priors, train.label_names), trainable_params=len(priors), total_params=len(priors))
