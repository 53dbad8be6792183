"""Strategies (how a backbone is adapted) and predictors (what a fitted strategy leaves behind).

A strategy is one file that registers itself in :data:`STRATEGIES`; its parameters are a pydantic
model validated with sklearn-style messages. ``fit`` returns a :class:`Predictor`, which saves to
safetensors + JSON and is loaded back by its ``kind`` through :data:`PREDICTORS` — without any
training code, which is how serving loads models.

Strategies never import the training layer: neural ones receive a ``trainer`` in the
:class:`FitContext` (dependency injection keeps the layers pointing downward).

One learning-rate rule (:func:`effective_lr`): a strategy that trains by gradient descent trains at ``train.lr`` times
its own multiplier (``Strategy.lr_multiplier``; finetune's depends on how many blocks train), unless its parameters
set ``lr``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import ValidationError

from ..core.artifacts import load_json, save_json
from ..core.config import Strict, TrainConfig, format_validation_error
from ..core.errors import ArtifactError, ConfigError
from ..core.registry import Registry
from ..data.dataset import LabeledData

__all__ = [
    "STRATEGIES",
    "PREDICTORS",
    "StrategyParams",
    "Strategy",
    "FitContext",
    "FitOutcome",
    "LearningRate",
    "Predictor",
    "TrainerLike",
    "effective_lr",
    "format_rate",
    "make_strategy",
    "trial_context",
    "load_predictor",
    "save_predictor",
]

STRATEGIES: Registry = Registry("strategy")
PREDICTORS: Registry = Registry("predictor kind")


class StrategyParams(Strict):
    """Base for a strategy's parameters; subclasses declare fields with types and bounds."""


class TrainerLike(Protocol):
    """What the training layer hands to neural strategies (see ``graftlab.training.Trainer``); ``objective`` replaces
    classification of single examples (``graftlab.training.Objective``; contrastive's pairs)."""

    def fit(self, model: Any, param_groups: list[dict], train: Any, val: Any, *, name: str = "", epochs: int | None = None,
            objective: Any = None) -> Any: ...


@dataclass
class FitContext:
    """Everything a strategy may use while fitting, beyond the data."""

    train: TrainConfig
    seed: int
    backbone: Any = None  # graftlab.backbones.Backbone, None for backbone-free baselines
    trainer: TrainerLike | None = None
    work_dir: Path | None = None  # checkpoints for resume
    trainer_factory: Any = None  # callable(work_dir, train_cfg) -> TrainerLike, for multi-stage strategies


def trial_context(train: TrainConfig, seed: int, make_trainer: Callable[..., TrainerLike], *, backbone: Any = None,
                  work_dir: Path | None = None, progress: bool = True) -> FitContext:
    """The :class:`FitContext` of one fit (a study trial, a k-fold fit, a bake-off probe, ``GraftClassifier.fit``).

    Args:
        train: the training settings.
        seed: the fit's seed (the trainer's batch order; the caller seeds the global RNGs).
        make_trainer: the training layer's trainer class, called as ``make_trainer(cfg, seed=, work_dir=, progress=)``
            (``graftlab.training.Trainer``; injected because strategies do not import the training layer).
        backbone: None for backbone-free strategies.
        work_dir: where checkpoints go, so an interrupted fit resumes; None keeps none.
        progress: show progress bars.

    Returns:
        A context with a trainer for ``train`` and a ``trainer_factory`` for strategies that train with their own
        settings or in stages (each stage may name its own checkpoint folder; by default ``work_dir``).
    """
    home = work_dir

    def trainer_factory(work_dir: Path | None = None, train_cfg: TrainConfig | None = None) -> TrainerLike:
        return make_trainer(train_cfg or train, seed=seed, work_dir=work_dir or home, progress=progress)

    return FitContext(train=train, seed=seed, backbone=backbone, trainer=trainer_factory(), work_dir=work_dir,
                      trainer_factory=trainer_factory)


@dataclass
class FitOutcome:
    """What a fit returns. ``logits_for``, when set, gives the predictor's logits for a list of inputs from the
    fit's caches (frozen embeddings, a frozen prefix): the same numbers as ``predictor.predict_logits`` up to float
    rounding, without running the frozen part again. The study scores val and test with it."""

    predictor: Predictor
    history: list[dict[str, Any]] = field(default_factory=list)
    trainable_params: int = 0
    total_params: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    logits_for: Callable[[Sequence], np.ndarray] | None = None


class Strategy(ABC):
    """One way of turning (backbone, labeled data) into a predictor."""

    name: ClassVar[str]
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    #: 'baseline' strategies are the yardsticks; 'transfer' ones use the pretrained backbone
    kind: ClassVar[str] = "transfer"
    uses_backbone: ClassVar[bool] = True
    #: the same data give the same model whatever the seed (no random initialisation, order or sampling), so the
    #: study fits it once on a given training set instead of once per seed
    deterministic: ClassVar[bool] = False
    #: fits without validation rows (the refit on every labeled example after k-fold selection): nothing in it
    #: needs a validation split (no early stopping; C fixed instead of chosen on val)
    fits_without_val: ClassVar[bool] = False
    #: the input modalities the strategy works on; neural strategies follow their backbone
    modalities: ClassVar[tuple[str, ...]] = ("text", "image")
    #: a strategy that trains by gradient descent: its learning rate as a multiple of ``train.lr`` when its parameters
    #: set no ``lr`` (see :func:`effective_lr`); None for one that trains nothing by gradient descent
    lr_multiplier: ClassVar[float | None] = None

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, self.Params, f"strategy '{self.name}'")) from None

    @abstractmethod
    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome: ...

    def check_data(self, data: LabeledData, backbone: Any = None) -> None:
        """Raise ConfigError when the strategy (or its backbone) cannot take this data's modality."""
        modality = data.modality
        if modality not in self.modalities:
            alternative = {"text": "tfidf_logreg", "image": "pixel_logreg"}.get(modality)
            raise ConfigError(
                f"The strategy '{self.name}' works on {' or '.join(self.modalities)} inputs, but the data are {modality}s. "
                f"Remove it from 'strategies'" + (f" (the no-pretraining baseline for {modality}s is {alternative})." if alternative else ".")
            )
        bb_modality = getattr(backbone, "modality", None) if self.uses_backbone else None
        if bb_modality is not None and bb_modality != modality:
            raise ConfigError(
                f"The backbone {getattr(backbone, 'name', '?')!r} takes {bb_modality} inputs, but the data are {modality}s. "
                f"Choose a {modality} backbone in 'backbones' (see `graft models list`)."
            )

    def lr_from_base(self, base: float, n_blocks: int | None) -> tuple[float, str]:
        """The learning rate ``train.lr = base`` gives this strategy, and how (the part after "= " in
        :attr:`LearningRate.source`): ``base`` times :attr:`lr_multiplier`."""
        m = self.lr_multiplier
        if m == 1:
            return base, "train.lr"
        return base * m, f"train.lr {format_rate(base)} × {m:g} ({self.name}'s multiplier)"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({args})"


@dataclass(frozen=True)
class LearningRate:
    """The rate a strategy trains at and where it comes from, in one line for ``graft validate`` and the results
    (``"5e-4 = train.lr 5e-5 × 10 (lora's multiplier)"``, ``"1e-3 (lora.lr, set in its parameters)"``)."""

    value: float
    source: str


def format_rate(x: float) -> str:
    """A learning rate in short scientific notation: 5e-05 -> '5e-5', 0.00015 -> '1.5e-4'."""
    mantissa, exponent = f"{x:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def effective_lr(strategy: Strategy, train: TrainConfig, n_blocks: int | None = None) -> LearningRate | None:
    """The one learning-rate rule: the strategy's own ``lr`` parameter when set, else ``train.lr`` times its multiplier.

    Args:
        strategy: a strategy with its parameters.
        train: the training settings (``train.lr`` is the base).
        n_blocks: the backbone's number of blocks (finetune's multiplier depends on it).

    Returns:
        The rate and its source; None for a strategy that trains nothing by gradient descent.
    """
    if strategy.lr_multiplier is None:
        return None
    own = getattr(strategy.params, "lr", None)
    if own is not None:
        return LearningRate(own, f"{format_rate(own)} ({strategy.name}.lr, set in its parameters)")
    value, how = strategy.lr_from_base(train.lr, n_blocks)
    return LearningRate(value, f"{format_rate(value)} = {how}")


def make_strategy(name: str, params: dict[str, Any] | None = None) -> Strategy:
    """Instantiate a registered strategy, validating its parameters."""
    cls = STRATEGIES.get(name)
    return cls(**(params or {}))


class Predictor(ABC):
    """A fitted model: inputs in, logits out. Saves itself to a folder of safetensors + JSON."""

    kind: ClassVar[str]
    #: what it takes: "text", "image", or None when any input will do (a class prior)
    modality: ClassVar[str | None] = None

    def __init__(self, label_names: Sequence[str]) -> None:
        self.label_names = list(label_names)

    @abstractmethod
    def predict_logits(self, inputs: Sequence, batch_size: int = 64) -> np.ndarray:
        """Unnormalised scores (n, k); softmax gives probabilities (log-probabilities are fine logits)."""

    def model_view(self, inputs: Sequence) -> list | None:
        """What the model computes from, one comparable item per input (e.g. token ids after truncation): inputs
        with equal items get equal logits, so callers may reuse them. None when the predictor cannot say."""
        return None

    def predict_proba(self, inputs: Sequence, batch_size: int = 64, temperature: float = 1.0) -> np.ndarray:
        z = self.predict_logits(inputs, batch_size) / temperature
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    @abstractmethod
    def save_files(self, folder: Path) -> dict[str, Any]:
        """Write this predictor's files into ``folder``; return its JSON spec (stored by :func:`save_predictor`)."""

    @classmethod
    @abstractmethod
    def load_files(cls, folder: Path, spec: dict[str, Any]) -> Predictor: ...

    def n_parameters(self) -> int:
        return 0


def save_predictor(predictor: Predictor, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = predictor.save_files(folder)
    save_json({"kind": predictor.kind, "label_names": predictor.label_names, "spec": spec}, folder / "predictor.json")
    return folder


def load_predictor(folder: str | Path) -> Predictor:
    folder = Path(folder)
    if not (folder / "predictor.json").is_file():
        raise ArtifactError(f"{folder} holds no predictor.json: it is not a saved graftlab model.")
    meta = load_json(folder / "predictor.json")
    cls = PREDICTORS.get(meta["kind"])
    pred = cls.load_files(folder, meta["spec"])
    pred.label_names = list(meta["label_names"])
    return pred
