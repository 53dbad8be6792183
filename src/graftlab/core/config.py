"""The typed study config. Loaded from YAML/JSON or built in Python; validated when created.

Errors follow scikit-learn's style: they name the key, what is allowed and what was given.
Strategy parameters are kept as plain dicts here and validated by each strategy's own parameter
model when the study is prepared (``graft validate`` does that too), so this module imports nothing
above ``core``.

The ``data`` section (``DataConfig`` and its parts, ``table_kind``) lives in ``graftlab.core.data_config``, the
``Strict`` base and ``format_validation_error`` in ``graftlab.core._base``; both are re-exported here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ._base import Strict, format_validation_error
from .data_config import IMAGE_SOURCE_KINDS  # noqa: F401  (not in __all__; defined here before, kept importable)
from .data_config import (
    TABLE_KINDS,
    ChecksConfig,
    DataConfig,
    SourceConfig,
    SplitConfig,
    SubsampleConfig,
    table_kind,
)
from .errors import ConfigError
from .metrics import EARLY_STOPPING_METRICS, METRICS, PREDICTION_METRICS, REPORTED_METRICS, Gate, check_metric, parse_gate

__all__ = [
    "Strict",
    "SourceConfig",
    "SplitConfig",
    "ChecksConfig",
    "SubsampleConfig",
    "DataConfig",
    "StrategySpec",
    "EarlyStoppingConfig",
    "LossConfig",
    "AugmentConfig",
    "ImageAugmentConfig",
    "TrainConfig",
    "EvalConfig",
    "TrackingConfig",
    "BakeoffConfig",
    "RequireConfig",
    "StudyConfig",
    "TABLE_KINDS",
    "table_kind",
    "load_config",
    "format_validation_error",
]


class StrategySpec(Strict):
    """One strategy to run: a registered name, the parameters for it, and an optional label."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @property
    def display_name(self) -> str:
        if self.label:
            return self.label
        if not self.params:
            return self.name
        parts = [f"{k}={v}" for k, v in sorted(self.params.items())]
        return f"{self.name}[{','.join(parts)}]"


def _parse_strategy(item: Any) -> Any:
    """Accept ``"full"``, ``{"finetune": {"trainable_layers": 2}}`` or ``{"name": ..., "params": ...}``."""
    if isinstance(item, str):
        return {"name": item}
    if isinstance(item, dict) and len(item) == 1 and "name" not in item:
        (name, params), = item.items()
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValueError(
                f"parameters of strategy {name!r} must be a mapping like {{trainable_layers: 2}}; got {params!r}"
            )
        params = dict(params)  # never the caller's dict: a config built twice from it keeps its label
        label = params.pop("label", None)
        return {"name": name, "params": params, "label": label}
    return item


class EarlyStoppingConfig(Strict):
    patience: Annotated[int, Field(ge=1)] = 3
    metric: Annotated[str, AfterValidator(lambda m: check_metric(m, EARLY_STOPPING_METRICS, "early stopping"))] = Field(
        default="macro_f1", description="a metric the training loop measures on validation (graftlab.core.metrics)"
    )
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0


class LossConfig(Strict):
    """The training loss: cross-entropy or focal, with optional label smoothing and class weights.

    ``loss: focal`` is short for ``loss: {kind: focal}``. Focal ``alpha`` is the weight of class 1 in a
    two-class problem (class 0 gets ``1 - alpha``) or one weight per class; it multiplies ``class_weights``.
    """

    kind: Literal["ce", "focal"] = "ce"
    gamma: Annotated[float, Field(ge=0.0, le=10.0)] = 2.0
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] | list[Annotated[float, Field(gt=0.0)]] | None = None
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    class_weights: Literal["balanced"] | list[Annotated[float, Field(gt=0.0)]] | None = Field(
        default=None, description="'balanced' (n / (k * count)) or one weight per class, in label order"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"kind": v} if isinstance(v, str) else v


class _Switchable(Strict):
    """Settings with a probability ``p`` that also accept ``true`` (the defaults) or ``false`` (``p: 0``)."""

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return {} if v else {"p": 0.0}
        return v


class AugmentConfig(_Switchable):
    """Token-level text augmentation of training batches (never validation or test).

    Each training example is augmented with probability ``p``; an augmented example loses each
    ordinary token with probability ``deletion``, has ``swap`` x its length random position swaps, and
    each remaining token is replaced by the tokenizer's mask token with probability ``mask``.
    ``augment: true`` uses the defaults, ``augment: false`` turns it off.
    """

    p: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    deletion: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    swap: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    mask: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1

    @property
    def active(self) -> bool:
        return self.p > 0 and (self.deletion > 0 or self.swap > 0 or self.mask > 0)


class ImageAugmentConfig(_Switchable):
    """Image augmentation of training batches (never validation or test), applied after resizing.

    Each training image is augmented with probability ``p``: a horizontal flip with probability
    ``hflip``, a rotation by up to ``rotation`` degrees, a random resized crop keeping at least
    ``crop_scale`` of the area, and brightness / contrast / saturation jitter by up to the given
    fractions. ``image_augment: true`` uses the defaults, ``false`` turns it off.
    """

    p: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8
    hflip: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    rotation: Annotated[float, Field(ge=0.0, le=45.0)] = 10.0
    crop_scale: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    brightness: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    contrast: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    saturation: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2

    @property
    def active(self) -> bool:
        ops = (self.hflip, self.rotation, 1.0 - self.crop_scale, self.brightness, self.contrast, self.saturation)
        return self.p > 0 and any(x > 0 for x in ops)


class TrainConfig(Strict):
    epochs: Annotated[int, Field(ge=1, le=1000)] = 4
    lr: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=5e-5, description="the base learning rate: each neural strategy trains at it times its own multiplier "
        "(lora 10, ia3 60, contrastive 0.4, scratch 2, finetune blocks / trainable blocks, others 1) unless its "
        "parameters set 'lr'; graft validate prints each rate and where it comes from"
    )
    head_lr: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 16
    eval_batch_size: Annotated[int, Field(ge=1, le=4096)] = 64
    weight_decay: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.01
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    grad_clip: Annotated[float, Field(gt=0.0)] | None = 1.0
    max_length: Annotated[int, Field(ge=8, le=8192)] = 128
    eval_every_steps: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="validate every N optimizer steps (default: once per epoch)"
    )
    early_stopping: EarlyStoppingConfig | None = Field(default_factory=EarlyStoppingConfig)
    time_budget_s: Annotated[float, Field(gt=0.0)] | None = Field(
        default=None, description="seconds one fit may train before it stops with its best weights so far (per fit; "
        "the whole study's budget is the top-level time_budget_s)"
    )
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    checkpoint_every_steps: Annotated[int, Field(ge=1)] = 50
    loss: LossConfig = Field(default_factory=LossConfig)
    augment: AugmentConfig | None = Field(default=None, description="text augmentation of training batches; off by default")
    image_augment: ImageAugmentConfig | None = Field(
        default=None, description="image augmentation of training batches (flips, rotations, crops, colour); off by default"
    )
    balanced_sampler: bool = Field(default=False, description="draw training batches class-balanced (with replacement)")
    cache_frozen: bool = Field(
        default=True, description="compute the hidden states at the freeze boundary once and train only the layers above"
    )

    @property
    def augmenting(self) -> bool:
        return self.augment is not None and self.augment.active  # text augmentation (see augmenting_images)

    @property
    def augmenting_images(self) -> bool:
        return self.image_augment is not None and self.image_augment.active


# A gate is parsed once, when the config is read, and saved as the text it was written as.
GateField = Annotated[Gate, PlainValidator(parse_gate), PlainSerializer(str, return_type=str),
                      WithJsonSchema({"type": "string"})]


class EvalConfig(Strict):
    seeds: Annotated[int, Field(ge=1, le=100)] = 3
    bootstrap: Annotated[int, Field(ge=100, le=100_000)] = 1000
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    metric: Annotated[str, AfterValidator(lambda m: check_metric(m, PREDICTION_METRICS, "eval.metric"))] = Field(
        default="macro_f1", description="the headline metric that picks the winner and the shipped seed on validation"
    )
    gates: list[GateField] = Field(
        default_factory=list, description="'METRIC >= NUMBER' (or <=, >, <) on a metric of graftlab.core.metrics, or "
        "'beats: STRATEGY'"
    )
    fractions: list[Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=list,
        description="learning-curve sizes: fractions of train (<= 1) or examples per class (> 1)",
    )
    latency: bool = Field(default=True, description="measure each strategy's latency (ms per example at batch 1 and 32); "
                          "a latency gate measures it anyway")
    ablation: bool = Field(
        default=True,
        description="for each strategy with a loss, augmentation, sampler or layer-LR knob enabled, also run it with "
        "each knob back at its default (same seeds) and report the paired difference",
    )
    selection: Literal["auto", "validation", "kfold"] = Field(
        default="auto",
        description="how the winner is chosen: 'auto' = repeated stratified k-fold on train+val when the smallest "
        "training class has fewer than 50 examples, else the validation split",
    )
    refit: bool = Field(
        default=True,
        description="after k-fold selection, fit the chosen strategy once more on every labeled example (train+val) "
        "and ship that model, as scikit-learn's search estimators refit (strategies that need a validation split to "
        "train, e.g. full fine-tuning, ship their training-split model)",
    )
    robustness: bool = Field(default=True, description="evaluate the winner on perturbed test inputs")
    explain: Literal["ig", "occlusion", "off"] = Field(
        default="ig", description="attributions for the report's example predictions: words of a text, patches of an image"
    )
    costs: list[list[Annotated[float, Field(ge=0.0)]]] | None = Field(
        default=None,
        description="cost matrix, rows = true class, columns = predicted class, in label order",
    )

    @field_validator("costs")
    @classmethod
    def _square(cls, costs: list[list[float]] | None) -> list[list[float]] | None:
        if costs is not None and any(len(row) != len(costs) for row in costs):
            raise ValueError(f"the cost matrix must be square (one row and one column per class); got rows of lengths {[len(r) for r in costs]}")
        return costs

    @property
    def measures_latency(self) -> bool:
        return self.latency or any(g.metric and METRICS[g.metric].measured == "latency" for g in self.gates)

    @property
    def scored_metrics(self) -> tuple[str, ...]:
        """The metrics measured on test for every strategy: the catalogue's reported ones, then any other metric of
        predictions that ``metric`` or a gate names."""
        named = [self.metric, *(g.metric for g in self.gates if g.metric)]
        extra = [m for m in dict.fromkeys(named) if m not in REPORTED_METRICS and METRICS[m].measured == "predictions"]
        return (*REPORTED_METRICS, *extra)


class TrackingConfig(Strict):
    enabled: bool = True
    uri: str | None = Field(default=None, description="MLflow tracking URI; default sqlite under .graft/")
    artifacts: str | None = Field(default=None, description="folder for MLflow artifacts; default .graft/artifacts")
    experiment: str | None = None
    register_as: str | None = Field(default=None, description="registered model name; default the study name")


class BakeoffConfig(Strict):
    """How several candidate backbones are compared before the study commits to one.

    Each candidate is scored on a stratified subset of train: LogME evidence and cross-validated
    linear-probe accuracy on frozen embeddings (and, when ``finetune`` is on, a short fine-tune
    scored on val). The winner has the best ``score`` among candidates within the latency budget
    and allowed by ``require``; within ``prefer_faster_within`` of the best, the faster one wins.
    """

    subset: Annotated[int, Field(ge=20)] | None = Field(
        default=400, description="stratified training examples scored per candidate; null = all of train"
    )
    folds: Annotated[int, Field(ge=2, le=20)] = 5
    score: Literal["logme", "probe_cv", "finetune"] = "probe_cv"
    latency_budget_ms: Annotated[float, Field(gt=0.0)] | None = Field(
        default=None, description="max backbone latency in ms/example at batch 1 on this machine"
    )
    prefer_faster_within: Annotated[float, Field(ge=0.0)] = Field(
        default=0.0, description="score margin within which the faster candidate wins"
    )
    C: list[Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=lambda: [0.001, 0.01, 0.1, 1.0], min_length=1,
        description="probe inverse regularisation; several values: chosen per candidate by inner CV",
    )
    finetune: bool = Field(default=False, description="also run a short fine-tune per candidate (slow)")
    finetune_layers: Annotated[int, Field(ge=0, le=128)] = 2
    finetune_epochs: Annotated[int, Field(ge=1, le=100)] = 1

    @model_validator(mode="after")
    def _finetune_score_needs_finetune(self) -> BakeoffConfig:
        if self.score == "finetune" and not self.finetune:
            raise ValueError("score 'finetune' needs 'finetune: true' (or pick score 'probe_cv' or 'logme')")
        return self


_SPDX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+\-]*$")


class RequireConfig(Strict):
    """What a backbone's license must allow; checked before any compute."""

    commercial_use: bool = Field(default=False, description="refuse backbones whose license does not allow it")
    licenses: list[str] | None = Field(
        default=None, description="SPDX identifiers allowed (e.g. [Apache-2.0, MIT]); null = any license"
    )

    @field_validator("licenses")
    @classmethod
    def _spdx(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("the license allow-list is empty; list SPDX identifiers like Apache-2.0, or use null")
        for item in v:
            if not isinstance(item, str) or not _SPDX.match(item):
                raise ValueError(f"{item!r} is not an SPDX license identifier (e.g. Apache-2.0, MIT, BSD-3-Clause)")
        return v


class StudyConfig(Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
    data: DataConfig
    backbones: list[str] = Field(default_factory=lambda: ["minilm-l6"], min_length=1)
    strategies: list[StrategySpec] = Field(
        default_factory=lambda: [
            StrategySpec(name=n) for n in ("majority", "tfidf_logreg", "linear_probe", "full")
        ],
        min_length=1,
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    bakeoff: BakeoffConfig = Field(default_factory=BakeoffConfig)
    require: RequireConfig = Field(default_factory=RequireConfig)
    output_dir: str = "runs"
    seed: int = 0
    time_budget_s: Annotated[float, Field(gt=0.0)] | None = Field(
        default=None, description="seconds for the whole study: ablation variants, then learning-curve points, then "
        "extra seeds are left out when their measured estimate does not fit (never the baselines, a strategy's first "
        "seed, k-fold selection or the refit); each fit's own limit is train.time_budget_s"
    )

    @field_validator("strategies", mode="before")
    @classmethod
    def _strategies(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_parse_strategy(item) for item in v]
        return v

    @field_validator("backbones", mode="before")
    @classmethod
    def _backbones(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data. ``strategies`` is left out when the config did not set it: a run read back from
        its config.yaml (``--resume``, ``graft reproduce``, ``graft retrain``) then gets the study's data-size
        defaults again, not this field's fallback list."""
        out = self.model_dump(mode="json")
        if "strategies" not in self.model_fields_set:
            del out["strategies"]
        return out

    def to_yaml(self) -> str:
        """The config as YAML (what a run folder's config.yaml holds)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> StudyConfig:
        """Validate a config given as a dict; ``source`` names it in messages.

        Raises:
            ConfigError: naming each key that is not valid and what it accepts.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, cls, source)) from None


# A study config is a few hundred nodes; anchors and aliases may not make it expand past these (a "billion laughs"
# document is a few lines that expand to 9**9 nodes once built and validated).
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


def _bounded_yaml(text: str, source: Path) -> Any:
    """Parse YAML (safe constructors only) after checking what its aliases expand to, before building anything.

    Raises:
        ConfigError: when the expanded document has more than MAX_YAML_NODES nodes or is nested deeper than
            MAX_YAML_DEPTH.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()  # the node graph: each anchor once, aliases point back to it
        except RecursionError:  # the parser recurses per nesting level
            raise ConfigError(f"{source} nests deeper than {MAX_YAML_DEPTH} levels; a study config needs a few. "
                              "Flatten the config.") from None
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def expanded(n: yaml.Node, depth: int) -> int:
            """Nodes under ``n`` once every alias is copied out (memoised per anchor: linear in the file)."""
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"{source} nests deeper than {MAX_YAML_DEPTH} levels; a study config needs a few. "
                                  "Flatten the config (check anchors and aliases that refer to each other).")
            if id(n) not in sizes:
                children = (n.value if isinstance(n, yaml.SequenceNode)
                            else [x for pair in n.value for x in pair] if isinstance(n, yaml.MappingNode) else [])
                sizes[id(n)] = 1 + sum(expanded(c, depth + 1) for c in children)
                if sizes[id(n)] > MAX_YAML_NODES:
                    raise ConfigError(
                        f"{source} expands to more than {MAX_YAML_NODES:,} values once its YAML aliases (*name) are "
                        "copied out; a study config needs a few hundred. Write the values out, or use fewer aliases.")
            return sizes[id(n)]

        expanded(node, 0)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _read_text(path: Path) -> str:
    """The text of a config file, which must be UTF-8 (YAML's encoding; other encodings would be guessed)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path} is not UTF-8 text: the byte {raw[e.start]:#04x} at offset {e.start} (line {line}) "
                          "is not valid UTF-8. Save the file as UTF-8 (or remove that character).") from None


def _set_key(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``dotted`` (``eval.seeds``, ``strategies.0``, ``strategies.1.full.epochs``) in ``data``: a number picks an
    entry of a list by position; missing mappings on the way are created."""
    parts = dotted.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth])
        if isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                raise ConfigError(
                    f"--set {dotted}: '{where}' is a list of {len(node)} entries, so the part after it must be a "
                    f"position from 0 to {len(node) - 1}; got {part!r}. Replace one entry with --set {where}.0=VALUE, "
                    f"or the whole list with --set '{where}=[a, b]'.")
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
        else:
            raise ConfigError(f"--set {dotted}: '{where}' is {node!r}, not a mapping, so it has no key {part!r}. Set "
                              f"'{where}' itself instead (e.g. --set '{where}={{{part}: VALUE}}').")
        if depth == len(parts) - 1:
            node[key] = value
        else:
            if isinstance(node, dict) and node.get(key) is None:
                if parts[depth + 1].isdigit():  # a position in a list the config does not have
                    raise ConfigError(_absent_list(dotted, parts[:depth + 1], parts[depth + 1:], value))
                node[key] = {}
            node = node[key]


def _absent_list(dotted: str, path: list[str], rest: list[str], value: Any) -> str:
    """The message for ``--set LIST.N...=VALUE`` on a config without LIST: write the whole list instead."""
    where, entry = ".".join(path), value
    for part in reversed(rest[1:]):
        entry = {part: entry}
    whole = yaml.safe_dump([entry], default_flow_style=True, width=10**6).strip()
    return (f"--set {dotted}: the config has no '{where}' list, so it has no entry {rest[0]} to set; use --set "
            f"'{where}={whole}' or add '{where}' to the config.")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> StudyConfig:
    """Read a YAML or JSON study config; relative data paths are resolved against its folder.

    ``overrides`` maps dotted keys to values (``{"eval.seeds": 1}``); a number picks a list entry (``strategies.0``).
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix in (".yaml", ".yml"))[:5]
        hint = f" It holds {', '.join(found)}." if found else ""
        raise ConfigError(f"{path} is a folder; a study config YAML file is expected (graft study study.yaml).{hint}")
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist. Pass the path of a study YAML file.")
    try:
        data = _bounded_yaml(_read_text(path), path)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of study settings (name, data, strategies, ...).")
    for dotted, value in (overrides or {}).items():
        _set_key(data, dotted, value)
    cfg = StudyConfig.from_dict(data, source=str(path))
    base = path.resolve().parent
    for src in (cfg.data.source, cfg.data.test_source):
        if src is not None and src.path and not Path(src.path).is_absolute():
            src.path = str(base / src.path)
        if src is not None and src.labels and not Path(src.labels).is_absolute():
            src.labels = str(base / src.labels)
    return cfg
