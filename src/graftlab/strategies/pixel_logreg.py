"""``pixel_logreg``: logistic regression on raw pixels, the image baseline without any pretrained model.

Images are resized to ``size`` x ``size`` (the same bilinear, antialiased resize the backbones use),
kept grayscale or RGB (``color: auto`` follows the training images), flattened and standardised;
C is chosen on the validation split. Saved as JSON + safetensors (scaler and coefficients): no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field
from sklearn.preprocessing import StandardScaler

from ..backbones.image import to_pixels
from ..core.artifacts import load_arrays, save_arrays
from ..data.dataset import LabeledData
from .base import PREDICTORS, STRATEGIES, FitContext, FitOutcome, Predictor, Strategy, StrategyParams
from .selection import select_logreg
from .tfidf_logreg import as_multiclass

__all__ = ["PixelLogreg", "PixelParams", "PixelPredictor", "pixel_features"]


class PixelParams(StrategyParams):
    size: Annotated[int, Field(ge=4, le=128)] = 28
    color: Literal["auto", "gray", "rgb"] = "auto"
    C: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [0.001, 0.01, 0.1, 1.0])


def pixel_features(images: Sequence, size: int, gray: bool) -> np.ndarray:
    """(n, size*size) grayscale or (n, 3*size*size) RGB pixel values in [0, 1]."""
    x = to_pixels(list(images), size)  # (n, 3, size, size)
    if gray:
        x = x.mean(dim=1)  # (n, size, size)
    return x.reshape(len(x), -1).numpy().astype(np.float64)


@PREDICTORS.register("pixel_logreg")
class PixelPredictor(Predictor):
    kind = "pixel_logreg"
    modality = "image"

    def __init__(self, size: int, gray: bool, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: np.ndarray, label_names: Sequence[str]) -> None:
        super().__init__(label_names)
        self.size, self.gray = int(size), bool(gray)
        self.mean, self.scale = mean, scale  # (d,) standardisation
        self.coef, self.intercept = coef, intercept  # (k, d), (k,)

    def predict_logits(self, inputs: Sequence, batch_size: int = 64) -> np.ndarray:
        out = []
        for start in range(0, len(inputs), 1024):  # bounded memory for big test sets
            x = (pixel_features(list(inputs[start : start + 1024]), self.size, self.gray) - self.mean) / self.scale
            out.append(x @ self.coef.T + self.intercept)
        return np.concatenate(out) if out else np.zeros((0, len(self.label_names)))

    def n_parameters(self) -> int:
        return int(self.coef.size + self.intercept.size)

    def save_files(self, folder: Path) -> dict[str, Any]:
        save_arrays({"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept},
                    folder / "weights.safetensors")
        return {"size": self.size, "gray": self.gray}

    @classmethod
    def load_files(cls, folder: Path, spec: dict[str, Any]) -> PixelPredictor:
        a = load_arrays(folder / "weights.safetensors")
        k = a["coef"].shape[0]
        return cls(spec["size"], spec["gray"], a["mean"], a["scale"], a["coef"], a["intercept"], [str(i) for i in range(k)])


@STRATEGIES.register("pixel_logreg")
class PixelLogreg(Strategy):
    """Baseline: what a careful practitioner gets from the pixels alone, without a pretrained model."""

    name = "pixel_logreg"
    kind = "baseline"
    deterministic = True
    uses_backbone = False
    modalities = ("image",)
    Params = PixelParams

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        self.check_data(train)
        p = self.params
        gray = p.color == "gray" or (p.color == "auto" and all(np.ndim(x) == 2 for x in train.inputs))
        x_train = pixel_features(train.inputs, p.size, gray)
        scaler = StandardScaler().fit(x_train)
        scale = np.where(scaler.scale_ > 1e-6, scaler.scale_, 1.0)  # constant pixels (e.g. borders) stay 0
        model, info = select_logreg((x_train - scaler.mean_) / scale, train.labels,
                                    (pixel_features(val.inputs, p.size, gray) - scaler.mean_) / scale, val.labels,
                                    p.C, ctx.seed, ctx.train)
        coef, intercept = as_multiclass(model, train.n_classes)
        pred = PixelPredictor(p.size, gray, scaler.mean_, scale, coef, intercept, train.label_names)
        info.update(size=p.size, color="gray" if gray else "rgb", features=int(x_train.shape[1]))
        return FitOutcome(pred, trainable_params=pred.n_parameters(), total_params=pred.n_parameters(), info=info)
