"""``GraftClassifier``: one backbone + one strategy as a scikit-learn estimator.

It fits on raw inputs (texts, or images as uint8 arrays) and labels, so it drops into ``Pipeline``, ``cross_val_score`` and
``GridSearchCV``. A validation split for early stopping / C selection is carved from the training
data (stratified, ``validation_fraction``). For the full protocol with baselines, seeds and
evidence, use :class:`graftlab.Study`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

from .core.config import TrainConfig
from .core.errors import ConfigError, DataError
from .data.dataset import LabeledData

__all__ = ["GraftClassifier"]


class GraftClassifier(ClassifierMixin, BaseEstimator):
    """A pretrained backbone adapted by one strategy.

    Args:
        backbone: registered backbone name or a local Hugging Face folder.
        strategy: registered strategy name (``linear_probe``, ``finetune``, ``full``, ...).
        strategy_params: parameters of the strategy, e.g. ``{"trainable_layers": 2}``.
        epochs, lr, batch_size, max_length: training settings (see ``TrainConfig``).
        validation_fraction: share of the training data held out for early stopping / selection.
        random_state: seed for the split, data order, initialisation and dropout.
        progress: show progress bars.
    """

    def __init__(self, backbone: str = "minilm-l6", strategy: str = "linear_probe", strategy_params: dict | None = None,
                 epochs: int = 4, lr: float = 5e-5, batch_size: int = 16, max_length: int = 128,
                 validation_fraction: float = 0.15, random_state: int = 0, progress: bool = False) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_length = max_length
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.progress = progress

    def fit(self, X: Any, y: Any) -> GraftClassifier:
        """Adapt the backbone to ``X`` (texts, or images as uint8 arrays) and labels ``y``; returns ``self``."""
        from .backbones import get_backbone
        from .strategies import make_strategy, trial_context
        from .training import Trainer, seed_everything

        texts = _inputs(X)
        y = np.asarray(y)
        self.classes_ = unique_labels(y)
        if len(self.classes_) < 2:
            raise ConfigError(f"GraftClassifier needs at least 2 classes in y; got only {self.classes_.tolist()}.")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"The 'validation_fraction' parameter must be in (0, 1). Got {self.validation_fraction!r} instead.")
        if len(texts) != len(y):
            raise DataError(f"X has {len(texts)} inputs but y has {len(y)} labels; give one label per input.")
        codes = np.searchsorted(self.classes_, y)
        idx = np.arange(len(texts))
        tr, va = train_test_split(idx, test_size=self._n_validation(codes), stratify=codes,
                                  random_state=self.random_state)
        names = [str(c) for c in self.classes_]
        train = LabeledData([texts[i] for i in tr], codes[tr], names, tr)
        val = LabeledData([texts[i] for i in va], codes[va], names, va)
        cfg = TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, max_length=self.max_length)
        strategy = make_strategy(self.strategy, self.strategy_params or {})
        seed_everything(self.random_state)
        ctx = trial_context(cfg, self.random_state, Trainer, progress=self.progress,
                            backbone=get_backbone(self.backbone) if strategy.uses_backbone else None)
        outcome = strategy.fit(train, val, ctx)
        self.predictor_ = outcome.predictor
        self.history_ = outcome.history
        self.n_trainable_params_ = outcome.trainable_params
        return self

    def _n_validation(self, codes: np.ndarray) -> int:
        """How many examples the stratified validation split holds: ``validation_fraction`` of them (rounded up,
        as scikit-learn does), but at least one per class, so that small data still has every class on both sides.

        Raises:
            DataError: a class has a single example (it cannot be on both sides).
            ConfigError: ``validation_fraction`` leaves fewer training examples than classes.
        """
        counts = np.bincount(codes, minlength=len(self.classes_))
        n, k = len(codes), len(self.classes_)
        if counts.min() < 2:
            rare = [repr(c.item() if hasattr(c, "item") else c) for c in self.classes_[counts < 2]]
            raise DataError(
                f"GraftClassifier holds out a stratified validation split (validation_fraction="
                f"{self.validation_fraction}) for early stopping and model selection, so every class needs at least "
                f"2 examples in y (one to train on, one to validate on); "
                + (f"the class {rare[0]} has only 1." if len(rare) == 1 else
                   f"the classes {', '.join(rare[:10])}{' and more' if len(rare) > 10 else ''} have only 1 each.")
                + " Add examples of those classes, or leave them out.")
        n_val = max(int(np.ceil(self.validation_fraction * n)), k)
        if n - n_val < k:
            raise ConfigError(
                f"The 'validation_fraction' parameter {self.validation_fraction} holds out {n_val} of the {n} examples, "
                f"leaving {n - n_val} to train on, fewer than the {k} classes; lower it (e.g. 0.15) or add examples.")
        return n_val

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, k) class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "predictor_")
        return self.predictor_.predict_proba(_inputs(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each input (values of ``classes_``)."""
        return self.classes_[self.predict_proba(X).argmax(1)]


def _inputs(X: Any) -> list:
    """Texts as strings; images (a stack of arrays, or a list of (h, w[, 3]) arrays) as uint8-ready arrays."""
    if isinstance(X, np.ndarray) and X.ndim in (3, 4):
        return list(X)
    items = list(X)
    if items and isinstance(items[0], np.ndarray) and items[0].ndim >= 2:
        return items
    return [str(x) for x in items]
