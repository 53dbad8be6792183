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
from pathlib import Path
from typing import Any

from ..core.artifacts import load_json, save_json
from ..core.config import StudyConfig
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
_SCALARS = ("fit_seconds", "latency_ms_b1", "latency_ms_b32", "model_bytes", "trainable_params", "total_params")


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


def _ci_metrics(prefix: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for m, v in metrics.items():
        v = v if isinstance(v, Mapping) else {"value": v}
        for part, suffix in (("value", ""), ("ci_low", ".ci_low"), ("ci_high", ".ci_high")):
            if _real(v.get(part)):
                out[safe_key(f"{prefix}{m}{suffix}")] = float(v[part])
    return out


def _comparison(prefix: str, c: Mapping[str, Any] | None) -> dict[str, float]:
    c = c or {}
    return {safe_key(f"{prefix}.{k}"): float(c[k]) for k in ("diff", "ci_low", "ci_high", "p_value", "mcnemar_p")
            if _real(c.get(k))}


def study_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """Every scalar of a study's evidence as an MLflow metric name -> value.

    ``STRATEGY.test.METRIC`` (+ ``.ci_low``/``.ci_high``), ``STRATEGY.val.METRIC``, costs and calibration
    per strategy; the winner's test metrics unprefixed; ``compare.OTHER.*`` (winner - other);
    ``transfer_gain.*``; ``gates.passed``.
    """
    out: dict[str, float] = {}
    strategies = results.get("strategies") or {}
    for name, s in strategies.items():
        out.update(_ci_metrics(f"{name}.test.", s.get("test") or {}))
        out.update({safe_key(f"{name}.val.{k}"): float(v) for k, v in (s.get("val") or {}).items() if _real(v)})
        out.update({safe_key(f"{name}.{k}"): float(s[k]) for k in _SCALARS if _real(s.get(k))})
        cal = s.get("calibration") or {}
        out.update({safe_key(f"{name}.calibration.{k}"): float(cal[k]) for k in ("temperature", "ece_before", "ece_after")
                    if _real(cal.get(k))})
    winner = strategies.get(results.get("winner")) or {}
    out.update(_ci_metrics("", winner.get("test") or {}))
    if _real((winner.get("calibration") or {}).get("ece_after")):
        out["ece_calibrated"] = float(winner["calibration"]["ece_after"])
    for c in results.get("comparisons") or []:
        out.update(_comparison(f"compare.{c.get('b')}", c))
    for key, c in (results.get("transfer_gain") or {}).items():
        out.update(_comparison(f"transfer_gain.{key}", c))
    passed = (results.get("exit") or {}).get("gates_passed")
    if passed is not None:
        out["gates.passed"] = float(bool(passed))
    total = (results.get("timings") or {}).get("total_s")
    if _real(total):
        out["timings.total_s"] = float(total)
    return out


def _history(results: Mapping[str, Any]) -> Iterator[tuple[str, float, int]]:
    """Training curves: ``STRATEGY.seedN.KEY`` at each evaluation step."""
    for name, s in (results.get("strategies") or {}).items():
        for seed, records in zip(s.get("seeds") or [], s.get("history") or [], strict=False):
            for r in records or []:
                if not isinstance(r, Mapping) or not _real(r.get("step")):
                    continue
                for k, v in r.items():
                    if k != "step" and _real(v) and math.isfinite(v):
                        yield safe_key(f"{name}.seed{seed}.{k}"), float(v), int(r["step"])


def git_commit(folder: str | Path) -> dict[str, Any] | None:
    """The commit, root and dirtiness of the git work tree holding ``folder``; None when there is none."""
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
    return {"commit": commit, "root": git("rev-parse", "--show-toplevel"), "dirty": bool(status)}


def _git_tags(config: StudyConfig, config_path: Path | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    where = Path(config_path).resolve().parent if config_path else Path.cwd()
    if info := git_commit(where):
        tags.update({"mlflow.source.git.commit": info["commit"], "git.commit": info["commit"],
                     "git.root": str(info["root"]), "git.dirty": str(info["dirty"]).lower()})
    src = config.data.source
    if src is not None and src.path:
        data_dir = Path(src.path).expanduser().resolve().parent
        if (info := git_commit(data_dir)) is not None:
            tags.update({"git.data_commit": info["commit"], "git.data_root": str(info["root"]),
                         "git.data_dirty": str(info["dirty"]).lower()})
    return tags


def _run_tags(results: Mapping[str, Any], config: StudyConfig, run_dir: Path, config_path: Path | None) -> dict[str, str]:
    winner = results.get("winner")
    metric = results.get("headline_metric") or config.eval.metric
    w = ((results.get("strategies") or {}).get(winner) or {}).get("test", {}).get(metric) or {}
    gates = "passed" if (results.get("exit") or {}).get("gates_passed") else "failed"
    note = f"Winner **{winner}**: test {metric} {w.get('value', float('nan')):.3f}; gates {gates}. See model_card.md."
    return {
        "gates": gates,
        "winner": str(winner),
        "data_fingerprint": str((results.get("data") or {}).get("fingerprint")),
        "headline_metric": metric,
        "graft.study": config.name,
        "graft.run_id": str(results.get("run_id") or run_dir.name),
        "graft.run_dir": str(Path(run_dir).resolve()),
        "graft.version": str(results.get("graftlab_version")),
        "mlflow.note.content": note,
        **_git_tags(config, config_path),
    }


def _params(results: Mapping[str, Any], config: StudyConfig) -> dict[str, str]:
    params = flatten(config.to_dict())
    params["seeds"] = json.dumps(results.get("seeds"))
    env = results.get("environment") or {}
    params.update({f"env.{k}": str(env[k])[:_PARAM_MAX] for k in ("python", "platform", "cpu", "cores", "threads")
                   if k in env})
    params.update({safe_key(f"env.pkg.{k}"): str(v) for k, v in (env.get("packages") or {}).items()})
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


def _dataset_inputs(results: Mapping[str, Any], config: StudyConfig, run_dir: Path) -> list[Any]:
    """The full data (digest = fingerprint, truncated to MLflow's 36 characters) and each split."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.types import ColSpec, DataType, Schema

    data = results.get("data") or {}
    fp = str(data.get("fingerprint"))
    sources = (data.get("summary") or {}).get("sources") or {}
    name = (sources.get("source") or {}).get("name") or f"{config.name}-data"
    src = config.data.source.model_dump() if config.data.source else {"kind": "python", "note": "DataFrame passed in"}
    schema = Schema([ColSpec(DataType.string, config.data.text), ColSpec(DataType.string, config.data.label)])
    tags = {**{k: v for k, v in src.items() if v is not None}, "fingerprint": fp, "license": data.get("license"),
            "rows": sum((s or {}).get("rows", 0) for s in sources.values()), "labels": data.get("label_names")}
    sets = [(MetaDataset(CodeDatasetSource(tags), name=name, digest=fp[:36], schema=schema), "study")]
    split_fps = {}
    if (run_dir / "split.json").is_file():
        split_fps = load_json(run_dir / "split.json").get("split_fingerprints") or {}
    for split, sfp in split_fps.items():
        rows = (data.get("splits") or {}).get(split)
        ds = MetaDataset(CodeDatasetSource({"split_of": fp, "split": split, "fingerprint": sfp, "rows": rows}),
                         name=f"{name}:{split}", digest=str(sfp)[:36], schema=schema)
        sets.append((ds, split))
    return [DatasetInput(ds._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", ctx)]) for ds, ctx in sets]


def _log_files(c: Any, run_id: str, run_dir: Path, results: Mapping[str, Any]) -> None:
    for f in _RUN_FILES:
        if (run_dir / f).is_file():
            c.log_artifact(run_id, str(run_dir / f))
    for d in _RUN_FOLDERS:
        if (run_dir / d).is_dir():
            c.log_artifacts(run_id, str(run_dir / d), d)
    with tempfile.TemporaryDirectory() as tmp:
        env = save_json(results.get("environment") or {}, Path(tmp) / "environment.json")
        c.log_artifact(run_id, str(env))


def _register(c: Any, run_id: str, results: Mapping[str, Any], config: StudyConfig, uri: str,
              run_dir: Path) -> dict[str, Any] | None:
    if not (run_dir / "model" / "model.json").is_file():  # nothing was packaged: nothing to register
        return None
    winner = results.get("winner")
    metric = results.get("headline_metric") or config.eval.metric
    w = ((results.get("strategies") or {}).get(winner) or {}).get("test", {}).get(metric) or {}
    fp = str((results.get("data") or {}).get("fingerprint"))
    passed = bool((results.get("exit") or {}).get("gates_passed"))
    tags = {"data_fingerprint": fp, "strategy": str(winner), "study": config.name,
            "graft_run_id": str(results.get("run_id")), "headline_metric": metric}
    if _real(w.get("value")):
        tags[metric] = f"{w['value']:.4f}"
    text = f"{winner} from study {config.name}, run {results.get('run_id')}: test {metric} {w.get('value', float('nan')):.3f}"
    if _real(w.get("ci_low")) and _real(w.get("ci_high")):
        text += f" [{w['ci_low']:.3f}, {w['ci_high']:.3f}]"
    source = c.get_run(run_id).info.artifact_uri.rstrip("/") + "/model"
    return register_version(config.tracking.register_as or config.name, source, run_id, tags, passed,
                            description=f"{text}; gates {'passed' if passed else 'failed'}.", tracking_uri=uri)


def log_study(results: dict, run_dir: Path, config: StudyConfig, *, config_path: Path | None = None) -> dict:
    """Log a finished study run to MLflow and register its winner as a new model version.

    Also writes the model card into the run folder and the packaged model (manifest rewritten), and
    ``tracking.json`` (run id, URI, registered version) into the run folder.

    Args:
        results: the study's results (the content of ``results.json``).
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

    run_dir = Path(run_dir)
    uri = resolve_tracking_uri(config.tracking.uri)
    try:
        c = client(uri)
        exp_id = _experiment(c, config.tracking.experiment or config.name, uri, config.tracking.artifacts)
        run = c.create_run(exp_id, run_name=str(results.get("run_id") or run_dir.name),
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
