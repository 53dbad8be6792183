"""Serving an image model: base64 image files in, the same answers as the packaged model, logged images that
``graft monitor`` decodes again, and a clear 422 for every kind of bad image or a text sent to the wrong model."""

from __future__ import annotations

import base64
import hashlib
import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graftlab.testing import make_tiny_cnn, synthetic_images


def encode(pixels: np.ndarray, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode("ascii")


@pytest.fixture(scope="module")
def image_model(tmp_path_factory) -> Path:
    """A linear probe on a tiny random CNN (three shapes), packaged with a study-like reference profile."""
    import os

    from graftlab.backbones import get_backbone
    from graftlab.core.config import TrainConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.data.images import brightness
    from graftlab.evaluation import softmax
    from graftlab.packaging import export_model
    from graftlab.strategies import FitContext, make_strategy

    root = tmp_path_factory.mktemp("image-model")
    old = os.environ.get("GRAFT_CACHE_DIR")
    os.environ["GRAFT_CACHE_DIR"] = str(root / "cache")
    try:
        bb = get_backbone(str(make_tiny_cnn(root / "cnn")))
        df = synthetic_images(150, seed=0)
        names = sorted(df["shape"].unique())
        y = df["shape"].map({n: i for i, n in enumerate(names)}).to_numpy()
        data = LabeledData(list(df.image), y, names, np.arange(len(df)))
        ctx = FitContext(train=TrainConfig(epochs=1), seed=0, backbone=bb, trainer=None)
        fitted = make_strategy("linear_probe").fit(data.subset(range(100)), data.subset(range(100, 150)), ctx)
        val = list(df.image[100:150])
        proba = softmax(fitted.predictor.predict_logits(val, 64))
        b = brightness(val)
        reference = {"n": len(val), "label_names": names, "confidences": proba.max(1).tolist(),
                     "predicted_distribution": np.bincount(proba.argmax(1), minlength=len(names)).tolist(),
                     "input_words": None, "empty_rate": 0.0, "texts": [],
                     "input_brightness": {"mean": float(b.mean()), "std": float(b.std())},
                     "embeddings": np.round(bb.embed(val), 5).tolist(), "embedding_backbone": bb.name}
        # as a study writes it, less "modality": the package says what it takes through its backbone
        meta = {"name": "tiny-shapes", "temperature": 1.0, "backbone": bb.card.to_dict()}
        return export_model(fitted.predictor, root / "model", meta, reference)
    finally:
        if old is None:
            os.environ.pop("GRAFT_CACHE_DIR", None)
        else:
            os.environ["GRAFT_CACHE_DIR"] = old


@pytest.fixture
def image_client(make_client, image_model, tmp_path):
    return lambda **kw: make_client(model=str(image_model), **kw)


def test_the_package_knows_it_takes_images(image_model, packaged):
    from graftlab.packaging import load_model

    assert load_model(image_model).modality == "image"
    assert load_model(packaged["champion"]).modality == "text"


def test_predictions_equal_the_packaged_model_on_the_same_pixels(image_client, image_model, admin_status):
    from graftlab.packaging import load_model

    images = list(synthetic_images(12, seed=5).image)  # grayscale and RGB
    expected = load_model(image_model).predict_proba(images)
    client = image_client()
    one = client.post("/v1/predict", json={"image": encode(images[0])})
    assert one.status_code == 200, one.text
    assert one.json()["label"] == load_model(image_model).label_names[int(expected[0].argmax())]
    batch = client.post("/v1/predict", json={"images": [encode(x) for x in images]})
    assert batch.status_code == 200, batch.text
    got = np.array([[p["probabilities"][n] for n in load_model(image_model).label_names]
                    for p in batch.json()["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)  # PNG is lossless: the model saw the same pixels
    as_url = client.post("/v1/predict", json={"image": "data:image/png;base64," + encode(images[1])})
    assert as_url.status_code == 200 and as_url.json()["label"] == batch.json()["predictions"][1]["label"]
    rgb = np.stack([images[0]] * 3, axis=-1) if images[0].ndim == 2 else images[0]
    assert client.post("/v1/predict", json={"image": encode(rgb, "JPEG")}).status_code == 200
    assert admin_status(client)["champion"]["modality"] == "image"


@pytest.mark.parametrize(("body", "says"), [
    ({"image": "not base64 at all!"}, "not valid base64"),
    ({"image": base64.b64encode(b"GIF? no, plain text").decode()}, "not an image file"),
    ({"image": ""}, "image is empty"),
    ({"image": 7}, "valid string"),
    ({"images": []}, "at least 1 item"),
    ({"text": "a bright square"}, "is an image model: send 'image'"),
    ({"image": encode(np.zeros((4, 4), np.uint8)), "text": "both"}, "exactly one of"),
])
def test_bad_images_get_422_naming_the_problem(image_client, body, says):
    client = image_client()
    r = client.post("/v1/predict", json=body)
    assert r.status_code == 422, r.text
    assert says in r.json()["detail"], r.json()
    assert client.post("/v1/predict", json={"image": encode(synthetic_images(1).image[0])}).status_code == 200


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(image_client):
    client = image_client(limits={"max_image_pixels": 100})
    r = client.post("/v1/predict", json={"image": encode(np.zeros((20, 20), np.uint8))})
    assert r.status_code == 422 and "max_image_pixels=100" in r.json()["detail"], r.text
    assert client.post("/v1/predict", json={"image": encode(np.zeros((10, 10), np.uint8))}).status_code == 200


def test_the_default_body_limit_takes_a_photo_for_an_image_model_only(image_client, make_client):
    photo = encode(np.random.default_rng(0).integers(0, 256, (1000, 1100), dtype=np.uint8))  # noise: ~1.1 MB PNG
    assert len(photo) > 1_400_000
    r = image_client().post("/v1/predict", json={"image": photo})
    assert r.status_code == 200, r.text
    r = make_client().post("/v1/predict", json={"text": "x" * 1_400_000})
    assert r.status_code == 413 and "max_request_bytes=1000000" in r.json()["detail"], r.text
    r = image_client(limits={"max_request_bytes": 1_000_000}).post("/v1/predict", json={"image": photo})
    assert r.status_code == 413 and "--max-request-bytes" in r.json()["detail"], r.text


def test_a_text_model_refuses_images(make_client):
    r = make_client().post("/v1/predict", json={"image": encode(np.zeros((8, 8), np.uint8))})
    assert r.status_code == 422 and "is a text model: send 'text'" in r.json()["detail"], r.text


def test_logged_images_are_the_files_sent_and_only_when_asked(image_client, tmp_path):
    from graftlab.serving.inputs import decode_logged_image

    pixels = synthetic_images(3, seed=9).image[2]
    sent = encode(pixels)
    for log_inputs in (False, True):
        db = tmp_path / f"images-{log_inputs}.db"
        client = image_client(log_db=str(db), log_inputs=log_inputs)
        rid = client.post("/v1/predict", json={"image": sent}).json()["request_id"]
        assert client.post("/v1/feedback", json={"request_id": rid, "label": "square"}).status_code == 200
        with sqlite3.connect(db) as conn:
            digest, stored = conn.execute("SELECT input_sha256, input_text FROM predictions").fetchone()
        assert digest == hashlib.sha256(base64.b64decode(sent)).hexdigest()
        if log_inputs:
            assert stored.startswith("data:image/png;base64,")
            np.testing.assert_array_equal(decode_logged_image(stored), pixels)
        else:
            assert stored is None


def test_monitor_finds_drift_in_logged_images_and_none_in_fresh_images_of_the_same_kind(image_client, image_model,
                                                                                       tmp_path):
    from graftlab.monitoring import run_monitor

    same = list(synthetic_images(60, seed=11).image)
    inverted = [255 - x for x in synthetic_images(60, seed=12).image]  # bright backgrounds, dark shapes
    outcomes = {}
    for name, images in (("same", same), ("inverted", inverted)):
        db = tmp_path / f"{name}.db"
        client = image_client(log_db=str(db), log_inputs=True)
        for i in range(0, len(images), 20):
            assert client.post("/v1/predict", json={"images": [encode(x) for x in images[i:i + 20]]}).status_code == 200
        result = run_monitor(str(image_model), log_db=db, window="all", out_dir=tmp_path / f"report-{name}",
                             html=name == "inverted")
        outcomes[name] = {t["name"]: t for t in result.report["drift"]["tests"]}, result.report
    html = (tmp_path / "report-inverted" / "monitor.html").read_text()
    assert 'alt="Brightness over time"' in html and "Input length over time" not in html
    tests, report = outcomes["inverted"]
    assert report["model"]["modality"] == "image"
    assert {"mmd", "domain_classifier", "brightness"} <= set(tests) and "input_length" not in tests
    assert tests["brightness"]["p_value"] < 1e-6 and tests["brightness"]["detail"]["live_mean"] > 0.5
    assert all(b["brightness_mean"] > 0.5 for b in report["timeline"]) and report["reference"]["brightness_mean"] < 0.5
    assert tests["mmd"]["p_value"] is not None, tests["mmd"]
    assert tests["mmd"]["p_value"] < 0.01 and report["drift"]["alarm"]
    tests, report = outcomes["same"]
    assert all(tests[n]["p_value"] is not None for n in ("mmd", "domain_classifier", "brightness"))
    assert not report["drift"]["alarm"], report["drift"]


def test_monitor_without_logged_images_says_how_to_log_them(image_client, image_model, tmp_path):
    from graftlab.monitoring import run_monitor

    db = tmp_path / "nolog.db"
    client = image_client(log_db=str(db))
    images = list(synthetic_images(40, seed=3).image)
    assert client.post("/v1/predict", json={"images": [encode(x) for x in images]}).status_code == 200
    report = run_monitor(str(image_model), log_db=db, window="all", out_dir=tmp_path / "r", html=False).report
    tests = {t["name"]: t for t in report["drift"]["tests"]}
    assert tests["brightness"]["p_value"] is None and "--log-inputs" in tests["brightness"]["message"]
    assert any("Input images are not logged" in n for n in report["notes"])
    assert tests["confidence_ks"]["p_value"] is not None  # the output checks run on any log


def test_a_real_server_process_answers_images(serve_process, image_model, tmp_path):
    import httpx

    with serve_process([str(image_model), "--log-db", str(tmp_path / "p.db")]) as (_, url):
        image = encode(synthetic_images(1, seed=4).image[0])
        r = httpx.post(f"{url}/v1/predict", json={"image": image}, timeout=30)
        assert r.status_code == 200 and r.json()["label"] in ("hbar", "square", "vbar"), r.text
        bad = httpx.post(f"{url}/v1/predict", json={"image": image[:-8] + "@@@@"}, timeout=30)
        assert bad.status_code == 422 and "base64" in bad.json()["detail"]
        assert httpx.get(f"{url}/ready", timeout=10).status_code == 200


def test_explain_an_image_returns_a_grid_of_patch_attributions(image_client, make_client):
    client = image_client()
    image = encode(synthetic_images(1, seed=6).image[0])
    r = client.post("/v1/explain", json={"image": image, "grid": 4})
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["grid_shape"] == [4, 4] and len(e["grid"]) == 4 and all(len(row) == 4 for row in e["grid"])
    assert e["method"] == "occlusion" and e["label"] in ("hbar", "square", "vbar")
    assert client.post("/v1/explain", json={"text": "a bar"}).status_code == 422
    assert client.post("/v1/explain", json={"image": image, "grid": 99}).status_code == 422
    text_model = make_client().post("/v1/explain", json={"image": image})
    assert text_model.status_code == 422 and "is a text model" in text_model.json()["detail"]


def test_a_broken_image_in_a_batch_is_named_by_its_position(image_client):
    client = image_client()
    good = encode(synthetic_images(1, seed=8).image[0])
    broken = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).decode()  # a PNG signature, then nothing valid
    r = client.post("/v1/predict", json={"images": [good, good, good, broken]})
    assert r.status_code == 422 and r.json()["detail"].startswith("Invalid request: images.3: "), r.text
    assert "not an image file" in r.json()["detail"]
    assert client.post("/v1/predict", json={"images": [good] * 4}).status_code == 200
