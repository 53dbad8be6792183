"""Monitoring: drift and live performance of a served model, from the prediction log and the model's
reference profile; alerts, a JSON + HTML report and an optional webhook. Entry point :func:`run_monitor`
(``graft monitor``). Statistics come from scipy and scikit-learn."""

from .alerts import Alert, MonitorPolicy, check_webhook_url, live_performance, performance_alerts, send_webhook
from .drift import (
    ALARM_RULE,
    DriftTest,
    class_chi2,
    confidence_ks,
    domain_classifier_test,
    drift_alarm,
    empty_rate_test,
    holm,
    input_length_test,
    mmd_test,
)
from .monitor import MonitorResult, latest_report, monitor_dir, read_log, run_monitor
from .window import Window, parse_window, select_window

__all__ = [
    "ALARM_RULE",
    "Alert",
    "DriftTest",
    "MonitorPolicy",
    "MonitorResult",
    "Window",
    "check_webhook_url",
    "class_chi2",
    "confidence_ks",
    "domain_classifier_test",
    "drift_alarm",
    "empty_rate_test",
    "holm",
    "input_length_test",
    "latest_report",
    "live_performance",
    "mmd_test",
    "monitor_dir",
    "parse_window",
    "performance_alerts",
    "read_log",
    "run_monitor",
    "select_window",
    "send_webhook",
]
