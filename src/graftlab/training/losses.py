"""Classification losses built from :class:`~graftlab.core.config.LossConfig`: cross-entropy or focal,
label smoothing, class weights (``balanced`` from the training labels, or explicit).

Both losses reduce like ``torch.nn.functional.cross_entropy``: a weighted mean, divided by the summed
weight of each example's true class, so focal loss with ``gamma=0`` *is* weighted cross-entropy.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core.config import LossConfig
from ..core.errors import ConfigError

__all__ = ["ClassifierLoss", "balanced_weights", "focal_loss", "make_loss"]


def balanced_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's 'balanced' weights n / (k * count_c); a class absent from training gets weight 1."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    weights = len(labels) / (n_classes * np.maximum(counts, 1.0))
    return np.where(counts > 0, weights, 1.0)


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float, weight: torch.Tensor | None = None,
               label_smoothing: float = 0.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): each log-probability is scaled by (1 - p)^gamma.

    Args:
        logits: (batch, k) scores.
        labels: (batch,) class indices.
        gamma: focusing strength; 0 gives (weighted, smoothed) cross-entropy.
        weight: (k,) per-class weights, or None.
        label_smoothing: mass spread uniformly over the k classes, as in ``F.cross_entropy``.
    """
    k = logits.shape[1]
    logp = F.log_softmax(logits.float(), dim=1)  # (batch, k)
    focal = (1.0 - logp.exp()).clamp(min=0.0).pow(gamma) * -logp  # (batch, k): per-class focal terms
    w = weight if weight is not None else torch.ones(k, dtype=focal.dtype)
    true_term = focal.gather(1, labels[:, None]).squeeze(1) * w[labels]  # (batch,)
    per_example = (1.0 - label_smoothing) * true_term
    if label_smoothing > 0:
        per_example = per_example + label_smoothing / k * (focal * w).sum(1)
    return per_example.sum() / w[labels].sum()


class ClassifierLoss:
    """``(logits, labels) -> loss`` configured by a :class:`LossConfig` and the training labels.

    Class weights need the number of classes, which is read from the logits on the first call.
    """

    def __init__(self, cfg: LossConfig, train_labels: np.ndarray | None = None) -> None:
        self.cfg = cfg
        self.train_labels = train_labels
        self._weights: dict[int, torch.Tensor | None] = {}

    def class_weights(self, n_classes: int) -> torch.Tensor | None:
        """Per-class weights (class weights x focal alpha), or None when every class weighs 1."""
        if n_classes not in self._weights:
            self._weights[n_classes] = self._build_weights(n_classes)
        return self._weights[n_classes]

    def _build_weights(self, k: int) -> torch.Tensor | None:
        cfg, w = self.cfg, np.ones(k)
        if cfg.class_weights == "balanced":
            if self.train_labels is None:
                raise ConfigError("The 'loss.class_weights' setting 'balanced' needs the training labels; none were given.")
            w = w * balanced_weights(self.train_labels, k)
        elif cfg.class_weights is not None:
            w = w * _per_class(cfg.class_weights, k, "loss.class_weights")
        if cfg.kind == "focal" and cfg.alpha is not None:
            if isinstance(cfg.alpha, float):
                if k != 2:
                    raise ConfigError(
                        f"The 'loss.alpha' parameter must be a list of {k} per-class weights for a {k}-class problem "
                        f"(a single number only works with two classes). Got {cfg.alpha} instead."
                    )
                w = w * np.array([1.0 - cfg.alpha, cfg.alpha])
            else:
                w = w * _per_class(cfg.alpha, k, "loss.alpha")
        if np.allclose(w, 1.0):
            return None
        return torch.as_tensor(w, dtype=torch.float32)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = self.class_weights(logits.shape[1])
        if self.cfg.kind == "focal":
            return focal_loss(logits, labels, self.cfg.gamma, weight, self.cfg.label_smoothing)
        return F.cross_entropy(logits, labels, weight=weight, label_smoothing=self.cfg.label_smoothing)


def _per_class(values: list[float], k: int, key: str) -> np.ndarray:
    if len(values) != k:
        raise ConfigError(
            f"The '{key}' parameter must list one weight per class ({k} classes, in label order). "
            f"Got {len(values)} values instead: {values}."
        )
    return np.asarray(values, dtype=np.float64)


def make_loss(cfg: LossConfig | None, train_labels: np.ndarray | None = None) -> ClassifierLoss:
    """The loss a :class:`~graftlab.training.Trainer` uses for ``cfg`` (plain cross-entropy when None)."""
    return ClassifierLoss(cfg or LossConfig(), train_labels)
