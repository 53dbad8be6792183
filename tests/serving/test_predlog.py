"""The prediction log: durable settings, group commit, feedback join, redaction of personal data, and the files
it refuses (another application's database is left as it was)."""

import asyncio
import sqlite3

import pytest

from graftlab.core.errors import ConfigError
from graftlab.serving.predlog import (
    PredictionLog,
    PredictionRow,
    input_sha256,
    read_feedback,
    read_predictions,
    redact,
)


def row(rid: str, route: str = "champion", text: str = "good tea") -> PredictionRow:
    return PredictionRow(rid, route, "m#1", text, "great", {"great": 0.8, "other": 0.2}, 3.5)


@pytest.mark.parametrize("text, expected", [
    ("mail me at jane.doe+tea@example.co.uk now", "mail me at [EMAIL] now"),
    ("call +1 (555) 123-4567 today", "call [PHONE] today"),
    ("call 555.123.4567", "call [PHONE]"),
    ("card 4111 1111 1111 1111 2222 ok", "card [NUMBER] ok"),
    ("order 12345678 arrived", "order [NUMBER] arrived"),
    ("2 bags for 3.99, 12 oz each, 5 stars", "2 bags for 3.99, 12 oz each, 5 stars"),
])
def test_redaction(text, expected):
    assert redact(text) == expected


def test_log_is_wal_with_full_sync_and_stores_text_only_when_asked(tmp_path):
    for log_inputs in (False, True):
        path = tmp_path / f"log{log_inputs}.db"
        log = PredictionLog(path, log_inputs=log_inputs)
        try:
            assert log.query("PRAGMA journal_mode")[0][0] == "wal"
            assert log.query("PRAGMA synchronous")[0][0] == 2  # FULL
            log.write_sync([row("a", text="write to bob@example.com")])
        finally:
            log.close()
        conn = sqlite3.connect(path)
        text, sha = conn.execute("SELECT input_text, input_sha256 FROM predictions").fetchone()
        conn.close()
        assert sha == input_sha256("write to bob@example.com")
        assert text == ("write to [EMAIL]" if log_inputs else None)


def test_concurrent_writes_share_commits_and_feedback_joins(tmp_path):
    log = PredictionLog(tmp_path / "log.db")

    async def main():
        await asyncio.gather(*(log.write([row(f"r{i}")]) for i in range(50)))
        await log.write([row("r0", route="shadow")])
        assert await log.add_feedback("r3", "other")
        assert not await log.add_feedback("missing", "other")

    try:
        asyncio.run(main())
        assert log.count() == 50  # shadow rows are not served rows
        assert log.commits < 50  # group commit: concurrent requests share transactions
    finally:
        log.close()
    frame = read_predictions(tmp_path / "log.db")
    assert len(frame) == 50 and set(frame.route) == {"champion"}
    assert frame.set_index("request_id").loc["r3", "true_label"] == "other"
    assert frame.true_label.notna().sum() == 1
    assert len(read_predictions(tmp_path / "log.db", routes=("shadow",))) == 1
    assert read_feedback(tmp_path / "log.db").request_id.tolist() == ["r3"]


# -- which files the log opens ---------------------------------------------------------------------------
def foreign_db(path, *tables: str):
    conn = sqlite3.connect(path)
    for t in tables:
        conn.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, note TEXT)")
        conn.execute(f"INSERT INTO {t} (note) VALUES ('keep me')")
    conn.commit()
    conn.close()
    return path


def test_another_applications_database_is_refused_and_left_as_it_was(tmp_path):
    path = foreign_db(tmp_path / "app.db", "users", "orders")
    before = path.read_bytes()
    with pytest.raises(ConfigError) as err:
        PredictionLog(path)
    text = str(err.value)
    assert f"{path} is another application's SQLite database" in text
    assert "(orders, users)" in text and "Pass --log-db a new file name" in text and "own prediction log" in text
    assert path.read_bytes() == before  # not even switched to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_a_table_of_the_logs_name_with_other_columns_is_refused(tmp_path):
    path = foreign_db(tmp_path / "scores.db", "predictions")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="its predictions table has the columns id, note, where graftlab's has "
                                          "request_id, route"):
        PredictionLog(path)
    assert path.read_bytes() == before


def test_an_empty_file_a_new_path_and_an_earlier_log_are_opened(tmp_path):
    (tmp_path / "empty.db").touch()
    for path in (tmp_path / "empty.db", tmp_path / "new" / "log.db"):
        log = PredictionLog(path)
        log.write_sync([row("a")])
        log.close()
    conn = sqlite3.connect(tmp_path / "empty.db")
    conn.execute("ANALYZE")  # SQLite's own sqlite_stat1 table is not another application's
    conn.close()
    log = PredictionLog(tmp_path / "empty.db")
    try:
        log.write_sync([row("b")])
        assert log.count() == 2
    finally:
        log.close()


def test_reading_a_file_that_is_not_a_log_says_so_and_creates_nothing(tmp_path):
    foreign = foreign_db(tmp_path / "app.db", "users")
    for read, table in ((read_predictions, "predictions"), (read_feedback, "feedback")):
        with pytest.raises(ConfigError, match=f"app.db is not a prediction log written by graft serve "
                                              f"\\(no such table: {table}\\)"):
            read(foreign)
        with pytest.raises(ConfigError, match="There is no prediction log at .*missing.db. Pass --log-db"):
            read(tmp_path / "missing.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
