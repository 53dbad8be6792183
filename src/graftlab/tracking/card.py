"""The model card (markdown + JSON), built only from what a study recorded in ``results.json``.

Nothing in a card is written by hand: intended use and labels come from the config and the data,
license lineage from the backbone card and ``data.license``, every number from the evidence. A key a
study did not record is shown as "not recorded", never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_serializer, field_validator

from ..core.artifacts import (
    MANIFEST,
    load_json,
    save_json,
    strict_json,
    verify_manifest,
    write_manifest,
)
from ..core.results import BackboneInfo, GateResult, StrategySummary, StudyResults, as_results

__all__ = [
    "CARD_FORMAT",
    "MODEL_CARD_JSON",
    "MODEL_CARD_MD",
    "ModelCard",
    "attach_model_card",
    "build_model_card",
    "card_markdown",
    "write_model_card",
]

CARD_FORMAT = "graftlab-model-card/1"
MODEL_CARD_MD = "model_card.md"
MODEL_CARD_JSON = "model_card.json"
NOT_RECORDED = "not recorded"
_TOP = 3
#: the backbone card's keys the model card repeats (those the study recorded)
_BACKBONE_KEYS = {"name", "architecture", "source_package", "package_version", "weights_sha256", "license",
                  "commercial_use", "params", "pretraining_data", "path"}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# -- the card's sections: their fields in the order model_card.json lists them ----------------------
class _Section(BaseModel):
    # from_attributes: a section is built from a results record by taking the fields it shares with it
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)


class Score(_Section):
    """A test metric with its CI."""

    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class Diff(_Section):
    """The winner minus a baseline on the headline metric, with its CI and p-value."""

    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None


class Gain(_Section):
    """A transfer gain: strategy ``a`` minus strategy ``b`` on ``metric``."""

    a: str | None = None
    b: str | None = None
    metric: str | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None


class ModelSection(_Section):
    """The shipped model: which strategy, its parameters and size, and why it was chosen."""

    name: str | None = None
    study: str | None = None
    run_id: str | None = None
    created: str | None = None
    graftlab_version: str | None = None
    strategy: str | None = None
    kind: str | None = None
    params: dict[str, Any] | None = None
    shipped_seed: int | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    selection: str | None = None


class IntendedUse(_Section):
    task: str
    labels: list[str] = Field(default_factory=list)
    trained_on: list[str | None] = Field(default_factory=list)
    scope: str


class Lineage(_Section):
    """The backbone's and the dataset's licenses, and which of them bind the shipped weights."""

    backbone: BackboneInfo | None = None
    shipped_model_uses_backbone_weights: bool
    backbone_license: str | None = None
    dataset_license: str
    note: str

    # only the keys the study recorded: a backbone field it left out is not shown as null
    @field_serializer("backbone")
    def _recorded_keys(self, backbone: BackboneInfo | None) -> dict[str, Any] | None:
        return backbone.to_dict() if backbone is not None else None


class Source(_Section):
    """Where rows came from: the file's name, the id of its first row and its row count."""

    name: str | None = None
    first_id: int | None = None
    rows: int | None = None


class Check(_Section):
    """A data check that did not come out ok."""

    name: str
    status: str
    count: int | None = None
    detail: str | None = None
    action: str | None = None


class DataProvenance(_Section):
    fingerprint: str | None = None
    sources: dict[str, Source] | None = None
    splits: dict[str, int] | None = None
    class_counts: dict[str, dict[str, int]] | None = None
    checks_not_ok: list[Check] = Field(default_factory=list)
    checks_run: int = 0


class Baseline(_Section):
    """A baseline's headline score and the winner's paired difference against it."""

    score: Score | None = None
    winner_minus_baseline: Diff | None = None


class CalibrationSummary(_Section):
    temperature: float | None = None
    ece_before: float | None = None
    ece_after: float | None = None


class Slice(_Section):
    slice_column: str | None = None
    slice: str | None = None
    n: int | None = None
    metric: str | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    diff: float | None = None
    flagged: bool | None = None
    too_small: bool | None = None


class Gates(_Section):
    passed: bool | None = None
    entries: list[GateResult] = Field(default_factory=list)


class Confusion(_Section):
    """How often test rows of class ``true`` were predicted as ``predicted``."""

    true: str
    predicted: str
    count: int
    share_of_true: float | None = None


class WeakClass(_Section):
    class_: str = Field(alias="class")
    f1: float | None = None


class FailureModes(_Section):
    flagged_slices: list[Slice] = Field(default_factory=list)
    most_confused: list[Confusion] = Field(default_factory=list)
    weakest_classes: list[WeakClass] = Field(default_factory=list)
    robustness: list[dict[str, Any]] | None = None


class Reproduce(_Section):
    command: str
    run_ref: str
    data_fingerprint: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class ModelCard(_Section):
    """The card: its JSON is ``model_card.json``, its markdown ``model_card.md``."""

    format: str = CARD_FORMAT
    model: ModelSection
    intended_use: IntendedUse
    license_lineage: Lineage
    data: DataProvenance
    headline_metric: str
    confidence: float | None = None
    seeds: list[int] | None = None
    metrics: dict[str, Score] = Field(default_factory=dict)
    baselines: dict[str, Baseline] = Field(default_factory=dict)
    transfer_gain: dict[str, Gain | None] = Field(default_factory=dict)
    calibration: CalibrationSummary = Field(default_factory=CalibrationSummary)
    slices: list[Slice] = Field(default_factory=list)
    worst_slices: list[Slice] = Field(default_factory=list)
    gates: Gates = Field(default_factory=Gates)
    known_failure_modes: FailureModes = Field(default_factory=FailureModes)
    reproduce: Reproduce

    # In model_card.json a baseline's score is keyed by the headline metric's name.
    @field_validator("baselines", mode="before")
    @classmethod
    def _baselines_from_json(cls, baselines: Any, info: ValidationInfo) -> Any:
        metric = info.data.get("headline_metric")
        return {name: {"score": b.get(metric), "winner_minus_baseline": b.get("winner_minus_baseline")}
                if isinstance(b, Mapping) else b for name, b in baselines.items()}

    @field_serializer("baselines")
    def _baselines_to_json(self, baselines: dict[str, Baseline]) -> dict[str, Any]:
        return {name: {self.headline_metric: b.score, "winner_minus_baseline": b.winner_minus_baseline}
                for name, b in baselines.items()}

    def to_dict(self) -> dict[str, Any]:
        """The content of ``model_card.json`` (NaN kept: :func:`build_model_card` makes it strict JSON)."""
        return self.model_dump(by_alias=True)


# -- building the card ------------------------------------------------------------------------------
def _sources(results: StudyResults) -> dict[str, Source] | None:
    sources = results.data.summary.get("sources")
    return {key: Source.model_validate(s) for key, s in sources.items()} if sources is not None else None


def _model(results: StudyResults, entry: StrategySummary) -> ModelSection:
    tracking = results.config.get("tracking") or {}
    return ModelSection(
        name=tracking.get("register_as") or results.study, study=results.study, run_id=results.run_id,
        created=results.created, graftlab_version=results.graftlab_version, strategy=results.winner,
        kind=entry.kind, params=entry.params, shipped_seed=entry.shipped_seed,
        trainable_params=entry.trainable_params, total_params=entry.total_params, selection=results.selection.why,
    )


def _intended_use(results: StudyResults, sources: dict[str, Source] | None) -> IntendedUse:
    columns = results.config.get("data") or {}
    labels = [str(x) for x in results.label_names]
    return IntendedUse(
        task=f"{len(labels)}-class classification of the '{columns.get('text', 'text')}' input into "
             f"'{columns.get('label', 'label')}'",
        labels=labels,
        trained_on=[s.name for s in (sources or {}).values()],
        scope="evaluated only on held-out rows of the data above (same fingerprint); performance on other "
              "data is unknown until measured (see graft monitor)",
    )


def _lineage(results: StudyResults, entry: StrategySummary) -> Lineage:
    bb = results.backbone
    uses_backbone = entry.kind == "transfer"
    data_license = results.data.license or (results.config.get("data") or {}).get("license")
    return Lineage(
        backbone=(BackboneInfo.model_validate(bb.model_dump(include=_BACKBONE_KEYS, exclude_unset=True))
                  if bb is not None else None),
        shipped_model_uses_backbone_weights=uses_backbone,
        backbone_license=(bb.license or NOT_RECORDED) if bb is not None else None,
        dataset_license=data_license or "not given in the config (data.license)",
        note=("the shipped weights derive from the backbone and the dataset: both licenses apply"
              if uses_backbone else "the shipped model does not contain pretrained backbone weights; "
              "the dataset license applies"),
    )


def _data(results: StudyResults, sources: dict[str, Source] | None) -> DataProvenance:
    data = results.data
    return DataProvenance(
        fingerprint=data.fingerprint, sources=sources, splits=data.splits, class_counts=data.class_counts,
        checks_not_ok=[Check.model_validate(c) for c in data.checks if c.status != "ok"], checks_run=len(data.checks),
    )


def _baselines(results: StudyResults) -> dict[str, Baseline]:
    return {name: Baseline(score=entry.score(results.headline_metric),
                           winner_minus_baseline=results.comparison(name))
            for name, entry in results.strategies.items() if entry.kind == "baseline" and name != results.winner}


def _worst(slices: list[Slice]) -> list[Slice]:
    measured = [s for s in slices if _finite(s.value) and not s.too_small]
    return sorted(measured, key=lambda s: s.value)[:_TOP]


def _confused(entry: StrategySummary, labels: list[str]) -> list[Confusion]:
    cm = entry.confusion_matrix or []
    if not cm or len(labels) != len(cm):
        return []
    pairs = [Confusion(true=labels[i], predicted=labels[j], count=int(c), share_of_true=c / max(sum(row), 1))
             for i, row in enumerate(cm) for j, c in enumerate(row) if i != j and _finite(c) and c > 0]
    return sorted(pairs, key=lambda p: -p.count)[:_TOP]


def _failure_modes(results: StudyResults, entry: StrategySummary, slices: list[Slice]) -> FailureModes:
    weakest = sorted(((c, v.f1) for c, v in entry.per_class.items() if _finite(v.f1)), key=lambda cv: cv[1])
    robustness = results.robustness if isinstance(results.robustness, list) else None
    return FailureModes(
        flagged_slices=[s for s in slices if s.flagged],
        most_confused=_confused(entry, [str(x) for x in results.label_names]),
        weakest_classes=[WeakClass(class_=c, f1=f) for c, f in weakest[:_TOP]],
        robustness=robustness or None,
    )


def build_model_card(results: StudyResults | Mapping[str, Any], reproduce_ref: str | None = None) -> dict[str, Any]:
    """The card as a JSON-ready dict, computed from a study's ``results``.

    Args:
        results: a study's results (or the content of its ``results.json``).
        reproduce_ref: the run reference for ``graft reproduce`` (the MLflow run id); default the
            study's run id.
    """
    results = as_results(results)
    entry = results.champion
    sources = _sources(results)
    slices = [Slice.model_validate(s) for s in results.slices]
    ref = reproduce_ref or results.run_id
    card = ModelCard(
        model=_model(results, entry),
        intended_use=_intended_use(results, sources),
        license_lineage=_lineage(results, entry),
        data=_data(results, sources),
        headline_metric=results.headline_metric,
        confidence=(results.config.get("eval") or {}).get("confidence"),
        seeds=entry.seeds,
        metrics=entry.test,
        baselines=_baselines(results),
        transfer_gain=results.transfer_gain,
        calibration=entry.calibration or CalibrationSummary(),
        slices=slices,
        worst_slices=_worst(slices),
        gates=Gates(passed=results.gates_passed, entries=results.gates),
        known_failure_modes=_failure_modes(results, entry, slices),
        reproduce=Reproduce(command=f"graft reproduce {ref}", run_ref=ref, data_fingerprint=results.data.fingerprint,
                            config=results.config),
    )
    return strict_json(card)


# -- markdown ---------------------------------------------------------------------------------------
def _num(x: Any) -> str:
    if not _finite(x):
        return "—"
    return f"{x:.3f}" if abs(x) < 1000 else f"{x:,.0f}"


def _ci(m: Score | Slice | None) -> str:
    if m is None:
        return "—"
    if _finite(m.ci_low) and _finite(m.ci_high):
        return f"{_num(m.value)} [{_num(m.ci_low)}, {_num(m.ci_high)}]"
    return _num(m.value)


def _diff(c: Diff | Gain | None) -> str:
    if c is None or not _finite(c.diff):
        return "—"
    p = f", p = {c.p_value:.3g}" if _finite(c.p_value) else ""
    return f"{c.diff:+.3f} [{_num(c.ci_low)}, {_num(c.ci_high)}]{p}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(x) for x in r) + " |" for r in rows), ""]


def _md_head(card: ModelCard) -> list[str]:
    m, use, lin = card.model, card.intended_use, card.license_lineage
    bb = lin.backbone
    lines = [f"# Model card: {m.name}", "",
             (f"Generated by graftlab {m.graftlab_version} from the evidence of study `{m.study}`, "
              f"run `{m.run_id}` ({m.created}). Every number below was measured, not written by hand."),
             "",
             "## Intended use", "",
             f"- Task: {use.task}", f"- Labels: {', '.join(use.labels) or NOT_RECORDED}",
             f"- Trained on: {', '.join(map(str, use.trained_on)) or NOT_RECORDED}",
             f"- Scope: {use.scope}", "",
             "## Model", "",
             (f"- Strategy: **{m.strategy}** ({m.kind}), parameters {m.params or {}}, "
              f"shipped seed {m.shipped_seed}"),
             f"- Trainable / total parameters: {m.trainable_params} / {m.total_params}",
             f"- Why this one: {m.selection or NOT_RECORDED}", "",
             "## Backbone and license lineage", ""]
    if bb is not None:
        lines += [f"- Backbone: {bb.name} ({bb.architecture}), {bb.params} parameters, "
                  f"source package {bb.source_package or NOT_RECORDED} {bb.package_version or ''}".rstrip(),
                  f"- Backbone weights sha256: `{bb.weights_sha256 or NOT_RECORDED}`",
                  f"- Pretraining data: {bb.pretraining_data or NOT_RECORDED}"]
    lines += [f"- Backbone license: {lin.backbone_license or 'no backbone'}",
              f"- Dataset license: {lin.dataset_license}", f"- Lineage: {lin.note}", ""]
    return lines


def _md_data(card: ModelCard) -> list[str]:
    d = card.data
    lines = ["## Data provenance", "", f"- Fingerprint (sha256): `{d.fingerprint}`"]
    for key, src in (d.sources or {}).items():
        lines.append(f"- {key}: {src.name} ({src.rows} rows, ids from {src.first_id})")
    counts = d.class_counts or {}
    for split, n in (d.splits or {}).items():
        cc = ", ".join(f"{k}: {v}" for k, v in counts.get(split, {}).items())
        lines.append(f"- {split}: {n} rows ({cc})")
    issues = d.checks_not_ok
    lines.append(f"- Data checks: {d.checks_run} run; "
                 + ("all ok" if not issues else "; ".join(f"{c.name} {c.status}: {c.detail}" for c in issues)))
    return [*lines, ""]


def _md_evidence(card: ModelCard) -> list[str]:
    conf = card.confidence
    level = f"{conf:.0%}" if _finite(conf) else "bootstrap"
    lines = [f"## Test metrics ({level} CI, mean over seeds {card.seeds})", ""]
    lines += _table(["metric", "value [CI]"], [[k, _ci(v)] for k, v in card.metrics.items()])
    lines += ["## Baselines and transfer gain", ""]
    if card.baselines:
        lines += _table(["baseline", f"{card.headline_metric} [CI]", "winner − baseline [CI]"],
                        [[n, _ci(b.score), _diff(b.winner_minus_baseline)] for n, b in card.baselines.items()])
    else:
        lines += ["No baseline other than the winner was run.", ""]
    for key, g in card.transfer_gain.items():
        lines.append(f"- Transfer gain {key.replace('_', ' ')}: " + (f"{g.a} − {g.b} on {g.metric} = {_diff(g)}"
                     if g is not None else "not measured (strategy not run)"))
    cal = card.calibration
    lines += ["", "## Calibration", "",
              (f"- Temperature {_num(cal.temperature)} (fitted on validation); ECE on test "
               f"{_num(cal.ece_before)} before, {_num(cal.ece_after)} after"), ""]
    return lines


def _slice_value(s: Slice) -> str:
    """The slice's value without its column repeated: the automatic class slices are stored as "class=great"."""
    return str(s.slice).removeprefix(f"{s.slice_column}=")


def _slice_label(s: Slice) -> str:
    return f"{s.slice_column}: {_slice_value(s)}"


def _md_slices(card: ModelCard) -> list[str]:
    lines = ["## Slices", ""]
    rows = [[s.slice_column, _slice_value(s), s.n, _ci(s), _num(s.diff),
             "yes" if s.flagged else ("too small" if s.too_small else "")] for s in card.slices]
    metric = next((s.metric for s in card.slices if s.metric), "metric")
    lines += (_table(["column", "slice", "n", f"{metric} [CI]", "vs overall", "flagged"], rows) if rows
              else ["No slices measured.", ""])
    if card.worst_slices:
        lines += ["Worst slices: " + "; ".join(f"{_slice_label(s)} {_ci(s)} (n={s.n})" for s in card.worst_slices), ""]
    g = card.gates
    verdict = {True: "PASS", False: "FAIL"}.get(g.passed, NOT_RECORDED)
    if not g.entries and g.passed is not False:  # nothing was gated: a green PASS would claim a check that never ran
        verdict = "No gates declared"
    lines += [f"## Gates: {verdict}", ""]
    lines += [f"- {'PASS' if e.passed else 'FAIL'} `{e.gate}`: {e.evidence}" for e in g.entries]
    if not g.entries:
        lines.append("- no gates were declared in the config")
    return [*lines, ""]


def _md_failures(card: ModelCard) -> list[str]:
    f = card.known_failure_modes
    lines = ["## Known failure modes", ""]
    lines.append("- Flagged slices: " + ("; ".join(f"{_slice_label(s)} {_ci(s)} ({_num(s.diff)} vs overall)"
                                                  for s in f.flagged_slices) or "none"))
    lines.append("- Most confused: " + ("; ".join(f"{p.true} → {p.predicted}: {p.count} "
                                                 f"({p.share_of_true:.0%} of {p.true})" for p in f.most_confused)
                                       or "no confusions on the test split"))
    lines.append("- Weakest classes (F1): " + (", ".join(f"{c.class_} {_num(c.f1)}" for c in f.weakest_classes)
                                              or NOT_RECORDED))
    for r in f.robustness or []:
        lines.append(f"- Robustness: {r}")
    return [*lines, ""]


def _md_reproduce(card: ModelCard) -> list[str]:
    r = card.reproduce
    return ["## How to reproduce", "", "```", r.command, "```", "",
            f"The data must have fingerprint `{r.data_fingerprint}`. The run's config:", "",
            "```yaml", yaml.safe_dump(r.config, sort_keys=False).rstrip(), "```", ""]


def card_markdown(card: ModelCard | Mapping[str, Any]) -> str:
    """Render a card built by :func:`build_model_card` (or read back from ``model_card.json``) as markdown."""
    card = card if isinstance(card, ModelCard) else ModelCard.model_validate(card)
    parts = (_md_head, _md_data, _md_evidence, _md_slices, _md_failures, _md_reproduce)
    return "\n".join(line for part in parts for line in part(card))


# -- writing ----------------------------------------------------------------------------------------
def write_model_card(results: StudyResults | Mapping[str, Any], out_dir: Path,
                     reproduce_ref: str | None = None) -> tuple[Path, Path]:
    """Write ``model_card.md`` and ``model_card.json`` into ``out_dir``.

    Returns:
        (markdown path, JSON path).
    """
    out_dir = Path(out_dir)
    card = build_model_card(results, reproduce_ref)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / MODEL_CARD_MD
    md.write_text(card_markdown(card))
    return md, save_json(card, out_dir / MODEL_CARD_JSON)


def attach_model_card(results: StudyResults | Mapping[str, Any], run_dir: Path,
                      reproduce_ref: str | None = None) -> list[Path]:
    """Write the card into the run folder and into its packaged model (whose manifest is then rewritten).

    The model's manifest is verified first, so a tampered file is never blessed by the new manifest.

    Returns:
        The paths written.
    """
    results = as_results(results)
    run_dir = Path(run_dir)
    written = list(write_model_card(results, run_dir, reproduce_ref))
    model_dir = run_dir / "model"
    if (model_dir / MANIFEST).is_file():
        verify_manifest(model_dir)
        extra = {k: v for k, v in load_json(model_dir / MANIFEST).items() if k not in ("format", "files")}
        written += write_model_card(results, model_dir, reproduce_ref)
        write_manifest(model_dir, extra)
    return written
