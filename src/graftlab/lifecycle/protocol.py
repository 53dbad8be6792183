"""The champion's recorded study protocol (config + split) and its original data, ready to be rerun.

The run folder that produced a registered version is found from the version's MLflow run (tag
``graft.run_dir``); when that folder is gone, ``config.yaml`` and ``split.json`` are downloaded from
the run's artifacts. The original rows are reloaded from the config's data source (or given by the
caller) and checked against the recorded fingerprint.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml
from pydantic import Field

from ..core.config import StudyConfig
from ..core.errors import ArtifactError, ConfigError
from ..core.results import Record
from ..data.fingerprint import fingerprint
from ..data.load import NA_VALUES
from ..data.prepare import load_data
from ..data.split import load_split_info

if TYPE_CHECKING:
    from ..tracking.registry import ModelVersion

__all__ = ["SPLIT_COLUMN", "Protocol", "SplitRecord", "find_protocol", "original_frame", "relabelled"]

SPLIT_COLUMN = "_graft_split"


class SplitRecord(Record):
    """What a retrain reads of the champion's ``split.json``: the row ids of each split, the data fingerprint,
    and the classes ``data.checks.rare_classes`` merged (label -> new label) or dropped (label -> None)."""

    ids: dict[str, list[int]]
    fingerprint: str | None = None
    relabel: dict[str, str | None] = Field(default_factory=dict)


@dataclass
class Protocol:
    """What the champion's study ran: its config, its split record (a dict is read as one), and where they were
    found."""

    config: StudyConfig
    split: SplitRecord
    run_dir: Path | None
    found_in: str
    mlflow_run_id: str | None

    def __post_init__(self) -> None:
        if not isinstance(self.split, SplitRecord):
            self.split = SplitRecord.model_validate(dict(self.split))


def _read(config_path: Path, split_path: Path, run_dir: Path | None, found_in: str, run_id: str | None) -> Protocol:
    data = yaml.safe_load(config_path.read_text())
    return Protocol(StudyConfig.from_dict(data, source=str(config_path)),
                    SplitRecord.model_validate(load_split_info(split_path)), run_dir, found_in, run_id)


def find_protocol(version: ModelVersion | Mapping[str, Any], tracking_uri: str | None = None) -> Protocol:
    """The config and split of the study run behind a registry ``version`` (from ``registry.show``; its dict or
    a :class:`~graftlab.tracking.registry.ModelVersion`).

    Raises:
        ArtifactError: neither the run folder nor the logged artifacts hold ``config.yaml`` and ``split.json``.
    """
    from ..tracking.registry import ModelVersion
    from ..tracking.store import client

    if not isinstance(version, ModelVersion):
        version = ModelVersion.from_dict(dict(version))
    run_id = version.run_id
    if not run_id:
        raise ArtifactError(f"Version {version.version} has no MLflow run, so its study protocol is unknown. "
                            "Retrain from a version registered by `graft study`.")
    c = client(tracking_uri, must_exist=True)
    tags = c.get_run(run_id).data.tags
    folder = Path(tags["graft.run_dir"]) if tags.get("graft.run_dir") else None
    if folder is not None and (folder / "config.yaml").is_file() and (folder / "split.json").is_file():
        return _read(folder / "config.yaml", folder / "split.json", folder, "run folder", run_id)
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="graft-protocol-") as tmp:
        try:
            got = [Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f, dst_path=tmp,
                                                            tracking_uri=c.tracking_uri))
                   for f in ("config.yaml", "split.json")]
        except (MlflowException, OSError) as e:  # the artifacts are missing or unreachable
            raise ArtifactError(
                f"The study protocol of version {version.version} (MLflow run {run_id}) is neither in its run "
                f"folder {folder} nor in the run's artifacts ({type(e).__name__}: {e}). Restore the run folder."
            ) from None
        return _read(got[0], got[1], folder, "mlflow artifacts", run_id)


def _resolved(cfg: StudyConfig, run_dir: Path | None) -> StudyConfig:
    """``cfg`` with relative data paths made absolute: against the current folder, else the folder the
    study ran in (the parent of its ``output_dir``)."""
    cfg = cfg.model_copy(deep=True)
    roots = [Path.cwd()]
    if run_dir is not None and not Path(cfg.output_dir).is_absolute():
        depth = len(Path(cfg.output_dir).parts) + 2  # output_dir/<study>/<run-id>
        if len(run_dir.parents) >= depth:
            roots.append(run_dir.parents[depth - 1])
    for src in (cfg.data.source, cfg.data.test_source):
        if src is not None and src.path and not Path(src.path).is_absolute():
            for root in roots:
                if (root / src.path).is_file():
                    src.path = str((root / src.path).resolve())
                    break
    return cfg


def relabelled(frame: pd.DataFrame, column: str, mapping: dict[str, str | None]) -> pd.DataFrame:
    """``frame`` with the labels in ``column`` renamed by ``mapping`` and the rows of labels mapped to None
    removed (what ``data.checks.rare_classes`` recorded in the champion's split)."""
    if not mapping:
        return frame
    labels = frame[column].astype(str).map(lambda v: mapping.get(v, v))
    out = frame.assign(**{column: labels})
    return out[labels.notna().to_numpy()]


def _frame(data: Any, cfg: StudyConfig) -> pd.DataFrame:
    """A LabeledData as a DataFrame with the config's column names."""
    d = cfg.data
    column = (d.image or "image") if d.modality == "image" else d.text
    out = pd.DataFrame({column: pd.Series(list(data.inputs), dtype=object),
                        d.label: [data.label_names[i] for i in data.labels]})
    for col in data.meta.columns:
        if col not in out.columns:
            out[col] = data.meta[col].to_numpy()
    out.index = np.asarray(data.ids)
    return out


def original_frame(protocol: Protocol, original: Any = None,
                   allow_changed: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The champion's training, validation and test rows, with a ``_graft_split`` column saying which.

    Args:
        protocol: from :func:`find_protocol`.
        original: the original source rows (a DataFrame or a file path) when the config has no
            ``data.source`` (the study was given a DataFrame) or the file moved.
        allow_changed: go on when the data's fingerprint differs from the recorded one.

    Returns:
        (frame, info): info has ``source``, ``fingerprint_recorded``, ``fingerprint_now``, ``fingerprint_matches``
        and the row count per split.

    Raises:
        ConfigError: the data cannot be found, or it changed since the champion's study (unless ``allow_changed``).
    """
    cfg = _resolved(protocol.config, protocol.run_dir)
    frame = None
    if original is not None:
        frame = pd.read_parquet(original) if str(original).endswith(".parquet") else (
            pd.read_csv(original, na_values=NA_VALUES) if isinstance(original, (str, Path)) else original)
    elif cfg.data.source is None:
        raise ConfigError(
            f"The champion's study ({cfg.name}) was given its data as a DataFrame, so the original rows are not on "
            "record. Pass them: graft retrain NAME --data PATH (Python: retrain(..., original=frame))."
        )
    source, test, _ = load_data(cfg.data, frame=frame)
    fp_now = fingerprint(source) if test is None else fingerprint(source, test)
    full = _frame(source, cfg) if test is None else pd.concat([_frame(source, cfg), _frame(test, cfg)])
    recorded = protocol.split.fingerprint
    if recorded and recorded != fp_now and not allow_changed:
        raise ConfigError(
            f"The original data of study {cfg.name} has fingerprint {fp_now[:12]} but the champion was trained on "
            f"{str(recorded)[:12]}: the data changed since, so its recorded split no longer applies. Restore the data "
            "(or pass it with --data), or accept the change with --allow-changed-data."
        )
    ids = {k: np.asarray(v, dtype=np.int64) for k, v in protocol.split.ids.items()}
    missing = [int(i) for v in ids.values() for i in v if i not in full.index][:5]
    if missing:
        raise ConfigError(f"The original data has {len(full)} rows but the champion's split uses row ids such as "
                          f"{missing}: this is not the data the champion was trained on. Pass the original with --data.")
    relabel = protocol.split.relabel  # data.checks.rare_classes as the champion's study applied it
    parts = []
    for split, rows in ids.items():
        part = full.loc[rows].copy()
        part[SPLIT_COLUMN] = split
        parts.append(relabelled(part, cfg.data.label, relabel))
    info = {"source": "given" if original is not None else str(cfg.data.source.path or cfg.data.source.item),
            "fingerprint_recorded": recorded, "fingerprint_now": fp_now,
            "fingerprint_matches": recorded == fp_now, "rows": {k: len(v) for k, v in ids.items()}}
    return pd.concat(parts, ignore_index=True), info
