"""Canary routing and the rollback guard, without HTTP."""

import uuid

import pytest

from graftlab.core.errors import ConfigError
from graftlab.serving import RolloutPolicy, ServeConfig
from graftlab.serving.rollout import Observation, RolloutGuard, in_canary


def test_canary_routing_is_deterministic_and_close_to_the_percent():
    ids = [uuid.UUID(int=i).hex for i in range(20_000)]
    share = sum(in_canary(i, 10) for i in ids) / len(ids)
    assert 0.09 < share < 0.11
    assert [in_canary(i, 10) for i in ids[:100]] == [in_canary(i, 10) for i in ids[:100]]
    assert not any(in_canary(i, 0) for i in ids[:1000]) and all(in_canary(i, 100) for i in ids[:1000])


def policy(**kw):
    return RolloutPolicy(**{"window": 20, "min_requests": 10, **kw})


def test_guard_waits_for_min_requests_then_trips_on_errors():
    guard = RolloutGuard(policy(max_error_rate=0.2))
    for _ in range(9):
        guard.record(Observation(error=True, latency_ms=1))
    assert guard.verdict() is None  # too few to judge
    guard.record(Observation(error=True, latency_ms=1))
    assert "error rate" in guard.verdict()


def test_guard_trips_on_latency_and_disagreement_but_not_on_a_good_challenger():
    good = RolloutGuard(policy())
    for i in range(40):
        good.record(Observation(False, 10.0, disagree=i % 10 == 0))
    assert good.verdict() is None and good.stats()["disagreement"] == pytest.approx(0.1)

    slow = RolloutGuard(policy(max_latency_p95_ms=100))
    for i in range(20):
        slow.record(Observation(False, 50.0 if i < 15 else 500.0))
    assert "latency p95" in slow.verdict()

    disagreeing = RolloutGuard(policy(max_disagreement=0.3))
    for _ in range(10):
        disagreeing.record_disagreement(True)
    assert "disagrees" in disagreeing.verdict()


def test_window_forgets_old_failures():
    guard = RolloutGuard(policy(max_error_rate=0.2))
    for _ in range(3):
        guard.record(Observation(True, 1))
    for _ in range(20):
        guard.record(Observation(False, 1))
    assert guard.stats()["error_rate"] == 0.0 and guard.verdict() is None


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="canary_percent"):
        ServeConfig.from_dict({"model": "m", "canary": "c", "canary_percent": 150})
    with pytest.raises(ConfigError, match="not both"):
        ServeConfig.from_dict({"model": "m", "canary": "c", "shadow": "s"})
    with pytest.raises(ConfigError, match="Unknown key 'limits.max_char'"):
        ServeConfig.from_dict({"model": "m", "limits": {"max_char": 3}})
