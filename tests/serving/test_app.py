"""The HTTP API in-process: answers, feedback, limits, failures, metrics, docs, explain and quantization."""

import sqlite3

import numpy as np
import pytest

from graftlab.packaging import load_model
from graftlab.serving.quantize import quantize_model


def service(client):
    return client.app.state.service


def test_single_and_batch_predictions_match_the_model_and_are_logged(make_client, packaged, texts):
    client = make_client()
    one = client.post("/v1/predict", json={"text": texts[0]})
    assert one.status_code == 200, one.text
    body = one.json()
    assert set(body) == {"request_id", "label", "confidence", "probabilities", "model_version", "route"}
    assert body["route"] == "champion" and body["model_version"].startswith("tiny-reviews#")

    batch = client.post("/v1/predict", json={"texts": texts[:5]}).json()["predictions"]
    assert len({p["request_id"] for p in batch}) == 5
    expected = load_model(packaged["champion"]).predict_proba(texts[:5])
    got = np.array([[p["probabilities"][n] for n in ("great", "other")] for p in batch])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [p["label"] for p in batch] == [["great", "other"][i] for i in expected.argmax(1)]

    log = service(client).log
    assert log.count() == 6  # every answered input has its row before the answer left
    ids = {r[0] for r in log.query("SELECT request_id FROM predictions")}
    assert ids == {body["request_id"], *(p["request_id"] for p in batch)}


def test_feedback_joins_the_log_and_rejects_unknown_ids_and_labels(make_client, texts):
    client = make_client()
    rid = client.post("/v1/predict", json={"text": texts[1]}).json()["request_id"]
    assert client.post("/v1/feedback", json={"request_id": rid, "label": "other"}).status_code == 200
    missing = client.post("/v1/feedback", json={"request_id": "nope", "label": "other"})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    bad_label = client.post("/v1/feedback", json={"request_id": rid, "label": "awesome"})
    assert bad_label.status_code == 422 and "great" in bad_label.json()["detail"]
    rows = sqlite3.connect(service(client).cfg.log_db).execute(
        "SELECT request_id, true_label FROM labeled_predictions").fetchall()
    assert rows == [(rid, "other")]


@pytest.mark.parametrize("kwargs, status, message", [
    ({"json": {"text": "a" * 201}}, 422, "max_chars=200"),
    ({"json": {"texts": ["a"] * 9}}, 422, "max_batch=8"),
    ({"json": {"texts": []}}, 422, "at least 1"),
    ({"json": {"text": 3}}, 422, "valid string"),
    ({"json": {"texts": "abc"}}, 422, "valid list"),
    ({"json": {"text": "a", "texts": ["b"]}}, 422, "exactly one"),
    ({"json": {}}, 422, "exactly one"),
    ({"json": {"text": "a", "extra": 1}}, 422, "is not a key of this request"),
    ({"json": ["a"]}, 422, "JSON but not an object (it is a list)"),
    ({"content": b"x" * 3000}, 413, "max_request_bytes=2048"),
    ({"content": b'{"text": "caf\xe9"}', "headers": {"content-type": "application/json"}}, 400, "UTF-8"),
    ({"content": b'{"text": "\\ud800"}', "headers": {"content-type": "application/json"}}, 422, "Unicode"),
    ({"content": b'{"text": ', "headers": {"content-type": "application/json"}}, 422,
     "body: the body is not valid JSON at character 9"),
    ({"content": b"text=abc", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415,
     "with the header"),
    ({"content": b'{"text": "great coffee"}', "headers": {"content-type": "text/plain"}}, 415,
     "Content-Type: text/plain"),
    ({"content": b'{"text": "great coffee"}'}, 415, "has no Content-Type header"),
    ({"content": b""}, 422, "The request body is empty: send a JSON object such as {\"text\": \"...\"}"),
    ({"content": b"", "headers": {"content-type": "application/json"}}, 422, "The request body is empty"),
    ({"json": "great coffee"}, 422, "JSON but not an object (it is a str)"),
])
def test_bad_requests_get_4xx_with_the_limit_and_the_server_keeps_answering(make_client, kwargs, status, message):
    client = make_client(limits={"max_chars": 200, "max_batch": 8, "max_request_bytes": 2048})
    r = client.post("/v1/predict", **kwargs)
    assert r.status_code == status, r.text
    assert message.lower() in str(r.json()).lower()
    assert client.post("/v1/predict", json={"text": "a" * 200}).status_code == 200
    assert service(client).log.count() == 1


def test_a_body_not_sent_as_json_names_the_endpoints_own_example(make_client):
    client = make_client()
    r = client.post("/v1/feedback", content=b'{"request_id": "x", "label": "great"}',
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and '{"request_id": "...", "label": "..."}' in r.json()["detail"]
    broken = client.post("/v1/feedback", content=b'{"request_id": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and '"request_id"' in broken.json()["detail"]


def test_a_model_error_is_a_json_500_and_the_next_request_works(make_client, monkeypatch):
    client = make_client()
    model = service(client).champion.model
    real = model.predict_proba

    def flaky(texts, *a, **k):
        if any("explode" in t for t in texts):
            raise RuntimeError("model bug")
        return real(texts, *a, **k)

    monkeypatch.setattr(model, "predict_proba", flaky)
    r = client.post("/v1/predict", json={"text": "explode now"})
    assert r.status_code == 500 and "RuntimeError" in r.json()["detail"]
    assert client.post("/v1/predict", json={"text": "fine"}).status_code == 200
    monkeypatch.setattr(service(client), "health", lambda: 1 / 0)
    r = client.get("/health")
    assert r.status_code == 500 and "ZeroDivisionError" in r.json()["detail"]
    assert client.get("/ready").status_code == 200
    assert service(client).log.count() == 1  # the failed request was not acknowledged, so not logged


def test_health_ready_metrics_and_docs(make_client, texts, admin_status):
    client = make_client()
    for text in texts[:4]:
        client.post("/v1/predict", json={"text": text})
    client.post("/v1/predict", json={"text": 5})
    assert client.get("/ready").json()["ready"] is True
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["challenger"] is None
    status = admin_status(client)
    assert status["mode"] == "none" and status["champion"]["labels"] == ["great", "other"]
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    version = health["champion"]["version"]
    assert 'graft_requests_total{endpoint="/v1/predict",method="POST",status="200"} 4.0' in text
    assert 'graft_errors_total{endpoint="/v1/predict",status="422"} 1.0' in text
    assert 'graft_request_latency_seconds_count{endpoint="/v1/predict"} 5.0' in text
    counts = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("graft_predictions_total{") and f'model_version="{version}"' in line]
    assert sum(counts) == 4
    assert f'graft_confidence_mean{{model_version="{version}",route="champion"}}' in text
    assert "graft_model_info{" in text
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/feedback", "/health", "/ready", "/metrics", "/admin/promote",
            "/admin/status"} <= set(schema["paths"])
    assert '"maxLength":5000' in client.get("/openapi.json").text.replace(" ", "")
    assert client.get("/docs").status_code == 200
    assert client.get("/no-such-page").status_code == 404


def test_explain_uses_graftlab_explain_and_answers_501_without_it(make_client, monkeypatch):
    client = make_client(limits={"max_chars": 50})
    r = client.post("/v1/explain", json={"text": "great tea", "method": "occlusion"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] in ("great", "other") and r.json()["tokens"]
    assert client.post("/v1/explain", json={"text": "x" * 51}).status_code == 422
    assert client.post("/v1/explain", json={"text": "tea", "method": "magic"}).status_code == 422
    monkeypatch.setattr("graftlab.serving.app._explainer", lambda: None)
    assert client.post("/v1/explain", json={"text": "great tea"}).status_code == 501


def test_quantized_model_is_served_when_it_agrees(make_client, texts, admin_status):
    client = make_client(quantize=True)
    q = admin_status(client)["champion"]["quantization"]
    assert q["applied"] is True and q["agreement"] >= 0.99 and q["n_checked"] == 40
    assert 'quantized="true"' in client.get("/metrics").text
    assert client.post("/v1/predict", json={"text": texts[0]}).status_code == 200


def test_quantization_leaves_the_fp32_model_untouched_and_keeps_the_head_fp32(packaged, texts):
    import torch

    model = load_model(packaged["champion"])
    before = model.predict_proba(texts)
    served, report = quantize_model(model, min_agreement=0.0)
    assert report.applied and served is not model
    np.testing.assert_array_equal(model.predict_proba(texts), before)
    kinds = {type(m).__module__ for m in served.predictor.model.encoder.modules()}
    assert any("quantized" in k for k in kinds)
    assert type(served.predictor.model.head) is torch.nn.Linear
    assert not any("quantized" in type(m).__module__ for m in model.predictor.model.modules())


def test_quantization_is_refused_below_the_agreement_floor_or_without_reference_texts(packaged, monkeypatch):
    model = load_model(packaged["champion"])
    served, report = quantize_model(model, texts=[])
    assert served is model and not report.applied and "texts" in report.reason

    def flipped(predictor):  # an "int8" model that gets every label wrong
        import copy
        bad = copy.deepcopy(predictor)
        bad.model.head.weight.data.neg_()
        bad.model.head.bias.data.neg_()
        return bad

    monkeypatch.setattr("graftlab.serving.quantize._int8_predictor", flipped)
    served, report = quantize_model(model, min_agreement=0.99)
    assert served is model and not report.applied and report.agreement < 0.99 and "serving fp32" in report.reason
