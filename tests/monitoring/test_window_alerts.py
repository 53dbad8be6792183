"""Window parsing, live-performance alerts and the webhook."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from graftlab.core.errors import ConfigError
from graftlab.monitoring import (
    MonitorPolicy,
    live_performance,
    parse_window,
    performance_alerts,
    select_window,
    send_webhook,
)


@pytest.mark.parametrize("spec, kind, seconds, count", [
    ("1d", "time", 86_400, None), ("12h", "time", 43_200, None), ("30m", "time", 1_800, None),
    ("2w", "time", 1_209_600, None), ("90s", "time", 90, None), ("1.5h", "time", 5_400, None),
    ("500", "count", None, 500), (250, "count", None, 250), ("all", "all", None, None),
])
def test_parse_window(spec, kind, seconds, count):
    w = parse_window(spec)
    assert (w.kind, w.seconds, w.count) == (kind, seconds, count)


@pytest.mark.parametrize("spec", ["", "1y", "d", "-5", "0", "0h", "1 day", "abc"])
def test_parse_window_rejects_with_a_message(spec):
    with pytest.raises(ConfigError, match="'window' parameter"):
        parse_window(spec)


def test_select_window_by_time_and_count():
    frame = pd.DataFrame({"ts": [100.0, 50.0, 300.0, 200.0], "x": [1, 0, 3, 2]})
    assert select_window(frame, parse_window("2m"), now=310.0)["x"].tolist() == [2, 3]  # ts >= 190
    assert select_window(frame, parse_window("3"))["x"].tolist() == [1, 2, 3]  # the newest 3, oldest first
    assert select_window(frame, parse_window("all"))["x"].tolist() == [0, 1, 2, 3]


def labeled(n: int, accuracy: float, seed: int = 0):
    """n labels and probabilities over ('a', 'b') that are right on a share ``accuracy`` of rows."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    right = np.arange(n) < round(accuracy * n)
    pred = np.where(right, truth, 1 - truth)
    proba = np.where(pred[:, None] == np.arange(2), 0.8, 0.2)
    return [("a", "b")[t] for t in truth], proba


def test_performance_alert_below_ratio_and_drop():
    policy = MonitorPolicy(bootstrap=200)
    truth, proba = labeled(200, 0.80)
    live = live_performance(truth, proba, ["a", "b"], policy)
    assert live["metrics"]["accuracy"]["value"] == pytest.approx(0.80)
    alerts, rows = performance_alerts(live, {"accuracy": 0.90, "macro_f1": 0.90}, policy)
    acc = next(a for a in alerts if a.evidence["metric"] == "accuracy")
    assert rows["accuracy"]["below_ratio"] and rows["accuracy"]["dropped"]  # 0.80 < 0.81, drop 0.10 >= 0.05
    assert "0.800" in acc.message and "validation 0.900" in acc.message


def test_no_alert_within_thresholds_and_drop_rule_alone():
    policy = MonitorPolicy(bootstrap=200, metrics=["accuracy"])
    truth, proba = labeled(200, 0.87)
    live = live_performance(truth, proba, ["a", "b"], policy)
    assert performance_alerts(live, {"accuracy": 0.90}, policy)[0] == []  # drop 0.03, ratio 0.967
    alerts, rows = performance_alerts(live, {"accuracy": 0.93}, policy)  # drop 0.06 >= 0.05, ratio 0.935 > 0.9
    assert len(alerts) == 1 and rows["accuracy"]["dropped"] and not rows["accuracy"]["below_ratio"]
    looser = MonitorPolicy(bootstrap=200, metrics=["accuracy"], max_drop=0.10)
    assert performance_alerts(live, {"accuracy": 0.93}, looser)[0] == []


def test_ci_basis_needs_the_whole_interval_past_the_threshold():
    truth, proba = labeled(60, 0.80)
    point = MonitorPolicy(bootstrap=300, metrics=["accuracy"], min_labels=10)
    ci = MonitorPolicy(bootstrap=300, metrics=["accuracy"], min_labels=10, basis="ci_high")
    val = {"accuracy": 0.86}  # 0.80 is 6 points below, but the CI of 60 labels reaches above 0.81
    assert performance_alerts(live_performance(truth, proba, ["a", "b"], point), val, point)[0]
    assert performance_alerts(live_performance(truth, proba, ["a", "b"], ci), val, ci)[0] == []


def test_too_few_labels_and_unknown_labels_give_no_alert():
    policy = MonitorPolicy(bootstrap=200, min_labels=30)
    truth, proba = labeled(20, 0.1)
    live = live_performance(truth, proba, ["a", "b"], policy)
    assert live["metrics"] is None and "min_labels=30" in live["message"]
    assert performance_alerts(live, {"accuracy": 0.9}, policy)[0] == []
    truth, proba = labeled(40, 1.0)
    live = live_performance(truth + ["zzz"] * 5, np.vstack([proba, proba[:5]]), ["a", "b"], policy)
    assert live["n_labeled"] == 40 and live["n_unknown_labels"] == 5
    assert live["metrics"]["accuracy"]["value"] == 1.0


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A local HTTP server on 127.0.0.1 that records POSTed JSON; stopped after the test."""
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_webhook_posts_json(receiver):
    url, received = receiver
    out = send_webhook(f"{url}/hook", {"alerts": [{"kind": "drift"}]})
    assert out == {"sent": True, "status_code": 204, "error": None}
    assert received == [("/hook", "application/json", {"alerts": [{"kind": "drift"}]})]


def test_webhook_failure_is_reported_not_raised():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = send_webhook(f"http://127.0.0.1:{port}/hook", {"x": 1}, timeout=1.0)
    assert out["sent"] is False and out["status_code"] is None and "ConnectError" in out["error"]
