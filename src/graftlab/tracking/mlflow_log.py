"""Log a finished study to MLflow and register its winner: :func:`log_study`.

One MLflow run per study run: the config (artifact + flattened params), every strategy's metrics with
their CIs, the winner's metrics unprefixed, the data fingerprint as a dataset input, split, seeds,
environment, git commits, report, decision record, model card and the packaged model folder (plain
files: safetensors + JSON, never an MLflow-pickled model). The winner becomes a new version of the
registered model. Only ``MlflowClient`` is used, so no global MLflow state changes.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.artifacts import load_json, save_json
from ..core.config import StudyConfig
from ..core.results import Comparison, Interval, StrategySummary, StudyResults, as_results
from .card import attach_model_card
from .registry import register_version
from .store import (
    TrackingError,
    artifact_root,
    client,
    is_local_uri,
    resolve_tracking_uri,
    safe_key,
)

__all__ = ["TRACKING_JSON", "flatten", "git_commit", "log_study", "study_metrics"]

TRACKING_JSON = "tracking.json"
_RUN_FILES = ("config.yaml", "split.json", "results.json", "report.html", "decision.md", "decision.json",
              "model_card.md", "model_card.json")
_RUN_FOLDERS = ("model", "predictions", "plots")
_BATCH = 100  # MLflow's limit on params/tags per log_batch call
_PARAM_MAX = 500


def _real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# -- what gets logged -------------------------------------------------------------------------------
def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": "0.1"}``; lists become JSON, values are capped."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            text = json.dumps(v, default=str) if isinstance(v, (list, tuple, Mapping)) else str(v)
            out[safe_key(key)] = text[:_PARAM_MAX]
    return out


def _numbers(prefix: str, values: Mapping[str, Any]) -> dict[str, float]:
    """``PREFIX + NAME`` -> value for the values that are numbers (NaN included: MLflow logs it)."""
    return {safe_key(f"{prefix}{k}"): float(v) for k, v in values.items() if _real(v)}


def _ci_metrics(prefix: str, test: Mapping[str, Interval]) -> dict[str, float]:
    out = {}
    for m, v in test.items():
        for suffix, x in (("", v.value), (".ci_low", v.ci_low), (".ci_high", v.ci_high)):
            if _real(x):
                out[safe_key(f"{prefix}{m}{suffix}")] = float(x)
    return out


def _comparison(prefix: str, c: Comparison | None) -> dict[str, float]:
    if c is None:
        return {}
    return _numbers(f"{prefix}.", {"diff": c.diff, "ci_low": c.ci_low, "ci_high": c.ci_high, "p_value": c.p_value,
                                   "mcnemar_p": c.mcnemar_p})


def _strategy_metrics(name: str, s: StrategySummary) -> dict[str, float]:
    """One strategy's test metrics with CIs, validation means, costs and calibration."""
    out = _ci_metrics(f"{name}.test.", s.test)
    out.update(_numbers(f"{name}.val.", s.val))
    out.update(_numbers(f"{name}.", {"fit_seconds": s.fit_seconds, "latency_ms_b1": s.latency_ms_b1,
                                     "latency_ms_b32": s.latency_ms_b32, "model_bytes": s.model_bytes,
                                     "trainable_params": s.trainable_params, "total_params": s.total_params}))
    if (cal := s.calibration) is not None:
        out.update(_numbers(f"{name}.calibration.", {"temperature": cal.temperature, "ece_before": cal.ece_before,
                                                     "ece_after": cal.ece_after}))
    return out


def study_metrics(results: StudyResults | Mapping[str, Any]) -> dict[str, float]:
    """Every scalar of a study's evidence as an MLflow metric name -> value.

    ``STRATEGY.test.METRIC`` (+ ``.ci_low``/``.ci_high``), ``STRATEGY.val.METRIC``, costs and calibration
    per strategy; the winner's test metrics unprefixed; ``compare.OTHER.*`` (winner - other);
    ``transfer_gain.*``; ``gates.passed``.
    """
    results = as_results(results)
    out: dict[str, float] = {}
    for name, s in results.strategies.items():
        out.update(_strategy_metrics(name, s))
    winner = results.champion
    out.update(_ci_metrics("", winner.test))
    if winner.calibration is not None and _real(winner.calibration.ece_after):
        out["ece_calibrated"] = float(winner.calibration.ece_after)
    for c in results.comparisons:
        out.update(_comparison(f"compare.{c.b}", c))
    for key, c in results.transfer_gain.items():
        out.update(_comparison(f"transfer_gain.{key}", c))
    out["gates.passed"] = float(results.gates_passed)
    if _real(results.timings.total_s):
        out["timings.total_s"] = float(results.timings.total_s)
    return out


def _history(results: StudyResults) -> Iterator[tuple[str, float, int]]:
    """Training curves: ``STRATEGY.seedN.KEY`` at each evaluation step."""
    for name, s in results.strategies.items():
        for seed, records in zip(s.seeds, s.history, strict=False):
            for r in records:
                step = r.get("step")
                if not _real(step):
                    continue
                for k, v in r.items():
                    if k != "step" and _real(v) and math.isfinite(v):
                        yield safe_key(f"{name}.seed{seed}.{k}"), float(v), int(step)


@dataclass(frozen=True)
class GitCommit:
    """The commit checked out in a git work tree, the tree's root, and whether tracked files changed since."""

    commit: str
    root: str | None
    dirty: bool


def _work_tree(folder: str | Path) -> GitCommit | None:
    """The git work tree holding ``folder``; None when there is none."""
    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                                 check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    if not Path(folder).is_dir() or (commit := git("rev-parse", "HEAD")) is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitCommit(commit, git("rev-parse", "--show-toplevel"), bool(status))


def git_commit(folder: str | Path) -> dict[str, Any] | None:
    """The commit, root and dirtiness of the git work tree holding ``folder``; None when there is none."""
    tree = _work_tree(folder)
    return asdict(tree) if tree is not None else None


def _git_tags(config: StudyConfig, config_path: Path | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    where = Path(config_path).resolve().parent if config_path else Path.cwd()
    if tree := _work_tree(where):
        tags.update({"mlflow.source.git.commit": tree.commit, "git.commit": tree.commit,
                     "git.root": str(tree.root), "git.dirty": str(tree.dirty).lower()})
    src = config.data.source
    if src is not None and src.path:
        data_dir = Path(src.path).expanduser().resolve().parent
        if (tree := _work_tree(data_dir)) is not None:
            tags.update({"git.data_commit": tree.commit, "git.data_root": str(tree.root),
                         "git.data_dirty": str(tree.dirty).lower()})
    return tags


def _headline(results: StudyResults, config: StudyConfig) -> tuple[str, Interval | None]:
    """The headline metric and the winner's test score on it (None when it was not measured)."""
    metric = results.headline_metric or config.eval.metric
    return metric, results.champion.score(metric)


def _run_tags(results: StudyResults, config: StudyConfig, run_dir: Path, config_path: Path | None) -> dict[str, str]:
    metric, score = _headline(results, config)
    gates = "passed" if results.gates_passed else "failed"
    value = score.value if score is not None else float("nan")
    note = f"Winner **{results.winner}**: test {metric} {value:.3f}; gates {gates}. See model_card.md."
    return {
        "gates": gates,
        "winner": str(results.winner),
        "data_fingerprint": str(results.data.fingerprint),
        "headline_metric": metric,
        "graft.study": config.name,
        "graft.run_id": str(results.run_id or run_dir.name),
        "graft.run_dir": str(Path(run_dir).resolve()),
        "graft.version": str(results.graftlab_version),
        "mlflow.note.content": note,
        **_git_tags(config, config_path),
    }


def _params(results: StudyResults, config: StudyConfig) -> dict[str, str]:
    params = flatten(config.to_dict())
    params["seeds"] = json.dumps(results.seeds)
    env = results.environment
    machine = {"python": env.python, "platform": env.platform, "cpu": env.cpu, "cores": env.cores,
               "threads": env.threads}
    params.update({f"env.{k}": str(v)[:_PARAM_MAX] for k, v in machine.items() if v is not None})
    params.update({safe_key(f"env.pkg.{k}"): str(v) for k, v in env.packages.items()})
    return params


# -- MLflow calls -----------------------------------------------------------------------------------
def _experiment(c: Any, name: str, uri: str, artifacts: str | None) -> str:
    from mlflow.exceptions import MlflowException

    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    location = None
    if artifacts and "://" in artifacts:
        location = f"{artifacts.rstrip('/')}/{safe_key(name)}"
    elif artifacts or is_local_uri(uri):  # never let a local store fall back to ./mlruns
        location = (artifact_root(artifacts) / safe_key(name)).as_uri()
    try:
        return c.create_experiment(name, artifact_location=location)
    except MlflowException:  # created meanwhile by another process
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _log_values(c: Any, run_id: str, params: dict[str, str], metrics: dict[str, float],
                history: list[tuple[str, float, int]]) -> None:
    from mlflow.entities import Metric, Param

    ts = int(time.time() * 1000)
    items = list(params.items())
    for i in range(0, len(items), _BATCH):
        c.log_batch(run_id, params=[Param(k, v) for k, v in items[i:i + _BATCH]])
    entries = [Metric(k, v, ts, 0) for k, v in metrics.items()] + [Metric(k, v, ts, s) for k, v, s in history]
    for i in range(0, len(entries), 1000):
        c.log_batch(run_id, metrics=entries[i:i + 1000])


def _dataset_inputs(results: StudyResults, config: StudyConfig, run_dir: Path) -> list[Any]:
    """The full data (digest = fingerprint, truncated to MLflow's 36 characters) and each split."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.types import ColSpec, DataType, Schema

    data = results.data
    fp = str(data.fingerprint)
    sources = data.summary.get("sources") or {}
    name = (sources.get("source") or {}).get("name") or f"{config.name}-data"
    src = config.data.source.model_dump() if config.data.source else {"kind": "python", "note": "DataFrame passed in"}
    schema = Schema([ColSpec(DataType.string, config.data.text), ColSpec(DataType.string, config.data.label)])
    tags = {**{k: v for k, v in src.items() if v is not None}, "fingerprint": fp, "license": data.license,
            "rows": sum((s or {}).get("rows", 0) for s in sources.values()), "labels": data.label_names}
    sets = [(MetaDataset(CodeDatasetSource(tags), name=name, digest=fp[:36], schema=schema), "study")]
    split_fps = {}
    if (run_dir / "split.json").is_file():
        split_fps = load_json(run_dir / "split.json").get("split_fingerprints") or {}
    for split, sfp in split_fps.items():
        rows = data.splits.get(split)
        ds = MetaDataset(CodeDatasetSource({"split_of": fp, "split": split, "fingerprint": sfp, "rows": rows}),
                         name=f"{name}:{split}", digest=str(sfp)[:36], schema=schema)
        sets.append((ds, split))
    return [DatasetInput(ds._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", ctx)]) for ds, ctx in sets]


def _log_files(c: Any, run_id: str, run_dir: Path, results: StudyResults) -> None:
    for f in _RUN_FILES:
        if (run_dir / f).is_file():
            c.log_artifact(run_id, str(run_dir / f))
    for d in _RUN_FOLDERS:
        if (run_dir / d).is_dir():
            c.log_artifacts(run_id, str(run_dir / d), d)
    with tempfile.TemporaryDirectory() as tmp:
        env = save_json(results.environment.to_dict(), Path(tmp) / "environment.json")
        c.log_artifact(run_id, str(env))


def _register(c: Any, run_id: str, results: StudyResults, config: StudyConfig, uri: str,
              run_dir: Path) -> dict[str, Any] | None:
    if not (run_dir / "model" / "model.json").is_file():  # nothing was packaged: nothing to register
        return None
    metric, score = _headline(results, config)
    passed = results.gates_passed
    tags = {"data_fingerprint": str(results.data.fingerprint), "strategy": str(results.winner), "study": config.name,
            "graft_run_id": str(results.run_id), "headline_metric": metric}
    value = score.value if score is not None else float("nan")
    if score is not None:
        tags[metric] = f"{value:.4f}"
    text = f"{results.winner} from study {config.name}, run {results.run_id}: test {metric} {value:.3f}"
    if score is not None and _real(score.ci_low) and _real(score.ci_high):
        text += f" [{score.ci_low:.3f}, {score.ci_high:.3f}]"
    source = c.get_run(run_id).info.artifact_uri.rstrip("/") + "/model"
    return register_version(config.tracking.register_as or config.name, source, run_id, tags, passed,
                            description=f"{text}; gates {'passed' if passed else 'failed'}.", tracking_uri=uri)


def log_study(results: StudyResults | Mapping[str, Any], run_dir: Path, config: StudyConfig, *,
              config_path: Path | None = None) -> dict:
    """Log a finished study run to MLflow and register its winner as a new model version.

    Also writes the model card into the run folder and the packaged model (manifest rewritten), and
    ``tracking.json`` (run id, URI, registered version) into the run folder.

    Args:
        results: the study's results (or the content of its ``results.json``).
        run_dir: the run folder (``runs/<study>/<run-id>``).
        config: the study config; ``config.tracking`` says where to log and under which names.
        config_path: the YAML the config came from, if any; its git commit is recorded.

    Returns:
        ``{"mlflow_run_id", "tracking_uri", "experiment_id", "registered": {"name", "version", "aliases"} or None}``;
        all None when ``config.tracking.enabled`` is false (nothing is done then).

    Raises:
        TrackingError: the MLflow store could not be written (the run folder is complete regardless).
    """
    if not config.tracking.enabled:
        return {"mlflow_run_id": None, "tracking_uri": None, "experiment_id": None, "registered": None}
    from mlflow.exceptions import MlflowException

    results = as_results(results)
    run_dir = Path(run_dir)
    uri = resolve_tracking_uri(config.tracking.uri)
    try:
        c = client(uri)
        exp_id = _experiment(c, config.tracking.experiment or config.name, uri, config.tracking.artifacts)
        run = c.create_run(exp_id, run_name=str(results.run_id or run_dir.name),
                           tags=_run_tags(results, config, run_dir, config_path))
    except (MlflowException, OSError) as e:
        raise TrackingError(f"Could not start an MLflow run at {uri}: {e}. The run folder {run_dir} is complete; "
                            "fix tracking.uri (or GRAFT_TRACKING_URI), or set tracking.enabled: false.") from e
    run_id = run.info.run_id
    try:
        attach_model_card(results, run_dir, reproduce_ref=run_id)
        _log_values(c, run_id, _params(results, config), study_metrics(results), list(_history(results)))
        c.log_inputs(run_id, datasets=_dataset_inputs(results, config, run_dir))
        _log_files(c, run_id, run_dir, results)
        registered = _register(c, run_id, results, config, uri, run_dir)
        c.set_terminated(run_id, "FINISHED")
    except (MlflowException, OSError) as e:
        c.set_terminated(run_id, "FAILED")
        raise TrackingError(f"Logging run {run_id} to MLflow at {uri} failed: {e}. The run folder {run_dir} is "
                            "complete; the MLflow run is marked FAILED.") from e
    except BaseException:
        c.set_terminated(run_id, "FAILED")
        raise
    info = {"mlflow_run_id": run_id, "tracking_uri": uri, "experiment_id": exp_id, "registered": registered}
    save_json(info, run_dir / TRACKING_JSON)
    return info
