"""Fuzzing the API with hypothesis: no body, however odd, gets a 500, and the server keeps answering."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ENDPOINTS = ["/v1/predict", "/v1/feedback", "/v1/explain", "/admin/promote", "/admin/rollback", "/admin/reload"]
KEYS = ["text", "texts", "request_id", "label", "method", "target", "force", "reason"]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=60)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
near_valid = st.fixed_dictionaries({}, optional={k: json_values for k in KEYS}) | st.fixed_dictionaries(
    {"texts": st.lists(st.text(max_size=120), max_size=12)})
bodies = st.one_of(
    json_values.map(lambda v: ("json", v)),
    near_valid.map(lambda v: ("json", v)),
    st.binary(max_size=300).map(lambda b: ("raw", b)),
    st.text(max_size=80).map(lambda t: ("raw", t.encode("utf-8", "surrogatepass"))),
)


@pytest.fixture(scope="module")
def client(packaged, tmp_path_factory):
    from fastapi.testclient import TestClient

    from graftlab.serving import ServeConfig, create_app

    cfg = ServeConfig.from_dict({"model": str(packaged["champion"]), "shadow": str(packaged["flipped"]),
                                 "log_db": str(tmp_path_factory.mktemp("fuzz") / "log.db"),
                                 "limits": {"max_chars": 100, "max_batch": 10, "max_request_bytes": 4096}})
    with TestClient(create_app(cfg), raise_server_exceptions=False) as c:
        yield c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS), body=bodies, content_type=st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", None]),
    token=st.sampled_from(["fuzz-token", "wrong", None]))
def test_no_request_gets_a_500(client, endpoint, body, content_type, token, monkeypatch):
    monkeypatch.setenv("GRAFT_ADMIN_TOKEN", "fuzz-token")
    kind, value = body
    content = json.dumps(value).encode() if kind == "json" else value
    headers = {"Authorization": f"Bearer {token}"} if token else {}  # the right token reaches promote/rollback
    if content_type:
        headers["content-type"] = content_type
    r = client.post(endpoint, content=content, headers=headers)
    assert r.status_code < 500, (endpoint, content[:200], r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")


def test_the_server_still_answers_after_fuzzing(client):
    assert client.post("/v1/predict", json={"text": "great tea"}).status_code == 200
    assert "graft_errors_total" in client.get("/metrics").text
