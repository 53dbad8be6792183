"""Prometheus metrics of one app, in its own registry (several apps can live in one process)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "ServingMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """Requests, errors, latency, predictions per class, mean confidence per model version, rollout state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("graft_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "method", "status"], registry=r)
        self.errors = Counter("graft_errors", "HTTP responses with status >= 400 by endpoint and status code",
                              ["endpoint", "status"], registry=r)
        self.latency = Histogram("graft_request_latency_seconds", "HTTP request latency by endpoint",
                                 ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.predictions = Counter("graft_predictions", "Predicted labels by model version and route",
                                   ["model_version", "route", "label"], registry=r)
        self.confidence_mean = Gauge("graft_confidence_mean", "Mean top-class probability by model version and route",
                                     ["model_version", "route"], registry=r)
        self.model_latency = Histogram("graft_model_latency_seconds", "Time from submission to scores, per model version",
                                       ["model_version", "route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.model_errors = Counter("graft_model_errors", "Model calls that raised, per model version and route",
                                    ["model_version", "route"], registry=r)
        self.batch_size = Histogram("graft_batch_size", "Texts per model call (micro-batching)",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.model_info = Gauge("graft_model_info", "Loaded models (value 1) by role and version",
                                ["role", "model_version", "quantized"], registry=r)
        self.challenger_active = Gauge("graft_challenger_active", "1 while a shadow or canary challenger gets traffic",
                                       registry=r)
        self.rollbacks = Counter("graft_rollbacks", "Rollbacks to champion-only", ["trigger"], registry=r)
        self.feedback = Counter("graft_feedback", "Feedback labels received", ["label"], registry=r)
        self._lock = threading.Lock()
        self._conf: dict[tuple[str, str], tuple[float, int]] = {}

    def observe_predictions(self, version: str, route: str, labels: Sequence[str], confidences: Sequence[float],
                            seconds: float) -> None:
        for label in labels:
            self.predictions.labels(version, route, label).inc()
        self.model_latency.labels(version, route).observe(seconds)
        with self._lock:
            total, n = self._conf.get((version, route), (0.0, 0))
            total, n = total + float(sum(confidences)), n + len(confidences)
            self._conf[(version, route)] = (total, n)
        if n:
            self.confidence_mean.labels(version, route).set(total / n)

    def set_models(self, models: dict[str, tuple[str, bool]]) -> None:
        """``{role: (version, quantized)}`` of the loaded models; older entries are removed."""
        self.model_info.clear()
        for role, (version, quantized) in models.items():
            self.model_info.labels(role, version, str(quantized).lower()).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
