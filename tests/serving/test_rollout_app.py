"""Shadow and canary challengers through the API, and the automatic rollback when one misbehaves."""

import time

import pytest

POLICY = {"window": 30, "min_requests": 10, "max_disagreement": 0.25, "max_error_rate": 0.1}


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_disagreeing_canary_is_rolled_back_automatically(make_client, packaged, texts, admin_status):
    client = make_client(canary=str(packaged["flipped"]), canary_percent=50.0, rollout=POLICY)
    routes = []
    for text in texts:
        routes.append(client.post("/v1/predict", json={"text": text}).json()["route"])
        if not admin_status(client)["challenger_active"]:
            break
    assert "canary" in routes  # the challenger did answer some requests ...
    assert wait_for(lambda: not admin_status(client)["challenger_active"])  # ... until it was stopped
    health = admin_status(client)
    event = health["events"][-1]
    assert event["kind"] == "rollback" and "disagrees" in event["reason"] and event["stats"]["trigger"] == "automatic"
    after = [client.post("/v1/predict", json={"text": t}).json() for t in texts[:20]]
    assert {a["route"] for a in after} == {"champion"}
    assert {a["model_version"] for a in after} == {health["champion"]["version"]}
    metrics = client.get("/metrics").text
    assert 'graft_rollbacks_total{trigger="automatic"} 1.0' in metrics
    assert "graft_challenger_active 0.0" in metrics
    served = client.app.state.service.log.query("SELECT route, COUNT(*) FROM predictions GROUP BY route")
    assert dict(served)["canary"] == routes.count("canary")


def test_a_good_canary_keeps_its_share(make_client, packaged, texts, admin_status):
    client = make_client(canary=str(packaged["champion"]), canary_percent=50.0, rollout=POLICY)
    routes = [client.post("/v1/predict", json={"text": t}).json()["route"] for t in texts]
    assert 15 <= routes.count("canary") <= 45
    assert admin_status(client)["challenger_active"] is True


def test_shadow_scores_are_logged_never_returned_and_disagreement_rolls_back(make_client, packaged, texts, admin_status):
    client = make_client(shadow=str(packaged["flipped"]), rollout=POLICY)
    answers = [client.post("/v1/predict", json={"text": t}).json() for t in texts[:5]]
    assert {a["route"] for a in answers} == {"champion"}
    log = client.app.state.service.log
    assert wait_for(lambda: log.count(routes=("shadow",)) == 5)
    pairs = log.query("SELECT c.prediction, s.prediction FROM predictions c JOIN predictions s "
                      "ON s.request_id = c.request_id AND s.route = 'shadow' WHERE c.route = 'champion'")
    assert len(pairs) == 5 and all(c != s for c, s in pairs)  # the flipped model disagrees, silently
    for t in texts[5:20]:
        client.post("/v1/predict", json={"text": t})
    assert wait_for(lambda: not admin_status(client)["challenger_active"])
    assert "disagrees" in admin_status(client)["events"][-1]["reason"]


@pytest.mark.parametrize("failure, reason", [("raise", "error rate"), ("sleep", "latency p95")])
def test_a_failing_or_slow_shadow_is_rolled_back(make_client, packaged, texts, admin_status, monkeypatch, failure, reason):
    policy = {**POLICY, "min_requests": 4, "window": 10, "max_latency_p95_ms": 100.0, "max_disagreement": 1.0}
    client = make_client(shadow=str(packaged["champion"]), rollout=policy)
    challenger = client.app.state.service.challenger.model
    real = challenger.predict_proba

    def bad(texts_, *a, **k):
        if failure == "raise":
            raise RuntimeError("challenger bug")
        time.sleep(0.2)
        return real(texts_, *a, **k)

    monkeypatch.setattr(challenger, "predict_proba", bad)
    for t in texts[:6]:
        assert client.post("/v1/predict", json={"text": t}).status_code == 200  # users never see it
    assert wait_for(lambda: not admin_status(client)["challenger_active"])
    assert reason in admin_status(client)["events"][-1]["reason"]


def test_a_raising_canary_falls_back_to_the_champion_and_is_rolled_back(make_client, packaged, texts, admin_status, monkeypatch):
    client = make_client(canary=str(packaged["flipped"]), canary_percent=100.0,
                         rollout={**POLICY, "min_requests": 3, "window": 5})
    challenger = client.app.state.service.challenger.model
    monkeypatch.setattr(challenger, "predict_proba", lambda *a, **k: 1 / 0)
    answers = [client.post("/v1/predict", json={"text": t}) for t in texts[:5]]
    assert all(a.status_code == 200 and a.json()["route"] == "champion" for a in answers)
    assert not admin_status(client)["challenger_active"]
    assert "error rate" in admin_status(client)["events"][-1]["reason"]
