"""Alert policy, live performance from feedback labels, and the optional webhook notification."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError

from ..core.config import Strict, format_validation_error
from ..core.errors import ConfigError
from ..evaluation import metrics_with_ci

__all__ = ["Alert", "MonitorPolicy", "check_webhook_url", "live_performance", "performance_alerts", "send_webhook"]

log = logging.getLogger("graftlab.monitoring")


class MonitorPolicy(Strict):
    """When ``graft monitor`` raises an alert, and how much evidence each check needs."""

    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=0.05, description="family-wise false-alarm rate of the drift alarm (Holm over all drift tests)")
    min_ratio: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.90, description="alert when a live metric is below this share of its validation value")
    max_drop: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.05, description="alert when a live metric is this much (absolute) below validation")
    basis: Literal["point", "ci_high"] = Field(
        default="point", description="judge the live metric by its point estimate, or only alert when even the "
                                     "upper end of its CI is past the threshold")
    metrics: list[Literal["accuracy", "macro_f1"]] = Field(default_factory=lambda: ["accuracy", "macro_f1"])
    min_labels: Annotated[int, Field(ge=1)] = Field(default=30, description="feedback labels needed to judge performance")
    min_requests: Annotated[int, Field(ge=2)] = Field(default=30, description="requests needed to test for drift")
    permutations: Annotated[int, Field(ge=99, le=100_000)] = 1000
    folds: Annotated[int, Field(ge=2, le=20)] = 5
    bootstrap: Annotated[int, Field(ge=100, le=100_000)] = 1000
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    max_embed: Annotated[int, Field(ge=10)] = Field(default=1000, description="live texts embedded at most (a seeded sample)")
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "monitor options") -> MonitorPolicy:
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, cls, source)) from None


@dataclass
class Alert:
    """Something a person should look at: ``kind`` is ``drift`` or ``performance``."""

    kind: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def live_performance(true_labels: list[str], probabilities: np.ndarray, label_names: list[str],
                     policy: MonitorPolicy) -> dict[str, Any]:
    """Accuracy and macro-F1 (with bootstrap CIs) of the served predictions that received feedback.

    Args:
        true_labels: the feedback labels (strings); labels the model does not know are counted and skipped.
        probabilities: (n, k) the logged probabilities, columns in ``label_names`` order.

    Returns:
        ``{"n_labeled", "n_unknown_labels", "metrics": {name: {value, ci_low, ci_high}} | None, "message"}``.
    """
    index = {n: i for i, n in enumerate(label_names)}
    known = np.array([t in index for t in true_labels], dtype=bool)
    n = int(known.sum())
    out: dict[str, Any] = {"n_labeled": n, "n_unknown_labels": int((~known).sum()), "metrics": None, "message": ""}
    if n < policy.min_labels:
        out["message"] = (f"{n} feedback labels in the window; at least min_labels={policy.min_labels} are needed to "
                          "judge live performance.")
        return out
    y = np.array([index[t] for t, k in zip(true_labels, known, strict=True) if k], dtype=np.int64)
    proba = np.asarray(probabilities, dtype=float)[known]
    out["metrics"] = metrics_with_ci(y, proba, tuple(policy.metrics), n_boot=policy.bootstrap,
                                     confidence=policy.confidence, seed=policy.seed)
    return out


def performance_alerts(live: dict[str, Any], validation: dict[str, Any], policy: MonitorPolicy) -> tuple[list[Alert], dict]:
    """Compare each live metric with its validation value: alert below ``min_ratio`` x validation or at a drop
    of ``max_drop`` or more. Returns (alerts, per-metric comparison)."""
    alerts: list[Alert] = []
    rows: dict[str, Any] = {}
    for name in policy.metrics:
        got = (live.get("metrics") or {}).get(name)
        val = validation.get(name)
        if got is None or not isinstance(val, (int, float)):
            continue
        judged = got["value"] if policy.basis == "point" else got["ci_high"]
        ratio_floor, drop_floor = policy.min_ratio * val, val - policy.max_drop
        below_ratio, dropped = bool(judged < ratio_floor), bool(judged <= drop_floor + 1e-12)
        rows[name] = {"live": got, "validation": float(val), "drop": float(val - got["value"]),
                      "ratio": float(got["value"] / val) if val else None, "judged": judged,
                      "below_ratio": below_ratio, "dropped": dropped}
        if below_ratio or dropped:
            why = []
            if below_ratio:
                why.append(f"below {policy.min_ratio:.0%} of validation ({ratio_floor:.3f})")
            if dropped:
                why.append(f"{val - got['value']:.3f} below validation (alert at a drop of {policy.max_drop:.3f})")
            alerts.append(Alert("performance",
                                f"live {name} {got['value']:.3f} [{got['ci_low']:.3f}, {got['ci_high']:.3f}] on "
                                f"{live['n_labeled']} labeled requests vs validation {val:.3f}: " + " and ".join(why),
                                {"metric": name, **rows[name]}))
    return alerts, rows


def check_webhook_url(url: str) -> None:
    """Refuse, before any work, a webhook that is not an http(s) URL with a host.

    Raises:
        ConfigError: naming the URL and the form expected.
    """
    from urllib.parse import urlparse

    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"The webhook {url!r} is not an http:// or https:// URL with a host; pass one such as "
                          "https://hooks.example.com/graft.")


def send_webhook(url: str, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """POST ``payload`` as JSON to ``url``; a failure is logged and returned, never raised."""
    import httpx

    try:
        response = httpx.post(url, json=payload, timeout=timeout)
        ok = response.status_code < 400
        if not ok:
            log.warning("the webhook answered HTTP %s", response.status_code)
        return {"sent": ok, "status_code": response.status_code, "error": None if ok else f"HTTP {response.status_code}"}
    except httpx.HTTPError as e:
        log.warning("could not deliver the webhook: %s", e)
        return {"sent": False, "status_code": None, "error": f"{type(e).__name__}: {e}"}
