"""monitor.html: the report's template styles, and every piece of the monitoring record on the page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from graftlab.core.results import StrategySummary, StudyResults
from graftlab.monitoring.report import render_html
from graftlab.reporting import render_report


def monitor_record(alerts: bool = True) -> dict[str, Any]:
    """A monitoring record as run_monitor writes it (the keys the page reads)."""
    return {
        "created": "2026-12-01T10:00:00+00:00",
        "log_db": "/srv/<log>.db",
        "model": {"name": "fine-foods <v2>", "version": "3", "label_names": ["great", "other"]},
        "window": {"description": "last 24h", "n_requests": 812},
        "alerts": [{"kind": "drift", "message": "input_length drifted (Holm p < 0.001)"},
                   {"kind": "performance", "message": "accuracy fell by 0.12"}] if alerts else [],
        "notes": ["Texts are not logged: start the server with --log-inputs."],
        "drift": {"rule": "Holm-adjusted p < alpha on any test", "alpha": 0.01, "tests": [
            {"name": "confidence_ks", "available": True, "statistic": 0.0412, "p_value": 0.5123, "p_adjusted": 1.0,
             "rejected": False, "message": ""},
            {"name": "input_length", "available": True, "statistic": 0.3117, "p_value": 1.2e-9, "p_adjusted": 4.8e-9,
             "rejected": True, "message": ""},
            {"name": "mmd", "available": False, "statistic": None, "p_value": None, "p_adjusted": None,
             "rejected": False, "message": "no embeddings in the reference profile"},
        ]},
        "performance": {"n_labeled": 120, "comparison": {
            "accuracy": {"live": {"value": 0.75, "ci_low": 0.68, "ci_high": 0.82}, "validation": 0.87, "drop": 0.12},
        }},
    }


def style(html: str) -> str:
    return "\n".join(re.findall(r"<style>(.*?)</style>", html, re.S)).strip()


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def report_html(tmp_path) -> str:
    results = StudyResults(study="s", run_id="r", strategies={"majority": StrategySummary(kind="baseline")},
                           winner="majority")
    return render_report(results, tmp_path).read_text()


def test_the_page_uses_the_study_reports_styles(report_html):
    html = render_html(monitor_record(), {})
    page_style = style(html)
    assert len(page_style) > 2000 and page_style in style(report_html)  # one stylesheet, not a plainer copy
    for shared in ('<header class="top">', '<nav class="toc">', '<main>', '<div class="banner ', '<section id="',
                   '<div class="table-wrap"><table', '<thead><tr>'):
        assert shared in html and shared in report_html


def test_the_page_shows_everything_the_record_holds():
    record = monitor_record()
    html = render_html(record, {"drift_tests": "QUJD", "confidence_histogram": "REVG"})
    text = visible_text(html)
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert "fine-foods &lt;v2&gt;" in html and "<v2>" not in html  # escaped once, not twice
    assert "2026-12-01T10:00:00+00:00" in text and "last 24h" in text and "/srv/&lt;log&gt;.db" in html
    assert "812 requests" in text and "120 with feedback" in text
    assert 'class="banner fail"' in html
    for alert in record["alerts"]:
        assert alert["kind"] in text and alert["message"].replace("<", "&lt;") in html
    assert "--log-inputs" in text
    assert "Holm-adjusted p &lt; alpha on any test (alpha = 0.01)" in html
    assert "confidence_ks 0.041 0.512 1.000 no evidence of drift" in text
    assert "input_length 0.312 1.20e-09 4.80e-09 drift" in text
    assert "mmd – – – no embeddings in the reference profile" in text
    assert "accuracy 0.750 [0.680, 0.820] 0.870 0.120" in text
    assert 'alt="Drift tests" src="data:image/png;base64,QUJD"' in html
    assert 'alt="Confidence distribution" src="data:image/png;base64,REVG"' in html


def test_a_quiet_window_says_so():
    record = monitor_record(alerts=False)
    record["performance"] = {"n_labeled": 0, "comparison": None, "message": "No feedback labels in the window."}
    html = render_html(record, {})
    assert 'class="banner pass"' in html and "No alert." in html
    assert "No feedback labels in the window." in html
    assert "<h2>Plots</h2>" not in html and "<img" not in html
