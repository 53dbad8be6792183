"""The prediction log: SQLite in WAL mode with ``synchronous=FULL``, written before a request is answered.

Tables::

    predictions(request_id, route, ts, model_version, input_sha256, input_text, prediction,
                probabilities, confidence, latency_ms)      primary key (request_id, route)
    feedback(request_id, ts, label)                         the true label given later for a request
    labeled_predictions                                      view: served predictions joined with feedback

``route`` is ``champion`` or ``canary`` for the row that answered the request, ``shadow`` for a
challenger's silent score of the same request. Input texts are stored only when asked for, after
:func:`redact` has replaced e-mail addresses, phone numbers and long numbers; an image model's inputs
are stored (when asked for) as the image file in a data URL, ``input_sha256`` then being the file's.

Writes from concurrent requests are grouped into one transaction (group commit) on a single writer
thread; each request's ``await log.write(...)`` returns only once its rows are committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .inputs import ImageInput

__all__ = ["SERVED_ROUTES", "PredictionLog", "PredictionRow", "input_sha256", "read_feedback", "read_predictions", "redact"]

SERVED_ROUTES = ("champion", "canary")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT NOT NULL,
    route TEXT NOT NULL,
    ts REAL NOT NULL,
    model_version TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    input_text TEXT,
    prediction TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    confidence REAL NOT NULL,
    latency_ms REAL NOT NULL,
    PRIMARY KEY (request_id, route)
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    label TEXT NOT NULL
);
CREATE VIEW IF NOT EXISTS labeled_predictions AS
    SELECT p.*, f.label AS true_label, f.ts AS feedback_ts
    FROM predictions p JOIN feedback f ON f.request_id = p.request_id
    WHERE p.route IN ('champion', 'canary');
"""

_WHICH_LOG = ("Pass --log-db a new file name (it is created) or graftlab's own prediction log (the file an earlier "
              "`graft serve --log-db` wrote).")
_READ_HINT = "Pass --log-db the file given to `graft serve --log-db`."


@cache
def _log_columns() -> dict[str, list[str]]:
    """The columns of each table and view that :data:`_SCHEMA` creates, read from a database made in memory."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        return {n: [c[1] for c in conn.execute(f"PRAGMA table_info({n})")] for n in names}
    finally:
        conn.close()


def _check_is_log(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that is not (yet) a prediction log: one with tables of its own, or with a table of the
    log's name whose columns differ. Only reads, so a refused file is left byte for byte as it was.

    Raises:
        ConfigError: saying which tables or columns belong to something else.
    """
    own = _log_columns()
    found = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
             if not n.startswith("sqlite_")]  # sqlite_sequence, sqlite_stat1: SQLite's own
    foreign = sorted(n for n in found if n not in own)
    if foreign:
        listed = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise ConfigError(f"{path} is another application's SQLite database: it has tables that a graftlab prediction "
                          f"log does not have ({listed}). graftlab adds no tables to it; the file is left as it was. "
                          + _WHICH_LOG)
    for name in found:
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({name})")]
        if columns != own[name]:
            raise ConfigError(f"{path} is not a graftlab prediction log: its {name} table has the columns "
                              f"{', '.join(columns)}, where graftlab's has {', '.join(own[name])}. The file is left as "
                              "it was. " + _WHICH_LOG)


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE_LIKE = re.compile(r"(?<![\w.])\+?\(?\d[\d ().-]{5,}\d(?![\w])")
_LONG_NUMBER = re.compile(r"\d{6,}")


def _phone_or_number(m: re.Match) -> str:
    found = m.group(0)
    digits = sum(c.isdigit() for c in found)
    if digits < 7:
        return found
    formatted = found.startswith("+") or not found.isdigit()  # a bare run of digits is a number, not a phone
    return "[PHONE]" if formatted and digits <= 15 else "[NUMBER]"


def redact(text: str) -> str:
    """Replace e-mail addresses with [EMAIL], phone numbers (7-15 digits with separators or a leading +) with
    [PHONE], and other runs of 6+ digits (account, order, card numbers) with [NUMBER]."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _PHONE_LIKE.sub(_phone_or_number, text)
    return _LONG_NUMBER.sub("[NUMBER]", text)


def input_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class PredictionRow:
    """One scored input."""

    request_id: str
    route: str
    model_version: str
    text: str | ImageInput
    prediction: str
    probabilities: dict[str, float]
    latency_ms: float
    ts: float = 0.0

    def values(self, log_inputs: bool) -> tuple:
        if isinstance(self.text, ImageInput):
            digest, stored = self.text.sha256, self.text.data_url if log_inputs else None
        else:
            digest = input_sha256(self.text)
            stored = redact(self.text).encode("utf-8", "replace").decode("utf-8") if log_inputs else None
        return (self.request_id, self.route, self.ts or time.time(), self.model_version, digest,
                stored, self.prediction, json.dumps(self.probabilities), max(self.probabilities.values()),
                float(self.latency_ms))


def _connect(path: Path) -> sqlite3.Connection:
    """Open the log for writing, after checking that it is one (switching to WAL already changes the file)."""
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
    try:
        _check_is_log(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a committed row survives a crash of the process or the machine
        conn.execute("PRAGMA busy_timeout=30000")
    except BaseException:
        conn.close()
        raise
    return conn


class PredictionLog:
    """The durable log. Every database call runs on one writer thread that owns the connection.

    Args:
        path: the SQLite file (created with its folder): a new or empty file, or a log written earlier.
        log_inputs: also store the (redacted) input text.

    Raises:
        ConfigError: ``path`` is another application's SQLite database (it is left as it was), is not a SQLite
            file, or cannot be opened or created.
    """

    def __init__(self, path: str | Path, log_inputs: bool = False) -> None:
        self.path = Path(path)
        self.log_inputs = log_inputs
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn: sqlite3.Connection = self._start()
        except sqlite3.OperationalError as e:  # "unable to open database file": a folder, or a place it cannot be made
            raise ConfigError(f"Cannot open or create the prediction log {path} ({e}). Pass --log-db a file name in a "
                              "folder you can write to.") from None
        except sqlite3.DatabaseError as e:
            raise ConfigError(f"The prediction log {path} is not a SQLite database ({e}). Pass --log-db the log an "
                              "earlier graft serve wrote, or a new file name (it is created).") from None
        except OSError as e:
            raise ConfigError(f"Cannot create the prediction log {path} ({e.strerror or e}). Pass --log-db a path in a "
                              "folder you can write to.") from None
        self._pending: list[tuple[list[PredictionRow], asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self.commits = 0

    def _start(self) -> sqlite3.Connection:
        """Start the writer thread and open the connection on it (the thread is stopped again if that fails)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graft-predlog")
        try:
            return self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    def _open(self) -> sqlite3.Connection:
        conn = _connect(self.path)
        conn.executescript(_SCHEMA)
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._executor.submit(self._conn.close).result()
            self._conn = None
        self._executor.shutdown(wait=True)

    # ---- writes -------------------------------------------------------------------------------------
    def _commit_rows(self, rows: list[PredictionRow]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?)",
                             [r.values(self.log_inputs) for r in rows])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.commits += 1

    def write_sync(self, rows: Sequence[PredictionRow]) -> None:
        """Commit ``rows`` now (blocking)."""
        self._executor.submit(self._commit_rows, list(rows)).result()

    async def write(self, rows: Sequence[PredictionRow]) -> None:
        """Commit ``rows``; returns once they are durable. Concurrent callers share a transaction."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((list(rows), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(future)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [r for rs, _ in batch for r in rs]
            try:
                await loop.run_in_executor(self._executor, self._commit_rows, rows)
            except Exception as e:  # noqa: BLE001 -- each waiting request gets the error
                for _, f in batch:
                    if not f.done():
                        f.set_exception(e)
            else:
                for _, f in batch:
                    if not f.done():
                        f.set_result(None)

    def _feedback(self, request_id: str, label: str) -> bool:
        conn = self._conn
        found = conn.execute("SELECT 1 FROM predictions WHERE request_id = ? AND route IN ('champion', 'canary')",
                             (request_id,)).fetchone()
        if not found:
            return False
        conn.execute("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?)", (request_id, time.time(), label))
        return True

    async def add_feedback(self, request_id: str, label: str) -> bool:
        """Record the true ``label`` of a served request; False when no such request was logged."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._feedback, request_id, label)

    # ---- reads --------------------------------------------------------------------------------------
    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._conn.execute(sql, params).fetchall()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run a read query on the writer thread (sees every committed row)."""
        return self._executor.submit(self._query, sql, params).result()

    def count(self, routes: Sequence[str] = SERVED_ROUTES) -> int:
        marks = ",".join("?" * len(routes))
        return int(self.query(f"SELECT COUNT(*) FROM predictions WHERE route IN ({marks})", tuple(routes))[0][0])


def _read(path: str | Path, sql: str, params: tuple) -> Any:
    """Run a read query on the log at ``path`` (which must exist: reading never creates a file).

    Raises:
        ConfigError: there is no file at ``path``, or it is not a prediction log written by ``graft serve``.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"There is no prediction log at {path}. " + _READ_HINT)
    conn = sqlite3.connect(str(path), timeout=30.0)
    try:
        return pd.read_sql_query(sql, conn, params=params)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as e:
        reason = e.__cause__ or e  # pandas wraps sqlite's error in one that quotes the SQL
        raise ConfigError(f"{path} is not a prediction log written by graft serve ({reason}). " + _READ_HINT) from None
    finally:
        conn.close()


def read_predictions(path: str | Path, since: float | None = None, routes: Sequence[str] = SERVED_ROUTES) -> Any:
    """The logged predictions (a pandas DataFrame; ``probabilities`` as JSON text) with their feedback label.

    Args:
        path: the SQLite file written by the server.
        since: only rows with ``ts`` (unix seconds) at or after this.
        routes: which routes to include (by default the rows that answered requests).

    Raises:
        ConfigError: there is no file at ``path``, or it is not a prediction log.
    """
    marks = ",".join("?" * len(routes))
    sql = (f"SELECT p.*, f.label AS true_label FROM predictions p LEFT JOIN feedback f ON f.request_id = p.request_id "
           f"WHERE p.route IN ({marks}) AND p.ts >= ? ORDER BY p.ts")
    return _read(path, sql, (*routes, since if since is not None else 0.0))


def read_feedback(path: str | Path) -> Any:
    """The feedback table as a pandas DataFrame.

    Raises:
        ConfigError: there is no file at ``path``, or it is not a prediction log.
    """
    return _read(path, "SELECT * FROM feedback ORDER BY ts", ())
