"""The model registry: versions of a named model in MLflow, the ``champion`` / ``challenger`` aliases,
promotion (refused when gates failed, unless forced with a reason), rollback, and model resolution.

A thin layer over ``MlflowClient``. Every version carries the tags ``gates`` (passed|failed) and
``data_fingerprint``; a promotion records ``previous_champion`` on the promoted version, which is what
:func:`rollback` returns to.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, Field

from ..core.artifacts import verify_manifest
from ..core.errors import ArtifactError, GraftError
from ..core.results import Interval
from .store import client, graft_home, resolve_tracking_uri

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "ModelVersion",
    "Promotion",
    "RegisteredModel",
    "Registration",
    "Rollback",
    "list_models",
    "parse_ref",
    "promote",
    "register_version",
    "resolve_model",
    "rollback",
    "show",
]

CHAMPION, CHALLENGER = "champion", "challenger"
_MODEL_JSON = "model.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _is_missing(err: Exception) -> bool:
    return getattr(err, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(err).lower()


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def _model(c: Any, name: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return c.get_registered_model(name)
    except MlflowException as e:
        if not _is_missing(e):
            raise
    names = sorted(m.name for m in c.search_registered_models())
    known = f"Registered models: {', '.join(names)}." if names else "No model is registered there yet."
    raise GraftError(
        f"There is no registered model {name!r} in the MLflow registry at {uri}. {known} "
        "Run a study (its winner is registered under tracking.register_as or the study name) or check the name."
    ) from None


def _versions(c: Any, name: str) -> list[Any]:
    found = c.search_model_versions(f"name='{_quote(name)}'")
    return sorted(found, key=lambda v: int(v.version))


def _version(c: Any, name: str, version: int | str, uri: str) -> Any:
    _model(c, name, uri)
    for v in _versions(c, name):
        if str(v.version) == str(version):
            return v
    have = ", ".join(str(v.version) for v in _versions(c, name)) or "none"
    raise GraftError(
        f"Model {name!r} has no version {version!r} (versions: {have}). See graft registry show {name}."
    )


def _aliases(c: Any, name: str) -> dict[str, str]:
    return {k: str(v) for k, v in (c.get_registered_model(name).aliases or {}).items()}


def _created(ms: Any) -> str | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="seconds") if ms else None


def _version_info(v: Any, model_aliases: dict[str, Any]) -> dict[str, Any]:
    """A version as a dict; aliases come from the model (version searches do not fill them in)."""
    tags = dict(v.tags or {})
    return {
        "version": int(v.version),
        "aliases": sorted(a for a, ver in model_aliases.items() if str(ver) == str(v.version)),
        "gates": tags.get("gates"),
        "strategy": tags.get("strategy"),
        "data_fingerprint": tags.get("data_fingerprint"),
        "created": _created(v.creation_timestamp),
        "run_id": v.run_id,
        "source": v.source,
        "status": v.status,
        "tags": tags,
    }


# -- typed views of what the functions below return (their dicts are the public form) ---------------
class ModelVersion(BaseModel):
    """One version of a registered model, as :func:`list_models` and :func:`show` describe it."""

    version: int
    aliases: list[str] = Field(default_factory=list)
    gates: str | None = None
    strategy: str | None = None
    data_fingerprint: str | None = None
    created: str | None = None
    run_id: str | None = None
    source: str | None = None
    status: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Interval] = Field(default_factory=dict)  # from :func:`show` only

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersion:
        return cls.model_validate(data)

    # the promotion history, from the tags :func:`promote` and :func:`rollback` set
    @property
    def previous_champion(self) -> str | None:
        return self.tags.get("previous_champion")

    @property
    def promotion_forced(self) -> bool:
        return self.tags.get("promotion_forced") == "true"

    @property
    def promotion_reason(self) -> str | None:
        return self.tags.get("promotion_reason")

    @property
    def rolled_back_to(self) -> str | None:
        return self.tags.get("rolled_back_to")


class RegisteredModel(BaseModel):
    """A registered model with its aliases (alias -> version) and versions, oldest first."""

    name: str
    description: str | None = None
    aliases: dict[str, int] = Field(default_factory=dict)
    versions: list[ModelVersion] = Field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegisteredModel:
        return cls.model_validate(data)

    @property
    def champion(self) -> ModelVersion | None:
        """The version the ``champion`` alias points at, None when there is none."""
        number = self.aliases.get(CHAMPION)
        return next((v for v in self.versions if v.version == number), None)


class Registration(BaseModel):
    """What :func:`register_version` did: the new version and the aliases it got."""

    name: str
    version: int
    aliases: list[str] = Field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Registration:
        return cls.model_validate(data)


class Promotion(BaseModel):
    """What :func:`promote` did: ``changed`` is False when the version already was the champion."""

    name: str
    version: int
    previous_champion: int | None = None
    changed: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Promotion:
        return cls.model_validate(data)


class Rollback(BaseModel):
    """What :func:`rollback` did: the champion alias moved from one version to another."""

    name: str
    from_version: int = Field(alias="from")
    to_version: int = Field(alias="to")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollback:
        return cls.model_validate(data)


# -- registration (called by log_study) -------------------------------------------------------------
def register_version(
    name: str, source: str, run_id: str, tags: dict[str, str], gates_passed: bool,
    description: str | None = None, tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Add a version of ``name`` (created if new) pointing at ``source``; alias it ``challenger``, and
    ``champion`` as well when the model has no champion yet and the gates passed.

    Returns:
        ``{"name", "version", "aliases"}``.
    """
    from mlflow.exceptions import MlflowException

    c = client(tracking_uri)
    try:
        c.create_registered_model(name, description="Registered by graftlab: each version is a study's winner.")
    except MlflowException as e:
        if getattr(e, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
    tags = {**tags, "gates": "passed" if gates_passed else "failed"}
    mv = c.create_model_version(name, source, run_id=run_id, tags=tags, description=description)
    version = str(mv.version)
    c.set_registered_model_alias(name, CHALLENGER, version)
    aliases = [CHALLENGER]
    if CHAMPION not in _aliases(c, name) and gates_passed:
        c.set_registered_model_alias(name, CHAMPION, version)
        c.set_model_version_tag(name, version, "promoted_at", _now())
        c.set_model_version_tag(name, version, "promotion_reason", "first version of the model to pass its gates")
        aliases.append(CHAMPION)
    return {"name": name, "version": int(version), "aliases": sorted(aliases)}


# -- reading ----------------------------------------------------------------------------------------
def list_models(tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Every registered model with its aliases and versions (newest last)."""
    c = client(tracking_uri, must_exist=True)
    out = []
    for m in sorted(c.search_registered_models(), key=lambda m: m.name):
        out.append({"name": m.name, "aliases": {k: int(v) for k, v in (m.aliases or {}).items()},
                    "versions": [_version_info(v, m.aliases or {}) for v in _versions(c, m.name)]})
    return out


def show(name: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """One model: its aliases and every version with the winner's test metrics (value and CI) from its run."""
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri)
    c = client(uri, must_exist=True)
    m = _model(c, name, uri)
    versions = []
    for v in _versions(c, name):
        info = _version_info(v, m.aliases or {})
        metrics: dict[str, dict[str, float]] = {}
        if v.run_id:
            try:
                logged = c.get_run(v.run_id).data.metrics
            except MlflowException:  # the run was deleted: the version still lists
                logged = {}
            for key, value in logged.items():
                base, _, part = key.partition(".")
                if part in ("", "ci_low", "ci_high") and "/" not in base:
                    metrics.setdefault(base, {})["value" if not part else part] = value
        info["metrics"] = {k: metrics[k] for k in sorted(metrics) if "value" in metrics[k]}
        versions.append(info)
    return {"name": m.name, "description": m.description,
            "aliases": {k: int(v) for k, v in (m.aliases or {}).items()}, "versions": versions}


# -- promotion and rollback -------------------------------------------------------------------------
def promote(name: str, version: int | str, force: bool = False, reason: str | None = None,
            tracking_uri: str | None = None) -> dict[str, Any]:
    """Make ``version`` the champion; the previous champion is recorded on it for :func:`rollback`.

    Args:
        name: the registered model.
        version: the version to promote.
        force: promote even though the version's gates failed (needs ``reason``).
        reason: why; recorded as the version tag ``promotion_reason``.

    Returns:
        ``{"name", "version", "previous_champion", "changed"}``.

    Raises:
        GraftError: unknown model or version, or gates failed without ``force`` and ``reason``.
    """
    uri = resolve_tracking_uri(tracking_uri)
    c = client(uri, must_exist=True)
    v = _version(c, name, version, uri)
    version = str(v.version)
    reason = (reason or "").strip() or None
    if force and not reason:
        raise GraftError(f"Forcing a promotion needs a reason: add --reason \"why\" (Python: reason=...). "
                         f"Nothing was changed for {name!r} version {version}.")
    gates = (v.tags or {}).get("gates")
    if gates == "failed" and not force:
        raise GraftError(
            f"Version {version} of {name!r} failed its gates (tag gates=failed), so it is not promoted. Read its "
            f"report, then either promote a version that passed, or override with --force --reason \"why\" "
            f"(Python: promote(..., force=True, reason=...)); the reason is recorded on the version."
        )
    previous = _aliases(c, name).get(CHAMPION)
    if previous == version:
        return {"name": name, "version": int(version), "previous_champion": None, "changed": False}
    c.set_model_version_tag(name, version, "promoted_at", _now())
    if previous is not None:
        c.set_model_version_tag(name, version, "previous_champion", previous)
    elif "previous_champion" in (v.tags or {}):  # a stale record from an earlier promotion
        c.delete_model_version_tag(name, version, "previous_champion")
    if reason:
        c.set_model_version_tag(name, version, "promotion_reason", reason)
    if force and gates == "failed":
        c.set_model_version_tag(name, version, "promotion_forced", "true")
    c.set_registered_model_alias(name, CHAMPION, version)
    if _aliases(c, name).get(CHALLENGER) == version:  # a champion is no longer anyone's challenger
        c.delete_registered_model_alias(name, CHALLENGER)
    return {"name": name, "version": int(version), "previous_champion": int(previous) if previous else None,
            "changed": True}


def rollback(name: str, reason: str | None = None, tracking_uri: str | None = None) -> dict[str, Any]:
    """Return ``champion`` to the version that held it before the current one.

    Returns:
        ``{"name", "from", "to"}``.

    Raises:
        GraftError: the model has no champion, or its champion has no recorded predecessor.
    """
    uri = resolve_tracking_uri(tracking_uri)
    c = client(uri, must_exist=True)
    _model(c, name, uri)
    current = _aliases(c, name).get(CHAMPION)
    if current is None:
        raise GraftError(f"Model {name!r} has no champion, so there is nothing to roll back. "
                         f"Promote a version first: graft registry promote {name} VERSION.")
    cv = _version(c, name, current, uri)
    previous = (cv.tags or {}).get("previous_champion")
    if not previous:
        raise GraftError(
            f"Version {current} of {name!r} is the champion but no earlier champion is recorded (it was the first, "
            f"or was itself rolled back to), so there is nothing to roll back to. To change the champion, promote a "
            f"version: graft registry promote {name} VERSION."
        )
    _version(c, name, previous, uri)  # still exists?
    c.set_registered_model_alias(name, CHAMPION, previous)
    c.set_model_version_tag(name, current, "rolled_back_at", _now())
    c.set_model_version_tag(name, current, "rolled_back_to", previous)
    if reason:
        c.set_model_version_tag(name, current, "rollback_reason", reason)
    return {"name": name, "from": int(current), "to": int(previous)}


# -- resolution -------------------------------------------------------------------------------------
def parse_ref(ref: str) -> tuple[str, str, str]:
    """``NAME`` / ``NAME@alias`` / ``NAME:version`` / ``models:/NAME@alias`` / ``models:/NAME/3``
    -> (name, "alias" | "version", value). The alias defaults to ``champion``."""
    ref = ref.strip()
    if ref.startswith("models:/"):
        ref = ref[len("models:/"):]
        head, _, tail = ref.rpartition("/")
        if head and tail.isdigit():
            return head, "version", tail
    if "@" in ref:
        name, _, alias = ref.rpartition("@")
        return name, "alias", alias or CHAMPION
    head, sep, tail = ref.rpartition(":")
    if sep and head and tail.isdigit():
        return head, "version", tail
    return ref, "alias", CHAMPION


def _local_source(source: str) -> Path | None:
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and source:
        return Path(source)
    return None


def _package_folder(folder: Path) -> Path | None:
    if (folder / _MODEL_JSON).is_file():
        return folder
    if (folder / "model" / _MODEL_JSON).is_file():
        return folder / "model"
    return None


def resolve_model(ref: str | Path, tracking_uri: str | None = None) -> Path:
    """A local folder holding the packaged model that ``ref`` names.

    Args:
        ref: a packaged model folder (or a run folder), or ``NAME``, ``NAME@alias`` (default
            ``champion``), ``NAME:version``.
        tracking_uri: the registry (default: see :func:`graftlab.tracking.store.resolve_tracking_uri`).

    Returns:
        The folder: the artifact itself for a local store, else a verified download cached under
        ``.graft/models/NAME/VERSION``.
    """
    path = Path(ref)
    if path.is_dir():
        found = _package_folder(path)
        if found is None:
            raise ArtifactError(f"{path} is a folder but not a packaged model (no {_MODEL_JSON}). "
                                "Pass a run's model folder (runs/<study>/<run>/model) or a registry name like NAME@champion.")
        return found
    uri = resolve_tracking_uri(tracking_uri)
    name, kind, value = parse_ref(str(ref))
    c = client(uri, must_exist=True)
    if kind == "alias":
        aliases = _aliases(c, _model(c, name, uri).name)
        if value not in aliases:
            have = ", ".join(f"{k}={v}" for k, v in sorted(aliases.items())) or "none"
            raise GraftError(f"Model {name!r} has no alias {value!r} (aliases: {have}). Use NAME:VERSION, or set "
                             f"it with graft registry promote {name} VERSION.")
        value = aliases[value]
    v = _version(c, name, value, uri)
    local = _local_source(v.source)
    if local is not None and (found := _package_folder(local)) is not None:
        return found
    return _download(v, uri)


def _download(v: Any, uri: str) -> Path:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    cache = graft_home() / "models" / v.name / str(v.version)
    if cache.is_dir():
        try:
            verify_manifest(cache)
            return cache
        except ArtifactError:
            shutil.rmtree(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.parent) as tmp:
        try:
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=v.source, dst_path=tmp, tracking_uri=uri))
        except (MlflowException, OSError) as e:
            raise GraftError(f"Could not download version {v.version} of {v.name!r} from {v.source}: {e}") from None
        folder = _package_folder(got)
        if folder is None:
            raise ArtifactError(f"Version {v.version} of {v.name!r} at {v.source} is not a graftlab packaged model "
                                f"(no {_MODEL_JSON}).")
        verify_manifest(folder)
        folder.replace(cache)
    return cache
