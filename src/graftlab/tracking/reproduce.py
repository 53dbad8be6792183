"""``graft reproduce RUN_ID``: re-run a recorded study from its logged config and split, after checking
that the data still has the recorded fingerprint, and compare every strategy's test metrics.

Running a study is the orchestration layer's job, which sits above tracking; so :func:`reproduce` takes
the study runner as an argument (the CLI passes ``Study(cfg).run(prepared=...)``)::

    from graftlab.study import Study
    report = reproduce(run_id, lambda cfg, prepared: Study(cfg, progress=False).run(prepared=prepared).results)
    report.matches
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..core.artifacts import load_json
from ..core.config import StudyConfig
from ..core.errors import DataError, GraftError
from ..core.trust import require_trusted
from .store import TrackingError, client, graft_home, resolve_tracking_uri

if TYPE_CHECKING:
    from ..data.prepare import PreparedData

__all__ = ["RecordedRun", "ReproduceReport", "Runner", "compare_results", "fetch_recorded", "find_run", "reproduce"]

Runner = Callable[[StudyConfig, "PreparedData"], Mapping[str, Any]]
_FIELDS = ("value", "ci_low", "ci_high")


@dataclass
class RecordedRun:
    """What a logged study run recorded, downloaded from MLflow."""

    run_id: str
    config: StudyConfig
    split_path: Path
    results: dict[str, Any]
    fingerprint: str
    tags: dict[str, str]


@dataclass
class ReproduceReport:
    """The comparison of a reproduced run with the recorded one (one row per strategy × metric × field)."""

    run_id: str
    fingerprint: str
    tolerance: float
    rows: list[dict[str, Any]]
    recorded_winner: str | None
    reproduced_winner: str | None
    reproduced_run_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return bool(self.rows) and all(r["match"] for r in self.rows)

    @property
    def max_diff(self) -> float:
        diffs = [r["diff"] for r in self.rows if r["diff"] is not None and math.isfinite(r["diff"])]
        return max(diffs, default=0.0)

    def by_strategy(self) -> dict[str, dict[str, Any]]:
        """strategy -> {"compared", "matched", "max_diff"}."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.rows:
            s = out.setdefault(r["strategy"], {"compared": 0, "matched": 0, "max_diff": 0.0})
            s["compared"] += 1
            s["matched"] += int(r["match"])
            if r["diff"] is not None and math.isfinite(r["diff"]):
                s["max_diff"] = max(s["max_diff"], r["diff"])
            elif not r["match"]:
                s["max_diff"] = math.inf
        return out


def find_run(ref: str, tracking_uri: str | None = None) -> Any:
    """The MLflow run with id ``ref``, or the one whose graftlab run id (folder name) is ``ref``."""
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri)
    c = client(uri, must_exist=True)
    try:
        return c.get_run(ref)
    except MlflowException:
        pass
    exp_ids = [e.experiment_id for e in c.search_experiments(view_type=ViewType.ALL)]
    quoted = ref.replace("'", "\\'")
    runs = c.search_runs(exp_ids, f"tags.`graft.run_id` = '{quoted}'", run_view_type=ViewType.ALL) if exp_ids else []
    if not runs:
        raise TrackingError(f"No MLflow run with id or graftlab run id {ref!r} in the store at {uri}. "
                            "Pass the MLflow run id shown by the study (also in the run folder's tracking.json).")
    return runs[0]


def fetch_recorded(ref: str, dst: Path, tracking_uri: str | None = None) -> RecordedRun:
    """Download the run's config.yaml, split.json and results.json into ``dst``."""
    from mlflow.exceptions import MlflowException

    run = find_run(ref, tracking_uri)
    c = client(tracking_uri)
    dst.mkdir(parents=True, exist_ok=True)
    got = {}
    for name in ("config.yaml", "split.json", "results.json"):
        try:
            got[name] = Path(c.download_artifacts(run.info.run_id, name, str(dst)))
        except (MlflowException, OSError) as e:
            raise TrackingError(f"Run {run.info.run_id} has no logged {name} ({e}); it was not logged by "
                                "graftlab's log_study, so it cannot be reproduced.") from None
    cfg = StudyConfig.from_dict(yaml.safe_load(got["config.yaml"].read_text()), source=f"run {run.info.run_id} config.yaml")
    results = load_json(got["results.json"])
    tags = dict(run.data.tags)
    fp = tags.get("data_fingerprint") or (results.get("data") or {}).get("fingerprint")
    return RecordedRun(run.info.run_id, cfg, got["split.json"], results, str(fp), tags)


def _same(a: Any, b: Any, tolerance: float) -> tuple[bool, float | None]:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b, None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b), None
    diff = abs(float(a) - float(b))
    if tolerance == 0:  # equal up to float rounding (an average of identical values may differ in its last bit)
        return math.isclose(a, b, rel_tol=1e-15, abs_tol=1e-15), diff
    return diff <= tolerance, diff


def compare_results(recorded: Mapping[str, Any], reproduced: Mapping[str, Any], tolerance: float = 0.0) -> list[dict[str, Any]]:
    """Every recorded strategy's test metric (value and CI bounds) against the reproduced one.

    Args:
        tolerance: the largest absolute difference that still matches; 0 means equal up to float rounding (1e-15).
    """
    if tolerance < 0 or math.isnan(tolerance):
        raise GraftError(f"The 'tolerance' parameter must be a number >= 0. Got {tolerance!r} instead.")
    rows = []
    new = reproduced.get("strategies") or {}
    for name, entry in (recorded.get("strategies") or {}).items():
        for metric, values in (entry.get("test") or {}).items():
            other = ((new.get(name) or {}).get("test") or {}).get(metric) or {}
            for f in _FIELDS:
                if f not in values:
                    continue
                a, b = values.get(f), other.get(f)
                ok, diff = _same(a, b, tolerance) if b is not None else (False, None)
                rows.append({"strategy": name, "metric": metric, "field": f, "recorded": a, "reproduced": b,
                             "diff": diff, "match": ok})
    return rows


def _check_fingerprint(rec: RecordedRun, frame: Any, test_frame: Any) -> None:
    from ..data.fingerprint import fingerprint
    from ..data.prepare import load_data

    cfg = rec.config
    if cfg.data.source is None and frame is None:
        raise DataError(
            f"Run {rec.run_id} was made from a DataFrame passed in Python (its config has no data.source), so the "
            "data cannot be reloaded from the config. Reproduce it in Python with the same DataFrame: "
            "reproduce(run_id, runner, frame=df)."
        )
    source, test, _ = load_data(cfg.data, frame=frame, test_frame=test_frame)
    # The same rule as prepare_data: the source alone, or source and fixed test set as two parts.
    now = fingerprint(source) if test is None else fingerprint(source, test)
    if now != rec.fingerprint:
        src = cfg.data.source
        where = "the DataFrame passed in" if frame is not None or src is None else (src.path or f"{src.package}/{src.item}")
        raise DataError(
            f"The data at {where} are not the data run {rec.run_id} was trained on: fingerprint {rec.fingerprint[:12]}... "
            f"recorded, {now[:12]}... now. A study can only be reproduced on the same rows; restore the original data "
            "(the fingerprint is over the rows, their order and the label map)."
        )


def reproduce(
    ref: str,
    runner: Runner,
    *,
    tracking_uri: str | None = None,
    tolerance: float = 0.0,
    output_dir: str | Path | None = None,
    frame: Any = None,
    test_frame: Any = None,
    trust_code: bool = False,
) -> ReproduceReport:
    """Re-run the study logged as MLflow run ``ref`` with its config and split; compare test metrics.

    Args:
        ref: the MLflow run id (or the graftlab run id, i.e. the run folder's name).
        runner: runs a study: ``(config, prepared data) -> results``.
        tracking_uri: the store the run was logged to.
        tolerance: largest absolute difference of a metric that still matches (0: exact).
        output_dir: where the reproduced run folder goes (default ``.graft/reproduce``). The reproduced
            run is not logged to MLflow and registers nothing.
        frame, test_frame: the DataFrames, for a study that was run on DataFrames passed in Python.
        trust_code: run the Python function of a data source of kind ``python`` in the recorded config
            (refused without it: that code came with the stored config).

    Raises:
        UntrustedCodeError: the recorded config runs Python code and ``trust_code`` is false.
        DataError: the data's fingerprint differs from the recorded one.
        TrackingError: no such run, or it lacks the logged config/split/results.
    """
    if tolerance < 0 or math.isnan(tolerance):
        raise GraftError(f"The 'tolerance' parameter must be a number >= 0. Got {tolerance!r} instead.")
    from ..data.prepare import prepare_data

    with tempfile.TemporaryDirectory() as tmp:
        rec = fetch_recorded(ref, Path(tmp), tracking_uri)
        require_trusted(rec.config, trust_code, what=f"the config of run {rec.run_id}",
                        command=f"graft reproduce {ref} --trust-code")
        _check_fingerprint(rec, frame, test_frame)
        cfg = rec.config
        cfg.tracking.enabled = False  # a reproduction must not register a new model version
        cfg.output_dir = str(Path(output_dir) if output_dir else graft_home() / "reproduce")
        prepared = prepare_data(cfg.data, split_file=rec.split_path, frame=frame, test_frame=test_frame)
        results = runner(cfg, prepared)
    rows = compare_results(rec.results, results, tolerance)
    report = ReproduceReport(rec.run_id, rec.fingerprint, tolerance, rows, rec.results.get("winner"),
                             results.get("winner"), str(results.get("run_dir")) if results.get("run_dir") else None)
    c = client(tracking_uri)
    c.set_tag(rec.run_id, "graft.reproduced", "match" if report.matches else "mismatch")
    c.set_tag(rec.run_id, "graft.reproduced_max_diff", f"{report.max_diff:.3g}")
    return report
