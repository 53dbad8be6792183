"""``graft retrain``: champion vs challenger on fresh labeled traffic, promoted only when significantly better.

1. Trigger: the latest ``graft monitor`` report of the model (or a fresh run) must hold an alert.
2. New data: feedback-labeled requests with logged input (text, or image for an image model), newer than
   what the champion was trained on; at least ``min_new_labels`` after removing duplicates and inputs already
   in the original data (texts compared normalised, images by their pixels).
3. Time-ordered split of the new data: the newest ``holdout_fraction`` is a fresh holdout no model sees,
   the next newest ``val_fraction`` joins validation, the rest joins training.
4. The champion's recorded study protocol is rerun on original + new data; the study registers its
   winner as a new version with the ``challenger`` alias.
5. Champion and challenger are compared on the fresh holdout (paired bootstrap on the headline metric,
   McNemar's test); the challenger is promoted (or handed to a canary) only when the CI of
   ``challenger - champion`` lies above 0 and it passed its gates. Otherwise the champion stays.
6. The decision and its evidence go to ``.graft/retrain/<name>/<timestamp>/decision.{json,md}`` and,
   when there is a challenger, onto its registry version as ``retrain.*`` tags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError

from ..core.artifacts import load_json
from ..core.config import Strict, StudyConfig, format_validation_error
from ..core.errors import ConfigError
from ..core.results import PairedDiff, Record, as_results
from ..core.trust import require_trusted
from ..data.checks import normalise_texts
from ..data.images import DERIVED_COLUMNS, encode_png, image_digest
from ..evaluation import mcnemar, metrics_with_ci, paired_bootstrap
from .protocol import SPLIT_COLUMN, find_protocol, original_frame, relabelled
from .record import (
    RETRAIN_FORMAT,
    ChallengerRun,
    DecisionRecord,
    HoldoutComparison,
    McNemar,
    NewLabels,
    OriginalTest,
    RetrainEvidence,
    SplitPart,
    Trigger,
    TriggerAlert,
    write_record,
)

__all__ = ["LABELS_UNTIL_TAG", "RetrainOutcome", "RetrainPolicy", "retrain", "time_split"]

LABELS_UNTIL_TAG = "retrain.labels_until"


class RetrainPolicy(Strict):
    """When to retrain, how to split the new data, and how the challenger is handed over."""

    min_new_labels: Annotated[int, Field(ge=3)] = 500
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=0.3, description="newest share of the new labeled data kept as the fresh holdout")
    val_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.2, description="next newest share of the new data added to validation")
    min_holdout: Annotated[int, Field(ge=1)] = 20
    canary_percent: Annotated[float, Field(gt=0.0, le=100.0)] | None = Field(
        default=None, description="hand a better challenger to a canary with this share of traffic instead of promoting")
    require_alert: bool = True
    allow_changed_data: bool = False
    window: str = Field(default="all", description="monitor window used when the monitor has to be run")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "retrain options") -> RetrainPolicy:
        try:
            policy = cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, cls, source)) from None
        if policy.holdout_fraction + policy.val_fraction >= 1.0:
            raise ConfigError(f"holdout_fraction + val_fraction must be below 1 so some new data is trained on; got "
                              f"{policy.holdout_fraction} + {policy.val_fraction}.")
        return policy


@dataclass
class RetrainOutcome:
    """``decision`` is ``skipped``, ``keep``, ``promote`` or ``canary``; ``evidence`` is what decision.json holds."""

    decision: str
    reason: str
    record_dir: Path
    evidence: RetrainEvidence = field(default_factory=RetrainEvidence)
    challenger_version: int | None = None
    command: str | None = None

    def record(self) -> DecisionRecord:
        """The decision record, as ``decision.json`` holds it."""
        return DecisionRecord(decision=self.decision, reason=self.reason, record_dir=str(self.record_dir),
                              evidence=self.evidence, challenger_version=self.challenger_version, command=self.command)

    def to_dict(self) -> dict[str, Any]:
        return self.record().to_dict()


class _MonitoredModel(Record):
    version: str | int | None = None


class _MonitorReport(Record):
    """What a retrain reads of a ``monitor.json``: when it was made, about which version, and its alerts."""

    created: str | None = None
    model: _MonitoredModel | None = None
    alerts: list[TriggerAlert] = Field(default_factory=list)

    @property
    def version(self) -> str | int | None:
        return self.model.version if self.model is not None else None


# -- steps ------------------------------------------------------------------------------------------
def _trigger(name: str, champion_version: int, log_db: Path, report: str | Path | None, fresh: bool,
             tracking_uri: str, window: str, monitor_policy: Any) -> Trigger:
    """The monitor report that decides whether to retrain: the one given, else the latest of ``name`` when it
    is about the current champion, else a fresh monitor run."""
    from ..monitoring import latest_report, run_monitor

    found = None
    if report is not None:
        path = Path(report)
        if not path.is_file():
            raise ConfigError(f"The monitor report {path} does not exist. Pass a monitor.json written by graft monitor.")
        found = _MonitorReport.model_validate(load_json(path))
    elif not fresh and (path := latest_report(name)) is not None:
        found = _MonitorReport.model_validate(load_json(path))
        if str(found.version) != str(champion_version):  # about an earlier champion
            found = None
    ran = found is None
    if found is None:
        result = run_monitor(f"{name}@champion", log_db, window=window, policy=monitor_policy, tracking_uri=tracking_uri)
        path, found = result.paths["json"], _MonitorReport.model_validate(result.report)
    return Trigger(report=str(Path(path).resolve()), ran_monitor=ran, created=found.created,
                   monitored_version=found.version, alerted=bool(found.alerts), alerts=found.alerts)


def _new_labels(log_db: Path, since: float, modality: str = "text") -> tuple[pd.DataFrame, NewLabels]:
    """Labeled requests newer than ``since`` with their logged input (column ``_input``: the text, or the decoded
    image): duplicates (same normalised text, same pixels) keep the newest."""
    from ..monitoring import read_log

    rows = read_log(log_db, since=since)
    labeled = rows[rows["true_label"].notna()]
    logged = labeled["input_text"]  # the text, or the image as the service logged it
    has_input = logged.notna() & (logged.astype(str).str.strip() != "")
    with_input, inputs = labeled[has_input], logged[has_input]
    if modality == "image":
        from ..serving.inputs import logged_image

        images = [logged_image(v) for v in inputs]
        keep = np.array([x is not None for x in images], dtype=bool)
        decoded = [x for x in images if x is not None]
        with_input = with_input[keep].assign(_input=pd.Series(decoded, dtype=object, index=with_input.index[keep]))
        keys = np.array([image_digest(x) for x in decoded], dtype=object)
    else:
        with_input = with_input.assign(_input=inputs.astype(str))
        keys = normalise_texts(inputs.astype(str).tolist()).to_numpy()
    deduped = with_input.assign(_key=keys).drop_duplicates("_key", keep="last")
    info = NewLabels(since=since, labeled=len(labeled), without_text=int(logged.isna().sum()),
                     duplicates=int(len(with_input) - len(deduped)))
    if modality == "image":
        info.unreadable_images = int((~keep).sum())
    return deduped.sort_values("ts", kind="stable").reset_index(drop=True), info


def _original_keys(original_rows: pd.DataFrame, cfg: StudyConfig) -> set[str]:
    """Dedup keys of the original data (normalised texts, or image digests) that new labels must not repeat."""
    d = cfg.data
    if d.modality == "image":
        return {image_digest(x) for x in original_rows[d.image or "image"]}
    return set(normalise_texts(original_rows[d.text].astype(str).tolist()))


def time_split(new: pd.DataFrame, holdout_fraction: float, val_fraction: float) -> dict[str, pd.DataFrame]:
    """Oldest rows -> train, the next newest ``val_fraction`` -> val, the newest ``holdout_fraction`` -> holdout."""
    new = new.sort_values("ts", kind="stable").reset_index(drop=True)
    n = len(new)
    n_hold = max(1, round(holdout_fraction * n))
    n_val = round(val_fraction * n)
    cut_val, cut_hold = n - n_hold - n_val, n - n_hold
    return {"train": new.iloc[:cut_val], "val": new.iloc[cut_val:cut_hold], "holdout": new.iloc[cut_hold:]}


def _combine(original: pd.DataFrame, parts: dict[str, pd.DataFrame], cfg: StudyConfig) -> pd.DataFrame:
    """Original rows + new train/val rows, as a table the study reads back (images as PNG bytes)."""
    d = cfg.data
    images = d.modality == "image"
    column = (d.image or "image") if images else d.text
    new = []
    for split in ("train", "val"):
        rows = parts[split]
        frame = pd.DataFrame({column: pd.Series(list(rows["_input"]), dtype=object),
                              d.label: rows["true_label"].astype(str).to_numpy(), SPLIT_COLUMN: split})
        for col in d.slices:
            if not (images and col in DERIVED_COLUMNS):  # brightness columns are recomputed for every row
                frame[col] = "live"
        if d.group:
            frame[d.group] = rows["request_id"].astype(str).to_numpy()
        new.append(frame)
    combined = pd.concat([original, *new], ignore_index=True)
    if images:  # parquet holds files, not arrays: lossless PNG, decoded by the study like any image table
        combined = combined.drop(columns=[c for c in DERIVED_COLUMNS if c in combined.columns])
        combined[column] = [encode_png(x) for x in combined[column]]
    return combined


def _split_part(rows: pd.DataFrame) -> SplitPart:
    ts = rows["ts"]
    return SplitPart(n=len(rows), first_ts=float(ts.min()) if len(rows) else None,
                     last_ts=float(ts.max()) if len(rows) else None)


def _config(cfg: StudyConfig, data_path: Path, name: str, tracking_uri: str) -> StudyConfig:
    """The champion's config on the retrain table, tracked and registered under ``name``."""
    data = cfg.data
    # the champion's split kept copies together; the new rows are deduplicated, and the split is the recorded one
    leakage = "drop" if data.checks.leakage == "group" else data.checks.leakage
    return StudyConfig.from_dict({
        **cfg.to_dict(),
        "data": {**data.model_dump(mode="json"), "source": {"kind": "parquet", "path": str(data_path.resolve())},
                 "test_source": None, "subsample": None, "test_subsample": None,
                 # the champion's split, and the new rows split by time
                 "split": {**data.split.model_dump(mode="json"), "column": SPLIT_COLUMN, "order_by": None},
                 "checks": {**data.checks.model_dump(mode="json"), "leakage": leakage}},
        "tracking": {**cfg.tracking.model_dump(mode="json"), "enabled": True, "register_as": name, "uri": tracking_uri},
    }, source="the retrain config")


def _compare(name: str, champion_version: int, model_dir: Path, holdout: pd.DataFrame, cfg: StudyConfig,
             tracking_uri: str) -> HoldoutComparison:
    from ..packaging import load_model
    from ..tracking.registry import resolve_model

    champion = load_model(resolve_model(f"{name}:{champion_version}", tracking_uri))
    challenger = load_model(model_dir)
    if challenger.label_names != champion.label_names:
        return HoldoutComparison(comparable=False, message=f"the challenger predicts {challenger.label_names} but the "
                                                           f"champion {champion.label_names}")
    index = {n: i for i, n in enumerate(champion.label_names)}
    y = np.array([index[t] for t in holdout["true_label"]], dtype=np.int64)
    inputs = list(holdout["_input"])  # texts, or decoded images
    pa, pb = challenger.predict_proba(inputs), champion.predict_proba(inputs)
    ev = cfg.eval
    kw = {"n_boot": ev.bootstrap, "confidence": ev.confidence, "seed": cfg.seed}
    return HoldoutComparison(
        comparable=True, n=len(y), metric=ev.metric, confidence=ev.confidence,
        paired_bootstrap=PairedDiff.model_validate(paired_bootstrap(y, pa, pb, ev.metric, **kw)),
        mcnemar=McNemar.model_validate(mcnemar(y, pa, pb)),
        challenger=metrics_with_ci(y, pa, ("accuracy", "macro_f1"), **kw),
        champion=metrics_with_ci(y, pb, ("accuracy", "macro_f1"), **kw),
        class_counts={n: int((y == i).sum()) for n, i in index.items()})


def _decide(comparison: HoldoutComparison, gates_passed: bool, policy: RetrainPolicy) -> tuple[str, str]:
    if not comparison.comparable:
        return "keep", f"the models cannot be compared: {comparison.message}"
    pb, m, n = comparison.paired_bootstrap, comparison.metric, comparison.n
    ci = f"{pb.diff:+.3f} [{pb.ci_low:+.3f}, {pb.ci_high:+.3f}]"
    where = f"challenger - champion {m} = {ci} ({comparison.confidence:.0%} paired bootstrap CI, p = " \
            f"{pb.p_value:.3g}; McNemar p = {comparison.mcnemar.p_value:.3g}) on {n} fresh holdout requests"
    if not np.isfinite(pb.ci_low):
        return "keep", f"{m} is undefined on the fresh holdout ({where}); the champion stays"
    if pb.ci_low <= 0:
        return "keep", f"not significantly better: {where}; promotion needs the CI's lower bound above 0"
    if not gates_passed:
        return "keep", f"significantly better ({where}) but the challenger failed its study gates"
    if policy.canary_percent is not None:
        return "canary", f"significantly better: {where}; handed to a {policy.canary_percent:g}% canary"
    return "promote", f"significantly better: {where}"


def _tag(name: str, version: int, outcome: RetrainOutcome, labels_until: float | None, tracking_uri: str) -> None:
    from ..tracking.store import client

    tags = {"retrain.decision": outcome.decision, "retrain.reason": outcome.reason[:4000],
            "retrain.record": str(outcome.record_dir.resolve()),
            "retrain.champion_version": str(outcome.evidence.champion_version)}
    comparison = outcome.evidence.comparison
    pb = comparison.paired_bootstrap if comparison is not None else None
    if pb is not None:
        for key, value in (("metric", pb.metric), ("diff", pb.diff), ("ci_low", pb.ci_low), ("ci_high", pb.ci_high),
                           ("p_value", pb.p_value)):
            if value is not None:
                tags[f"retrain.{key}"] = str(value)
    if comparison is not None and comparison.mcnemar is not None:
        tags["retrain.mcnemar_p"] = str(comparison.mcnemar.p_value)
    if comparison is not None and comparison.n is not None:
        tags["retrain.holdout_n"] = str(comparison.n)
    if labels_until is not None:
        tags[LABELS_UNTIL_TAG] = repr(labels_until)
    if outcome.command:
        tags["retrain.command"] = outcome.command
    c = client(tracking_uri)
    for k, v in tags.items():
        c.set_model_version_tag(name, str(version), k, v)


# -- the run ----------------------------------------------------------------------------------------
def retrain(
    name: str,
    *,
    log_db: str | Path = ".graft/predictions.db",
    policy: RetrainPolicy | None = None,
    tracking_uri: str | None = None,
    monitor_report: str | Path | None = None,
    fresh_monitor: bool = False,
    monitor_policy: Any = None,
    original: Any = None,
    out_root: str | Path = ".graft/retrain",
    progress: bool = False,
    trust_code: bool = False,
) -> RetrainOutcome:
    """Retrain registered model ``name`` on its original data plus new labeled traffic, and decide.

    Args:
        name: the registered model (its ``champion`` alias is the incumbent).
        log_db: the prediction log with feedback (served with ``--log-inputs``).
        policy: thresholds and the split of the new data (default :class:`RetrainPolicy`).
        monitor_report: the ``monitor.json`` that triggers the retrain (default: the latest one of ``name``).
        fresh_monitor: run the monitor now instead of reading the latest report.
        monitor_policy: a :class:`graftlab.monitoring.MonitorPolicy` for that run.
        original: the champion's original data (DataFrame or file) when its config has no data source.
        out_root: where decision records go (``<out_root>/<name>/<UTC timestamp>/``).
        trust_code: run the Python function of a data source of kind ``python`` in the champion's stored config
            (refused without it, before anything is read or recorded: that code came with the stored config).

    Returns:
        A :class:`RetrainOutcome`; every outcome, skipped ones included, is recorded on disk.
    """
    from ..tracking.registry import RegisteredModel, Registration, promote, show
    from ..tracking.store import resolve_tracking_uri

    policy = policy or RetrainPolicy()
    uri = resolve_tracking_uri(tracking_uri)
    log_db = Path(log_db)
    champion = RegisteredModel.from_dict(show(name, uri)).champion
    if champion is None:
        raise ConfigError(f"Model {name!r} has no champion to retrain against. Promote one first: "
                          f"graft registry promote {name} VERSION.")
    protocol = find_protocol(champion, uri)
    require_trusted(protocol.config, trust_code, what=f"the study config of {name!r} version {champion.version}",
                    command=f"graft retrain {name} --trust-code")
    record_dir = Path(out_root) / name / datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    record_dir.mkdir(parents=True, exist_ok=True)
    evidence = RetrainEvidence(format=RETRAIN_FORMAT, name=name, champion_version=champion.version,
                               created=datetime.now(UTC).isoformat(timespec="seconds"), tracking_uri=uri,
                               log_db=str(log_db), policy=policy.model_dump())

    def finish(decision: str, reason: str, version: int | None = None, command: str | None = None,
               labels_until: float | None = None) -> RetrainOutcome:
        evidence.decision, evidence.reason = decision, reason
        evidence.challenger_version, evidence.command = version, command
        outcome = RetrainOutcome(decision, reason, record_dir, evidence, version, command)
        write_record(outcome.record(), record_dir)
        if version is not None:
            _tag(name, version, outcome, labels_until, uri)
        return outcome

    evidence.trigger = trigger = _trigger(name, champion.version, log_db, monitor_report, fresh_monitor, uri,
                                          policy.window, monitor_policy)
    if policy.require_alert and not trigger.alerted:
        return finish("skipped", f"no alert in the monitor report {trigger.report}; nothing to retrain for")

    since = float(champion.tags.get(LABELS_UNTIL_TAG, 0.0))
    new, labels = _new_labels(log_db, since, protocol.config.data.modality)
    new = relabelled(new, "true_label", protocol.split.relabel)  # as the champion's classes were made
    original_rows, data_info = original_frame(protocol, original, policy.allow_changed_data)
    known = _original_keys(original_rows, protocol.config)
    fresh = new[~new["_key"].isin(known)]
    labels.in_original_data, labels.usable = int(len(new) - len(fresh)), len(fresh)
    evidence.new_labels, evidence.original_data = labels, data_info
    evidence.protocol = {"found_in": protocol.found_in, "run_dir": str(protocol.run_dir),
                         "mlflow_run_id": protocol.mlflow_run_id, "study": protocol.config.name}
    if len(fresh) < policy.min_new_labels:
        why = (f"{len(fresh)} usable new labels (labeled, with a logged input, not already in the training data); "
               f"min_new_labels={policy.min_new_labels}")
        if labels.without_text:
            why += (f". {labels.without_text} labeled requests have no logged input: serve with "
                    "`graft serve --log-inputs`")
        return finish("skipped", why)

    parts = time_split(fresh, policy.holdout_fraction, policy.val_fraction)
    holdout = parts["holdout"]
    if len(holdout) < policy.min_holdout:
        return finish("skipped", f"the fresh holdout would hold {len(holdout)} requests; min_holdout="
                                 f"{policy.min_holdout}. Collect more labels or raise holdout_fraction.")
    evidence.split = {k: _split_part(v) for k, v in parts.items()}
    labels_until = float(pd.concat([parts["train"], parts["val"]])["ts"].max())

    combined = _combine(original_rows, parts, protocol.config)
    data_path = record_dir / "training_data.parquet"
    combined.to_parquet(data_path, index=False)
    cfg = _config(protocol.config, data_path, name, uri)
    from ..study import Study

    result = Study(cfg, progress=progress).run()
    results = as_results(result.results)
    if results.tracking is None or not results.tracking.registered:
        return finish("keep", f"the retrain study {result.run_dir} registered no model version; the champion stays")
    version = Registration.from_dict(results.tracking.registered).version
    metric = cfg.eval.metric
    evidence.challenger = ChallengerRun(run_dir=str(Path(result.run_dir).resolve()), version=version,
                                        winner=result.winner, gates_passed=result.gates_passed,
                                        test=results.strategies[result.winner].test)
    evidence.original_test = OriginalTest(  # the champion's own test split, which the retrain study reuses
        metric=metric, champion=champion.metrics.get(metric), challenger=evidence.challenger.test.get(metric))
    comparison = _compare(name, champion.version, result.model_dir, holdout, cfg, uri)
    evidence.comparison = comparison
    decision, reason = _decide(comparison, result.gates_passed, policy)
    command = None
    if decision == "promote":
        evidence.promotion = promote(name, version, reason=f"graft retrain: {reason}", tracking_uri=uri)
    elif decision == "canary":
        command = (f"graft serve {name}@champion --canary {name}:{version} --canary-percent {policy.canary_percent:g} "
                   f"--log-db {log_db} --log-inputs")
    return finish(decision, reason, version, command, labels_until)
