"""Where tracking goes: the MLflow tracking URI, the artifact folder, and a quiet client.

The URI comes from the config (``tracking.uri``), else ``GRAFT_TRACKING_URI``, else an embedded sqlite
store at ``.graft/mlflow.db`` under the current directory. Artifacts go to ``tracking.artifacts`` or
``.graft/artifacts``: every experiment graftlab creates has an explicit artifact location, so nothing
ever lands in a stray ``./mlruns``. MLflow is imported only when a function here runs.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from ..core.errors import GraftError

__all__ = [
    "ENV_URI",
    "TrackingError",
    "artifact_root",
    "client",
    "default_tracking_uri",
    "graft_home",
    "is_local_uri",
    "quiet_mlflow",
    "resolve_tracking_uri",
    "safe_key",
    "sqlite_path",
]

ENV_URI = "GRAFT_TRACKING_URI"
_QUIET_LOGGERS = ("mlflow", "alembic", "sqlalchemy")


class TrackingError(GraftError, RuntimeError):
    """The MLflow store cannot be reached or does not hold what was asked for."""


def graft_home() -> Path:
    """The ``.graft`` folder of the current directory (stores, artifacts, caches)."""
    return Path.cwd().resolve() / ".graft"


def default_tracking_uri() -> str:
    return f"sqlite:///{graft_home() / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri`` if given, else ``$GRAFT_TRACKING_URI``, else the sqlite store under ``.graft/``."""
    if uri:
        return uri
    return os.environ.get(ENV_URI, "").strip() or default_tracking_uri()


def artifact_root(artifacts: str | None = None) -> Path:
    """The folder that holds MLflow artifacts: ``artifacts`` (made absolute) or ``.graft/artifacts``."""
    return Path(artifacts).expanduser().resolve() if artifacts else graft_home() / "artifacts"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative paths are relative to the current directory)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def is_local_uri(uri: str) -> bool:
    """A store on this machine (sqlite or a plain folder), whose artifacts graftlab places itself."""
    scheme = uri.split(":", 1)[0] if re.match(r"^[a-zA-Z][\w+.-]*:", uri) else ""
    return scheme in ("", "file", "sqlite")


def quiet_mlflow() -> None:
    """Keep MLflow's and alembic's INFO chatter (migrations, run links) off the console."""
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def client(uri: str | None = None, *, must_exist: bool = False) -> Any:
    """An ``MlflowClient`` for tracking and registry at ``resolve_tracking_uri(uri)``.

    Args:
        uri: the tracking URI (default: see :func:`resolve_tracking_uri`).
        must_exist: for read-only commands: refuse a sqlite store that does not exist yet rather
            than create an empty one.

    Raises:
        TrackingError: ``must_exist`` and the sqlite file is missing.
    """
    uri = resolve_tracking_uri(uri)
    db = sqlite_path(uri)
    if db is not None:
        if must_exist and not db.is_file():
            raise TrackingError(
                f"There is no MLflow store at {uri} yet. Run a study first (graft study study.yaml), or pass "
                f"--tracking-uri (or set {ENV_URI}) to point at an existing store."
            )
        db.parent.mkdir(parents=True, exist_ok=True)
    # MLflow's usage telemetry is on by default; graftlab promises that nothing leaves the machine.
    # (Read when mlflow is first imported; a user's explicit setting wins.) Downloads stay silent too.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    quiet_mlflow()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def safe_key(name: str) -> str:
    """A metric/param name MLflow accepts: letters, digits, ``_ - . / space``; others become ``_``."""
    key = re.sub(r"[^\w.\-/ ]", "_", str(name))
    return re.sub(r"/{2,}", "/", key).strip("/") or "_"
