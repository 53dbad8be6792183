"""Typed records of a study's results: what ``results.json`` holds, read and written as fields.

The study builds a :class:`StudyResults`; the report, the decision record, the model card, MLflow logging, the CLI
and the lifecycle commands read its fields. ``results.json`` is its serialisation: :func:`save_results` writes it
with a ``schema_version``, :func:`load_results` reads it back (files written before ``schema_version`` existed read
as version 1, with the same fields). Keys a record does not declare are kept (``extra``), so a file written by a
newer release still loads; the tests check that a study writes none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .artifacts import load_json, save_json
from .errors import ArtifactError

__all__ = [
    "SCHEMA_VERSION",
    "Record",
    "Interval",
    "SeedStats",
    "ClassScores",
    "Calibration",
    "StrategySummary",
    "PairedDiff",
    "Comparison",
    "GateResult",
    "Refit",
    "Selection",
    "SliceResult",
    "DataCheckResult",
    "DataSection",
    "BackboneInfo",
    "Environment",
    "Failure",
    "CurvePoint",
    "LearningCurve",
    "AblationRow",
    "BakeoffCandidate",
    "Bakeoff",
    "DroppedWork",
    "StudyBudget",
    "Timings",
    "Tracking",
    "StudyResults",
    "as_results",
    "load_results",
    "save_results",
    "unknown_keys",
]

#: 1: files written before the field existed (same fields); 2: written by :func:`save_results`
SCHEMA_VERSION = 2

#: a test split with fewer examples in a class, or whose chosen model's headline CI is wider, is too small to trust
#: (:meth:`StudyResults.small_test_warning`)
MIN_TEST_PER_CLASS = 30
MAX_TEST_CI_WIDTH = 0.2


class Record(BaseModel):
    """Base of every results record: fields by attribute; undeclared keys kept (see :func:`unknown_keys`)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, protected_namespaces=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict, with the keys the record was built with (no defaults added, NaN kept)."""
        return self.model_dump(exclude_unset=True)

    # -- the read-only dict interface of earlier releases, whose results were plain dicts ----------------
    def keys(self) -> list[str]:
        return list(self.to_dict())

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # a dict iterates its keys
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self.model_fields_set or key in (self.model_extra or {}))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


class Interval(Record):
    """A point estimate with its confidence interval."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None


class SeedStats(Record):
    mean: float
    std: float | None = None
    values: list[float] = Field(default_factory=list)


class ClassScores(Record):
    precision: float
    recall: float
    f1: float
    support: float


class Calibration(Record):
    """Temperature scaling fitted on validation: the shipped seed's temperature and ECE before and after."""

    temperature: float = 1.0
    temperatures: list[float] = Field(default_factory=list)
    note: str | None = None
    ece_before: float | None = None
    ece_after: float | None = None
    reliability_before: dict[str, list[int | float]] | None = None
    reliability_after: dict[str, list[int | float]] | None = None


class StrategySummary(Record):
    """One strategy over its seeds: test metrics with CIs, validation means, cost, calibration."""

    kind: str
    strategy: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=list)
    test: dict[str, Interval] = Field(default_factory=dict)
    seed_stats: dict[str, SeedStats] = Field(default_factory=dict)
    val: dict[str, float] = Field(default_factory=dict)
    per_class: dict[str, ClassScores] = Field(default_factory=dict)
    confusion_matrix: list[list[int]] | None = None
    confusion_note: str | None = None
    latency_ms_b1: float | None = None
    latency_ms_b32: float | None = None
    model_bytes: int | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    fit_seconds: float | None = None
    history: list[list[dict[str, Any]]] = Field(default_factory=list)
    calibration: Calibration | None = None
    shipped_seed: int | None = None
    stopped_early: bool = False
    info: list[dict[str, Any]] = Field(default_factory=list)

    def score(self, metric: str) -> Interval | None:
        """The test metric with its CI, None when it was not measured."""
        return self.test.get(metric)


class PairedDiff(Record):
    """A paired difference a − b on the same test rows, with its CI and p-value."""

    metric: str | None = None
    higher_is_better: bool = True
    value_a: float | None = None
    value_b: float | None = None
    diff: float
    ci_low: float
    ci_high: float
    p_value: float | None = None


class Comparison(PairedDiff):
    """Strategy ``a`` against ``b``: the headline metric's paired bootstrap, McNemar, and the same for accuracy."""

    a: str | None = None
    b: str | None = None
    mcnemar_p: float | None = None
    accuracy: PairedDiff | None = None


class GateResult(Record):
    gate: str
    passed: bool
    evidence: str = ""


class Refit(Record):
    """The winner fitted once more on train+val after k-fold selection (or why it was not)."""

    done: bool
    why: str | None = None
    strategy: str | None = None
    seed: int | None = None
    n_train: int | None = None
    test: dict[str, Interval] = Field(default_factory=dict)
    temperature: float | None = None
    vs_training_split: PairedDiff | None = None


class Selection(Record):
    """How the winner was chosen: the rule, the ranking, who decided (data or the measured prior) and why."""

    rule: str = ""
    selection_method: str = "validation split"
    ranking: list[str] = Field(default_factory=list)
    why: str = ""
    decided_by: str | None = None
    prior_test: dict[str, Any] | None = None
    kfold: dict[str, Any] | None = None
    refit: Refit | None = None


class SliceResult(Record):
    slice_column: str
    slice: str
    n: int
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    overall: float | None = None
    diff: float | None = None
    diff_ci_low: float | None = None
    diff_ci_high: float | None = None
    flag_confidence: float | None = None
    flagged: bool = False
    too_small: bool = False


class DataCheckResult(Record):
    name: str
    status: str
    count: int = 0
    detail: str = ""
    action: str = ""
    key: str | None = None


class DataSection(Record):
    fingerprint: str | None = None
    label_names: list[str] = Field(default_factory=list)
    splits: dict[str, int] = Field(default_factory=dict)
    class_counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)
    checks: list[DataCheckResult] = Field(default_factory=list)
    license: str | None = None


class BackboneInfo(Record):
    """The backbone's card: identity, provenance and size."""

    name: str
    modality: str | None = None
    architecture: str | None = None
    source_package: str | None = None
    package_version: str | None = None
    weights_sha256: str | None = None
    license: str | None = None
    commercial_use: bool | None = None
    params: int | None = None
    hidden_size: int | None = None
    num_layers: int | None = None
    max_length: int | None = None
    pretraining_data: str | None = None
    path: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Environment(Record):
    python: str | None = None
    platform: str | None = None
    cpu: str | None = None
    cores: int | None = None
    threads: int | None = None
    packages: dict[str, str | None] = Field(default_factory=dict)


class Failure(Record):
    """A strategy that could not run: its error, and a bug's traceback file."""

    seed: int | None = None
    error: str
    type: str | None = None
    user_error: bool = True
    traceback: str | None = None


class CurvePoint(Record):
    size: str | int | float
    n_train: int
    mean: float
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class LearningCurve(Record):
    metric: str
    sizes: list[str | int | float] = Field(default_factory=list)
    points: dict[str, list[CurvePoint]] = Field(default_factory=dict)
    reading: str | None = None
    size_note: str | None = None
    failed: list[dict[str, Any]] = Field(default_factory=list)


class AblationRow(Record):
    """What one knob adds: the strategy as configured minus the same without the knob (or why it could not run)."""

    strategy: str
    knob: str
    without: str | None = None
    variant: str | None = None
    metric: str | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    accuracy: PairedDiff | None = None
    # a variant that could not run: what ``Failure`` holds
    seed: int | None = None
    error: str | None = None
    type: str | None = None
    user_error: bool | None = None
    traceback: str | None = None


class BakeoffCandidate(Record):
    """One candidate backbone: license verdict, latency, and its score on the bake-off subset."""

    backbone: str
    params: int | None = None
    license: str | None = None
    commercial_use: bool | None = None
    allowed: bool = True
    reason: str | None = None
    logme: float | None = None
    probe_cv_accuracy: float | None = None
    probe_cv_std: float | None = None
    probe_cv_folds: list[float] | None = None
    finetune_val_accuracy: float | None = None
    embed_seconds: float | None = None
    finetune_seconds: float | None = None
    forward_batches: int | None = None
    latency_ms_b1: float | None = None
    latency_ms_b32: float | None = None
    seconds: float | None = None
    score: float | None = None


class Bakeoff(Record):
    """Backbone selection before the study: every candidate and the winner, with the rule and its reading."""

    winner: str
    runner_up: str | None = None
    rule: str | None = None
    reading: str | None = None
    score: str | None = None
    subset: int | None = None
    candidates: list[BakeoffCandidate] = Field(default_factory=list)
    seconds: float | None = None


class DroppedWork(Record):
    """Work the study-wide time budget left out: its kind (extra seed, learning curve, ablation), what, and its
    estimated seconds."""

    kind: str
    what: str
    estimate_s: float | None = None


class StudyBudget(Record):
    """The study-wide time budget (the config's top-level ``time_budget_s``) and what it left out."""

    seconds: float
    dropped: list[DroppedWork] = Field(default_factory=list)
    reading: str = ""


class Timings(Record):
    total_s: float | None = None
    per_strategy_s: dict[str, float] = Field(default_factory=dict)
    budget: StudyBudget | None = None


class Tracking(Record):
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None
    experiment_id: str | None = None
    registered: dict[str, Any] | None = None


class Exit(Record):
    gates_passed: bool = True


class StudyResults(Record):
    """Everything a study found: data, strategies with evidence, the winner and why, gates, and the optional
    sections (learning curve, ablation, bake-off, robustness, costs, explanations, tracking)."""

    schema_version: int = 1
    study: str
    run_id: str
    run_dir: str | None = None
    created: str | None = None
    graftlab_version: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    data: DataSection = Field(default_factory=DataSection)
    backbone: BackboneInfo | None = None
    environment: Environment = Field(default_factory=Environment)
    headline_metric: str = "macro_f1"
    higher_is_better: bool = True
    seeds: list[int] = Field(default_factory=list)
    strategies: dict[str, StrategySummary]
    failed: dict[str, Failure] = Field(default_factory=dict)
    winner: str
    runner_up: str | None = None
    selection: Selection = Field(default_factory=Selection)
    comparisons: list[Comparison] = Field(default_factory=list)
    transfer_gain: dict[str, Comparison | None] = Field(default_factory=dict)
    gates: list[GateResult] = Field(default_factory=list)
    slices: list[SliceResult] = Field(default_factory=list)
    exit: Exit = Field(default_factory=Exit)
    strategy_defaults: dict[str, Any] | None = None
    learning_curve: LearningCurve | None = None
    costs: dict[str, Any] | None = None
    robustness: list[dict[str, Any]] | dict[str, Any] | None = None
    ablation: list[AblationRow] | None = None
    bakeoff: Bakeoff | None = None
    timings: Timings = Field(default_factory=Timings)
    model_dir: str | None = None
    explanations: list[dict[str, Any]] | None = None
    class_tokens: dict[str, Any] | None = None
    explanations_error: str | None = None
    tracking: Tracking | None = None

    # -- the questions every reader asks ---------------------------------------------------------------
    @property
    def gates_passed(self) -> bool:
        return self.exit.gates_passed

    @property
    def champion(self) -> StrategySummary:
        """The winner's summary."""
        return self.strategies[self.winner]

    @property
    def headline(self) -> Interval | None:
        """The winner's test score on the headline metric (the refit's, when the packaged model is the refit)."""
        refit = self.selection.refit
        if refit is not None and refit.done and self.headline_metric in refit.test:
            return refit.test[self.headline_metric]
        return self.champion.score(self.headline_metric)

    @property
    def label_names(self) -> list[str]:
        return self.data.label_names

    def comparison(self, b: str, a: str | None = None) -> Comparison | None:
        """The paired comparison of ``a`` (the winner by default) against ``b``; None when it was not made."""
        a = a or self.winner
        return next((c for c in self.comparisons if c.a == a and c.b == b), None)

    def failures(self) -> Iterator[tuple[str, Failure]]:
        return iter(self.failed.items())

    def small_test_warning(self) -> str | None:
        """Why the test scores are too rough to trust, from the test class counts and the chosen model's headline CIs
        (its trials', and the refit's): a class with fewer than :data:`MIN_TEST_PER_CLASS` examples, a CI wider than
        :data:`MAX_TEST_CI_WIDTH`; None when neither holds."""
        counts = self.data.class_counts.get("test") or {}
        few = sorted(((n, c) for n, c in counts.items() if c < MIN_TEST_PER_CLASS), key=lambda item: item[1])
        scores = [s for s in (self.headline, self.champion.score(self.headline_metric))  # the refit's, the trials'
                  if s is not None and s.ci_low is not None and s.ci_high is not None]
        h = max(scores, key=lambda s: s.ci_high - s.ci_low, default=None)
        width = h.ci_high - h.ci_low if h is not None else 0.0
        reasons = []
        if few:
            listed = ", ".join(f"{n!r} {c}" for n, c in few[:5]) + (f" and {len(few) - 5} more" if len(few) > 5 else "")
            where = "a class" if len(few) == 1 else f"{len(few)} classes"
            reasons.append(f"{sum(counts.values())} rows, fewer than {MIN_TEST_PER_CLASS} in {where} ({listed})")
        if width > MAX_TEST_CI_WIDTH:
            reasons.append(f"the chosen model's test {self.headline_metric} CI [{h.ci_low:.2f}, {h.ci_high:.2f}] is "
                           f"{width:.2f} wide (wider than {MAX_TEST_CI_WIDTH:g})")
        if not reasons:
            return None
        return (f"The test split is too small to trust its scores: {'; '.join(reasons)}. Label more examples, raise "
                "data.split.test, or give a larger test set in data.test_source.")


def as_results(results: StudyResults | Mapping[str, Any]) -> StudyResults:
    """``results`` as a :class:`StudyResults` (a dict, e.g. from an older file, is validated)."""
    if isinstance(results, StudyResults):
        return results
    try:
        return StudyResults.model_validate(dict(results))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ArtifactError(f"results are not a graftlab study's results: {where}: {first['msg']} "
                            f"({err.error_count()} problem(s)).") from None


def save_results(results: StudyResults, path: str | Path) -> Path:
    """Write ``results.json`` (atomically) at the current schema version."""
    results.schema_version = SCHEMA_VERSION
    return save_json(results.to_dict(), path)


def load_results(path: str | Path) -> StudyResults:
    """Read a ``results.json`` (or the run folder holding one), from this release or an earlier one."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    data = load_json(path)
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} does not hold a study's results (a JSON object).")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ArtifactError(f"{path} was written with results schema {version!r}; this graftlab reads up to "
                            f"{SCHEMA_VERSION}: upgrade graftlab to read it.")
    try:
        return as_results(data)
    except ArtifactError as err:
        raise ArtifactError(f"{path}: {err}") from None


def unknown_keys(record: Any, where: str = "results") -> list[str]:
    """Every key, at any depth, that a record holds but does not declare (a study should write none)."""
    if isinstance(record, BaseModel):
        found = [f"{where}.{k}" for k in (record.model_extra or {})]
        for name in type(record).model_fields:
            found += unknown_keys(getattr(record, name), f"{where}.{name}")
        return found
    if isinstance(record, dict):
        return [k for key, v in record.items() for k in unknown_keys(v, f"{where}[{key!r}]")]
    if isinstance(record, list):
        return [k for i, v in enumerate(record) for k in unknown_keys(v, f"{where}[{i}]")]
    return []
