"""`graft monitor` given the wrong files or URL: a message naming them and exit code 2, before any work."""

import pytest
from monitor_fixtures import write_traffic
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import synthetic_reviews


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))


def monitor(*args):
    result = CliRunner().invoke(app, ["monitor", *map(str, args)])
    return result, " ".join(result.output.split())  # rich wraps long lines


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "reviews.csv"
    synthetic_reviews(5, seed=0).to_csv(path, index=False)
    return path


def test_a_log_that_is_not_a_prediction_log_is_named(tfidf_model, tmp_path, data_file):
    import sqlite3

    other = tmp_path / "other.db"  # a SQLite file of something else
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE runs (id TEXT)")
    conn.close()
    for path, reason in ((data_file, "file is not a database"), (other, "no such table: predictions")):
        res, text = monitor(tfidf_model, "--log-db", path, "--window", "all")
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert f"{path} is not a prediction log written by graft serve ({reason})" in text


def test_an_existing_file_as_report_folder_is_refused_and_kept(tfidf_model, tmp_path, data_file):
    before = data_file.read_bytes()
    res, text = monitor(tfidf_model, "--log-db", tmp_path / "log.db", "--window", "all", "--out", data_file)
    assert res.exit_code == 2, res.output
    assert f"The report folder {data_file} is a file" in text and "pass --out a new or existing folder" in text
    assert data_file.read_bytes() == before


@pytest.mark.parametrize("url", ["notaurl", "ftp://example.com/hook", "http://"])
def test_a_webhook_that_is_not_an_http_url_is_refused_before_any_work(tfidf_model, tmp_path, url):
    res, text = monitor(tfidf_model, "--log-db", tmp_path / "missing.db", "--webhook", url)
    assert res.exit_code == 2, res.output
    assert f"The webhook {url!r} is not an http:// or https:// URL with a host" in text


def test_a_failed_webhook_names_its_url(tfidf_model, tmp_path):
    db = tmp_path / "log.db"
    short = [" ".join(t.split()[:2]) for t in synthetic_reviews(150, seed=11).review]  # fires the drift alarm
    write_traffic(db, tfidf_model, short)
    res, text = monitor(tfidf_model, "--log-db", db, "--window", "all", "--out", tmp_path / "rep",
                        "--webhook", "http://127.0.0.1:1/alerts", "--permutations", "199")
    assert res.exit_code == 1, res.output
    assert "webhook to http://127.0.0.1:1/alerts failed (ConnectError" in text
    assert (tmp_path / "rep" / "monitor.json").is_file()
