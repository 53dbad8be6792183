"""One prediction schema (``label``, ``confidence``, ``probabilities``) on /v1/predict and /v1/explain, a wrong key
answered with what to send, and every 4xx body as the OpenAPI schema declares it."""

import pytest

TOKEN = "schema-token"


def _resolve(schema, spec):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _mismatch(value, schema, spec, where="body"):
    """Where ``value`` breaks ``schema`` (the OpenAPI subset FastAPI writes), or None."""
    schema = _resolve(schema, spec)
    if "anyOf" in schema:
        found = [_mismatch(value, s, spec, where) for s in schema["anyOf"]]
        return None if None in found else found[0]
    kind = schema.get("type")
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict,
             "null": type(None)}
    if kind is not None and not isinstance(value, types[kind]):
        return f"{where}: {value!r} is not {kind}"
    if kind == "array":
        return next((m for i, v in enumerate(value) if (m := _mismatch(v, schema.get("items", {}), spec, f"{where}.{i}"))),
                    None)
    if kind == "object":
        props = schema.get("properties", {})
        missing = set(schema.get("required", [])) - set(value)
        if missing:
            return f"{where}: missing {sorted(missing)}"
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is None and extra is False:
                return f"{where}: unexpected key {key!r}"
            if sub is not None and (m := _mismatch(v, sub, spec, f"{where}.{key}")):
                return m
    return None


def _declared(spec, path, status):
    responses = spec["paths"][path]["post"]["responses"]
    assert str(status) in responses, f"{path} does not declare {status}: {sorted(responses)}"
    return responses[str(status)]["content"]["application/json"]["schema"]


def test_predict_and_explain_answer_label_confidence_and_probabilities(make_client, texts):
    client = make_client()
    one = client.post("/v1/predict", json={"text": texts[0]}).json()
    assert {"label", "confidence", "probabilities"} <= set(one)
    assert one["confidence"] == one["probabilities"][one["label"]] == max(one["probabilities"].values())
    batch = client.post("/v1/predict", json={"texts": texts[:3]}).json()["predictions"]
    assert all(p["confidence"] == p["probabilities"][p["label"]] for p in batch)
    explained = client.post("/v1/explain", json={"text": texts[0], "method": "occlusion"})
    assert explained.status_code == 200, explained.text
    e = explained.json()
    assert "prob" not in e and "probs" not in e
    assert e["label"] == one["label"] and e["probabilities"] == pytest.approx(one["probabilities"], abs=1e-6)
    assert e["confidence"] == pytest.approx(one["confidence"], abs=1e-6) and e["tokens"]
    spec = client.get("/openapi.json").json()
    for path, answer in (("/v1/predict", one), ("/v1/explain", e)):
        assert _mismatch(answer, _declared(spec, path, 200), spec) is None
        assert {"label", "confidence", "probabilities"} <= set(_resolve(_declared(spec, path, 200), spec)
                                                                .get("properties", {})) or path == "/v1/predict"


@pytest.mark.parametrize(("path", "body", "phrases"), [
    ("/v1/predict", {"txt": "great tea"}, ["'txt' is not a key of this request", "did you mean 'text'",
                                            "'text', 'texts', 'image' or 'images'", '{"text": "..."}']),
    ("/v1/explain", {"text": "tea", "methods": "ig"}, ["'methods'", "did you mean 'method'", "'grid'", "'target'",
                                                       '{"text": "..."}']),
    ("/v1/feedback", {"request_id": "x", "lable": "great"}, ["'lable'", "did you mean 'label'",
                                                             '{"request_id": "...", "label": "..."}']),
])
def test_a_wrong_key_says_what_to_send(make_client, path, body, phrases):
    r = make_client().post(path, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "Extra inputs are not permitted" not in detail
    for phrase in phrases:
        assert phrase in detail, detail


@pytest.mark.parametrize(("path", "kwargs", "status"), [
    ("/v1/predict", {"json": {"txt": "a"}}, 422),
    ("/v1/predict", {"json": {"text": "a" * 201}}, 422),
    ("/v1/predict", {"json": ["a"]}, 422),
    ("/v1/predict", {"content": b"x" * 3000}, 413),
    ("/v1/predict", {"content": b'{"text": "caf\xe9"}', "headers": {"content-type": "application/json"}}, 400),
    ("/v1/predict", {"content": b"text=abc", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415),
    ("/v1/predict", {"json": {"image": "aGVsbG8="}}, 422),
    ("/v1/feedback", {"json": {"request_id": "nope", "label": "other"}}, 404),
    ("/v1/feedback", {"json": {"request_id": "nope", "label": "awesome"}}, 422),
    ("/v1/explain", {"json": {"text": "tea", "target": "awesome"}}, 422),
    ("/admin/promote", {"json": {}}, 401),
    ("/admin/promote", {"json": {}, "headers": {"Authorization": "Bearer wrong"}}, 403),
    ("/admin/promote", {"json": {}, "headers": {"Authorization": f"Bearer {TOKEN}"}}, 409),
    ("/admin/rollback", {"json": {"why": "x"}, "headers": {"Authorization": f"Bearer {TOKEN}"}}, 422),
])
def test_every_4xx_body_is_what_the_openapi_schema_declares(make_client, monkeypatch, path, kwargs, status):
    monkeypatch.setenv("GRAFT_ADMIN_TOKEN", TOKEN)
    client = make_client(limits={"max_chars": 200, "max_batch": 8, "max_request_bytes": 2048})
    r = client.post(path, **kwargs)
    assert r.status_code == status, r.text
    spec = client.get("/openapi.json").json()
    problem = _mismatch(r.json(), _declared(spec, path, status), spec)
    assert problem is None, (problem, r.json())
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]


def test_health_names_the_model_and_nothing_of_the_filesystem(make_client, packaged, tmp_path):
    client = make_client()
    r = client.get("/health")
    assert r.status_code == 200, r.text
    health = r.json()
    assert health["status"] == "ok" and health["healthy"] is True
    assert health["champion"]["name"] == "tiny-reviews" and health["champion"]["version"].startswith("tiny-reviews#")
    for secret in (str(packaged["champion"]), str(tmp_path), "log_db", '"/'):
        assert secret not in r.text, r.text
    spec = client.get("/openapi.json").json()
    declared = spec["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert _mismatch(health, declared, spec) is None
    assert _resolve(declared, spec).get("additionalProperties") is False  # the schema promises nothing more


def test_admin_status_needs_the_token_and_gives_the_detail(make_client, packaged, monkeypatch, tmp_path):
    monkeypatch.delenv("GRAFT_ADMIN_TOKEN", raising=False)
    client = make_client()
    assert client.get("/admin/status").status_code == 403  # no token configured: admin endpoints are off
    monkeypatch.setenv("GRAFT_ADMIN_TOKEN", TOKEN)
    spec = client.get("/openapi.json").json()
    for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 403)):
        r = client.get("/admin/status", headers=headers)
        assert r.status_code == status, r.text
        declared = spec["paths"]["/admin/status"]["get"]["responses"][str(status)]["content"]["application/json"]
        assert _mismatch(r.json(), declared["schema"], spec) is None
    r = client.get("/admin/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["champion"]["path"] == str(packaged["champion"]) and status["log_db"].startswith(str(tmp_path))
    assert status["mode"] == "none" and status["challenger_active"] is False
    declared = spec["paths"]["/admin/status"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert _mismatch(status, declared, spec) is None
