"""Safe rollout of a challenger: canary routing and the automatic rollback guard.

* ``shadow``: every request is also scored by the challenger (logged, never returned).
* ``canary``: ``percent`` % of requests, chosen by a hash of the request id (so a replay routes the
  same way), are answered by the challenger.

The :class:`RolloutGuard` watches the challenger over a count window of its latest requests: once at
least ``min_requests`` are in, it trips as soon as the error rate, the latency p95 or the disagreement
rate with the champion exceeds the policy's threshold, and the service goes back to champion-only.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .config import RolloutPolicy

__all__ = ["Observation", "RolloutEvent", "RolloutGuard", "in_canary"]


def in_canary(request_id: str, percent: float) -> bool:
    """Deterministic: the same request id always gets the same route for a given percent."""
    if percent <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") % 10_000
    return bucket < percent * 100


@dataclass
class Observation:
    """One challenger request: did it fail, how long it took, and (when known) whether it disagreed."""

    error: bool
    latency_ms: float
    disagree: bool | None = None


@dataclass
class RolloutEvent:
    """A change of the rollout state, shown in /admin/status and counted in /metrics."""

    kind: str  # rollback | promote | reload | start
    reason: str
    challenger: str | None
    at: float = field(default_factory=time.time)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RolloutGuard:
    """Counts challenger outcomes over a window and says when to roll back (thread-safe)."""

    def __init__(self, policy: RolloutPolicy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._obs: deque[Observation] = deque(maxlen=policy.window)
        self._agree: deque[bool] = deque(maxlen=policy.window)

    def reset(self) -> None:
        with self._lock:
            self._obs.clear()
            self._agree.clear()

    def record(self, obs: Observation) -> None:
        with self._lock:
            self._obs.append(obs)
            if obs.disagree is not None:
                self._agree.append(not obs.disagree)

    def record_disagreement(self, disagree: bool) -> None:
        """A comparison that arrived after its request (canary requests re-scored by the champion)."""
        with self._lock:
            self._agree.append(not disagree)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            obs = list(self._obs)
            agree = list(self._agree)
        ok = [o.latency_ms for o in obs if not o.error]
        return {
            "n": len(obs),
            "error_rate": float(np.mean([o.error for o in obs])) if obs else 0.0,
            "latency_p95_ms": float(np.percentile(ok, 95)) if ok else 0.0,
            "n_compared": len(agree),
            "disagreement": float(1.0 - np.mean(agree)) if agree else 0.0,
        }

    def verdict(self) -> str | None:
        """The reason to roll back now, or None while the challenger is within every threshold."""
        p = self.policy
        s = self.stats()
        if s["n"] >= p.min_requests:
            if s["error_rate"] > p.max_error_rate:
                return f"challenger error rate {s['error_rate']:.1%} > {p.max_error_rate:.1%} over the last {s['n']} requests"
            if s["latency_p95_ms"] > p.max_latency_p95_ms:
                return (f"challenger latency p95 {s['latency_p95_ms']:.0f} ms > {p.max_latency_p95_ms:.0f} ms "
                        f"over the last {s['n']} requests")
        if s["n_compared"] >= p.min_requests and s["disagreement"] > p.max_disagreement:
            return (f"challenger disagrees with the champion on {s['disagreement']:.1%} > {p.max_disagreement:.1%} "
                    f"of the last {s['n_compared']} compared requests")
        return None
