"""run_monitor and `graft monitor` on a real prediction log: reports, alerts, exit codes, webhook."""

import json
import re

import numpy as np
import pytest
from monitor_fixtures import fit_tfidf, reference_profile
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.monitoring import MonitorPolicy, latest_report, run_monitor
from graftlab.testing import synthetic_reviews

FAST = MonitorPolicy(permutations=199, bootstrap=200)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))


def same_texts(n=150, seed=11):
    return synthetic_reviews(n, seed=seed).review.tolist()


def test_same_distribution_traffic_gives_no_alert_and_a_complete_report(tfidf_model, traffic, tmp_path):
    db = tmp_path / "log.db"
    traffic(db, tfidf_model, same_texts())
    res = run_monitor(tfidf_model, db, window="all", policy=FAST, out_dir=tmp_path / "rep")
    r = res.report
    assert res.exit_code == 0 and r["alerts"] == [] and not r["drift"]["alarm"]
    assert r["window"]["n_requests"] == 150 and r["window"]["n_with_text"] == 150
    tests = {t["name"]: t for t in r["drift"]["tests"]}
    assert {n for n, t in tests.items() if t["available"]} == {"confidence_ks", "class_chi2", "input_length", "empty_rate"}
    assert "no embeddings" in tests["mmd"]["message"]  # a TF-IDF model has no backbone reference
    assert "Holm" in r["drift"]["rule"]
    assert r["timeline"] and sum(b["n"] for b in r["timeline"]) == 150
    on_disk = json.loads((tmp_path / "rep" / "monitor.json").read_text())
    assert on_disk["model"]["name"] == "tiny-monitor" and on_disk["exit_code"] == 0


def test_shifted_traffic_fires_the_drift_alarm(tfidf_model, traffic, tmp_path):
    db = tmp_path / "log.db"
    short = [" ".join(t.split()[:2]) for t in same_texts()]
    traffic(db, tfidf_model, short)
    res = run_monitor(tfidf_model, db, window="all", policy=FAST, out_dir=tmp_path / "rep")
    assert res.exit_code == 1 and res.report["drift"]["alarm"]
    assert "input_length" in res.report["drift"]["rejected"]
    assert res.alerts[0].kind == "drift"


def test_without_logged_texts_the_text_checks_say_how_to_enable_them(tfidf_model, traffic, tmp_path):
    db = tmp_path / "log.db"
    traffic(db, tfidf_model, same_texts(), log_inputs=False)
    r = run_monitor(tfidf_model, db, window="all", policy=FAST, out_dir=tmp_path / "rep").report
    tests = {t["name"]: t for t in r["drift"]["tests"]}
    for name in ("mmd", "domain_classifier", "input_length", "empty_rate"):
        assert not tests[name]["available"] and "--log-inputs" in tests[name]["message"]
    assert tests["confidence_ks"]["available"] and tests["class_chi2"]["available"]
    assert any("--log-inputs" in n for n in r["notes"])


def test_contradicting_feedback_raises_a_performance_alert(tfidf_model, traffic, tmp_path):
    from graftlab.packaging import load_model

    db = tmp_path / "log.db"
    texts = same_texts()
    model = load_model(tfidf_model)
    wrong = [{"great": "other", "other": "great"}[p] for p in model.predict(texts)]
    traffic(db, tfidf_model, texts, labels=wrong)
    res = run_monitor(tfidf_model, db, window="all", policy=FAST, out_dir=tmp_path / "rep")
    perf = res.report["performance"]
    assert perf["n_labeled"] == 150 and perf["metrics"]["accuracy"]["value"] == 0.0
    assert {a.kind for a in res.alerts} == {"performance"} and res.exit_code == 1
    assert {a.evidence["metric"] for a in res.alerts} == {"accuracy", "macro_f1"}


def test_windows_select_recent_requests(tfidf_model, traffic, tmp_path):
    db = tmp_path / "log.db"
    traffic(db, tfidf_model, same_texts(60, seed=1), start=1_000.0)  # old traffic
    traffic(db, tfidf_model, same_texts(40, seed=2), start=10_000.0)
    r = run_monitor(tfidf_model, db, window="1h", policy=FAST, out_dir=tmp_path / "a", now=10_100.0).report
    assert r["window"]["n_requests"] == 40
    r = run_monitor(tfidf_model, db, window="70", policy=FAST, out_dir=tmp_path / "b").report
    assert r["window"]["n_requests"] == 70
    r = run_monitor(tfidf_model, db, window="1h", policy=FAST, out_dir=tmp_path / "c", now=50_000.0).report
    assert r["window"]["n_requests"] == 0 and r["exit_code"] == 0
    assert all("min_requests" in t["message"] for t in r["drift"]["tests"])


def test_html_report_is_self_contained(tfidf_model, traffic, tmp_path):
    db = tmp_path / "log.db"
    texts = same_texts()
    traffic(db, tfidf_model, texts, labels=["great"] * len(texts))
    res = run_monitor(tfidf_model, db, window="all", policy=FAST, webhook=None)  # default folder
    html = res.paths["html"].read_text()
    assert html.startswith("<!doctype html>") and "tiny-monitor" in html
    assert len(re.findall(r"data:image/png;base64,", html)) >= 4  # drift tests, confidence, classes, accuracy...
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", html)
    assert "http://" not in html and "https://" not in html
    assert latest_report("tiny-monitor").resolve() == res.paths["json"].resolve()


def test_embedding_drift_with_a_backbone_reference(tmp_path, traffic):
    from graftlab.backbones import get_backbone
    from graftlab.packaging import export_model
    from graftlab.testing import make_tiny_bert

    bert = make_tiny_bert(tmp_path / "bert")
    predictor, texts, y, names = fit_tfidf()
    emb = get_backbone(str(bert)).embed(texts, max_length=32)
    ref = reference_profile(texts, predictor.predict_proba(texts), y, names, emb, backbone=str(bert))
    folder = export_model(predictor, tmp_path / "model", {"name": "emb-model", "temperature": 1.0, "max_length": 32},
                          reference=ref)
    same, other = tmp_path / "same.db", tmp_path / "other.db"
    traffic(same, folder, same_texts(120))
    traffic(other, folder, ["price " * (i % 4 + 1) + "box" for i in range(120)])
    r_same = run_monitor(folder, same, window="all", policy=FAST, out_dir=tmp_path / "s").report
    r_other = run_monitor(folder, other, window="all", policy=FAST, out_dir=tmp_path / "o").report
    t_same = {t["name"]: t for t in r_same["drift"]["tests"]}
    t_other = {t["name"]: t for t in r_other["drift"]["tests"]}
    assert t_same["mmd"]["available"] and t_same["mmd"]["p_value"] > 0.01
    assert abs(t_same["domain_classifier"]["statistic"] - 0.5) < 0.15
    assert t_other["mmd"]["p_value"] < 0.01 and t_other["domain_classifier"]["statistic"] > 0.9
    assert r_other["drift"]["alarm"] and "mmd" in r_other["drift"]["rejected"]


# -- the CLI ----------------------------------------------------------------------------------------
def cli(*args):
    return CliRunner().invoke(app, ["monitor", *map(str, args), "--permutations", "199"])


def test_cli_exit_codes(tfidf_model, traffic, tmp_path):
    from graftlab.packaging import load_model

    ok_db, bad_db = tmp_path / "ok.db", tmp_path / "bad.db"
    traffic(ok_db, tfidf_model, same_texts())
    texts = same_texts(seed=12)
    wrong = [{"great": "other", "other": "great"}[p] for p in load_model(tfidf_model).predict(texts)]
    traffic(bad_db, tfidf_model, texts, labels=wrong)

    ok = cli(tfidf_model, "--log-db", ok_db, "--window", "all", "--out", tmp_path / "ok")
    assert ok.exit_code == 0, ok.output
    assert "No alert" in ok.output and (tmp_path / "ok" / "monitor.html").is_file()
    bad = cli(tfidf_model, "--log-db", bad_db, "--window", "all", "--out", tmp_path / "bad")
    assert bad.exit_code == 1, bad.output
    assert "ALERT (performance)" in bad.output
    for args, message in (
        (["--log-db", ok_db, "--window", "yesterday"], "'window' parameter"),
        (["--log-db", tmp_path / "missing.db"], "no prediction log"),
        (["--log-db", ok_db, "--alpha", "2"], "alpha"),
    ):
        res = cli(tfidf_model, *args)
        assert res.exit_code == 2, res.output
        assert message in res.output.replace("\n", " ")


def test_cli_webhook_is_posted_when_an_alert_fires(tfidf_model, traffic, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        db = tmp_path / "log.db"
        traffic(db, tfidf_model, [" ".join(t.split()[:2]) for t in same_texts()])
        res = cli(tfidf_model, "--log-db", db, "--window", "all", "--out", tmp_path / "rep",
                  "--webhook", f"http://127.0.0.1:{server.server_address[1]}/alerts")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert res.exit_code == 1, res.output
    assert len(got) == 1 and got[0]["event"] == "monitor_alert" and got[0]["model"] == "tiny-monitor"
    assert got[0]["drift_alarm"] is True and got[0]["alerts"][0]["kind"] == "drift"
    written = json.loads((tmp_path / "rep" / "monitor.json").read_text())
    assert written["webhook"]["sent"] is True and written["webhook"]["url_host"].startswith("127.0.0.1:")


def test_live_embeddings_are_rounded_like_the_reference(tmp_path, traffic):
    """A near-constant dimension is exactly 0 in the (rounded) reference; unrounded live values would let the
    domain classifier separate the samples without any drift."""
    from graftlab.packaging import export_model

    rng = np.random.default_rng(0)

    def vectors(n):
        v = rng.normal(size=(n, 6))
        v[:, 0] *= 1e-7  # rounds to 0 at 5 decimals
        return v

    predictor, texts, y, names = fit_tfidf()
    ref = reference_profile(texts, predictor.predict_proba(texts), y, names, vectors(len(texts)), backbone="none")
    folder = export_model(predictor, tmp_path / "model", {"name": "rounding", "temperature": 1.0}, reference=ref)
    db = tmp_path / "log.db"
    traffic(db, folder, same_texts(120))
    r = run_monitor(folder, db, window="all", policy=FAST, out_dir=tmp_path / "rep", embed_fn=lambda b: vectors(len(b)),
                    html=False)
    tests = {t["name"]: t for t in r.report["drift"]["tests"]}
    assert abs(tests["domain_classifier"]["statistic"] - 0.5) < 0.15 and not r.report["drift"]["alarm"]
    assert "html" not in r.paths
