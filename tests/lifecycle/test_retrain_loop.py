"""End to end on the tiny BERT: study -> registered champion -> served (in-process) -> traffic -> feedback that
contradicts the model -> `graft monitor` alerts -> `graft retrain` registers a challenger and records its decision.

Everything (MLflow store, runs, prediction log, reports) lives in a temporary working folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import make_tiny_bert, synthetic_reviews

NAME = "tiny-loop"
FLIP = {"great": "other", "other": "great"}


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The world after serving and feedback: {root, db, champion_run, served (request id -> (text, label, fed back))}."""
    root = tmp_path_factory.mktemp("loop")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("GRAFT_CACHE_DIR", str(root / "cache"))
        mp.delenv("GRAFT_TRACKING_URI", raising=False)
        yield _build(root)


def _build(root: Path) -> dict:
    from fastapi.testclient import TestClient

    from graftlab.core.config import StudyConfig
    from graftlab.serving import ServeConfig, create_app
    from graftlab.study import Study

    bert = make_tiny_bert(root / "bert")
    synthetic_reviews(240, seed=0).to_csv(root / "reviews.csv", index=False)
    cfg = StudyConfig.from_dict({
        "name": NAME,
        "data": {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review", "label": "score",
                 "slices": ["product"]},
        "backbones": [str(bert)],
        "strategies": ["majority", "tfidf_logreg", "linear_probe"],
        "train": {"epochs": 1, "lr": 3e-3, "batch_size": 32, "max_length": 32},
        "eval": {"seeds": 1, "bootstrap": 200, "gates": ["macro_f1 >= 0.5"], "latency": False, "robustness": False},
    })
    study = Study(cfg, progress=False).run()
    assert study.results["tracking"]["registered"]["aliases"] == ["challenger", "champion"]

    db = root / "predictions.db"
    serve_cfg = ServeConfig.from_dict({"model": f"{NAME}@champion", "log_db": str(db), "log_inputs": True})
    texts = synthetic_reviews(200, seed=3).review.tolist()
    served = {}
    with TestClient(create_app(serve_cfg)) as client:
        for i in range(0, len(texts), 4):
            answer = client.post("/v1/predict", json={"texts": texts[i:i + 4]})
            assert answer.status_code == 200, answer.text
            for text, p in zip(texts[i:i + 4], answer.json()["predictions"], strict=True):
                served[p["request_id"]] = (text, p["label"])
                assert p["model_version"] == f"{NAME}:1"
        for rid, (_, label) in served.items():  # every label contradicts the model
            assert client.post("/v1/feedback", json={"request_id": rid, "label": FLIP[label]}).status_code == 200
    return {"root": root, "db": db, "champion_run": study.run_dir, "served": served}


@pytest.fixture
def in_loop(loop, monkeypatch):
    monkeypatch.chdir(loop["root"])
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(loop["root"] / "cache"))
    monkeypatch.delenv("GRAFT_TRACKING_URI", raising=False)
    return loop


def test_monitor_alerts_on_contradicting_feedback(in_loop):
    res = run_cli("monitor", NAME, "--log-db", in_loop["db"], "--window", "all", "--permutations", "199")
    assert res.exit_code == 1, res.output
    report = json.loads(max(Path(".graft/monitor", NAME).glob("*/monitor.json")).read_text())
    assert report["model"]["version"] == "1" and report["window"]["n_requests"] == 200
    assert report["performance"]["metrics"]["accuracy"]["value"] == 0.0
    assert {a["kind"] for a in report["alerts"]} >= {"performance"}
    assert {t["name"] for t in report["drift"]["tests"] if t["available"]} >= {"mmd", "confidence_ks", "input_length"}


def test_retrain_skips_with_too_few_labels_and_records_why(in_loop):
    res = run_cli("retrain", NAME, "--log-db", in_loop["db"], "--min-new-labels", "100000")
    assert res.exit_code == 0, res.output
    record = _latest_record()
    assert record["decision"] == "skipped" and "min_new_labels=100000" in record["reason"]
    assert record["evidence"]["trigger"]["alerted"] and record["challenger_version"] is None
    assert not record["evidence"]["trigger"]["ran_monitor"]  # the latest report (about version 1) was read
    assert record["evidence"]["original_data"]["fingerprint_matches"]


def test_retrain_without_an_alert_is_skipped(in_loop, tmp_path):
    quiet = tmp_path / "quiet.json"
    quiet.write_text(json.dumps({"model": {"version": "1"}, "alerts": [], "created": "earlier"}))
    res = run_cli("retrain", NAME, "--log-db", in_loop["db"], "--monitor-report", quiet)
    assert res.exit_code == 0, res.output
    record = _latest_record()
    assert record["decision"] == "skipped" and "no alert" in record["reason"]


@pytest.mark.parametrize("command", [["retrain", "no-such-model"], ["monitor", "no-such-model", "--log-db", "x.db"],
                                     ["retrain", NAME, "--holdout-fraction", "0.9"]])
def test_user_errors_exit_2(in_loop, command):
    res = run_cli(*command)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output


def test_retrain_registers_a_challenger_and_records_the_decision(in_loop):
    from graftlab.tracking import show

    res = run_cli("retrain", NAME, "--log-db", in_loop["db"], "--min-new-labels", "60")
    assert res.exit_code == 0, res.output
    record = _latest_record()
    ev = record["evidence"]
    assert record["decision"] in ("promote", "keep") and record["challenger_version"] == 2

    # the new data: 200 labeled requests, newest 30% a fresh holdout, next 20% to validation, the rest to training
    assert ev["new_labels"]["usable"] == 200
    assert {k: v["n"] for k, v in ev["split"].items()} == {"train": 100, "val": 40, "holdout": 60}
    assert ev["split"]["train"]["last_ts"] <= ev["split"]["val"]["first_ts"] <= ev["split"]["holdout"]["first_ts"]
    data = pd.read_parquet(Path(record["record_dir"]) / "training_data.parquet")
    counts = data["_graft_split"].value_counts().to_dict()
    original = ev["original_data"]["rows"]
    assert counts == {"train": original["train"] + 100, "val": original["val"] + 40, "test": original["test"]}
    holdout_texts = {t for t, _ in in_loop["served"].values()} - set(data["review"])
    assert len(holdout_texts) == 60  # the fresh holdout never reaches the study

    # the comparison and the decision rule
    cmp = ev["comparison"]
    pb = cmp["paired_bootstrap"]
    assert cmp["n"] == 60 and cmp["champion"]["accuracy"]["value"] == 0.0  # every holdout label contradicts it
    assert set(cmp["mcnemar"]) >= {"b", "c", "p_value"}
    assert (record["decision"] == "promote") == (pb["ci_low"] > 0 and ev["challenger"]["gates_passed"])
    info = show(NAME)
    tags = next(v for v in info["versions"] if v["version"] == 2)["tags"]
    assert tags["retrain.decision"] == record["decision"] and float(tags["retrain.ci_low"]) == pytest.approx(pb["ci_low"])
    assert "retrain.labels_until" in tags
    assert info["aliases"]["champion"] == (2 if record["decision"] == "promote" else 1)
    md = (Path(record["record_dir"]) / "decision.md").read_text()
    assert f"**{record['decision']}**" in md and "fresh holdout (60 requests)" in md


def _latest_record() -> dict:
    found = sorted(Path(".graft/retrain", NAME).glob("*/decision.json"), key=os.path.getmtime)
    assert found, "no decision record was written"
    return json.loads(found[-1].read_text())


def test_protocol_is_found_in_mlflow_when_the_run_folder_is_gone(in_loop):
    import shutil

    from graftlab.lifecycle import find_protocol
    from graftlab.tracking import show

    v1 = next(v for v in show(NAME)["versions"] if v["version"] == 1)
    assert find_protocol(v1).found_in == "run folder"
    run_dir = in_loop["champion_run"]
    moved = run_dir.with_name(run_dir.name + "-moved")
    shutil.move(run_dir, moved)
    try:
        protocol = find_protocol(v1)
    finally:
        shutil.move(moved, run_dir)
    assert protocol.found_in == "mlflow artifacts" and protocol.config.name == NAME
    assert protocol.split["fingerprint"] and set(protocol.split["ids"]) == {"train", "val", "test"}


def test_original_data_must_match_the_recorded_fingerprint(in_loop, tmp_path):
    from graftlab.core.errors import ConfigError
    from graftlab.lifecycle import find_protocol, original_frame
    from graftlab.tracking import show

    protocol = find_protocol(next(v for v in show(NAME)["versions"] if v["version"] == 1))
    frame, info = original_frame(protocol)
    assert info["fingerprint_matches"] and len(frame) == sum(info["rows"].values())
    changed = pd.read_csv("reviews.csv")
    changed.loc[0, "score"] = FLIP[changed.loc[0, "score"]]
    changed.to_csv(tmp_path / "changed.csv", index=False)
    with pytest.raises(ConfigError, match="fingerprint"):
        original_frame(protocol, tmp_path / "changed.csv")
    _, info = original_frame(protocol, tmp_path / "changed.csv", allow_changed=True)
    assert not info["fingerprint_matches"]
    protocol.config.data.source = None  # a study that was given a DataFrame
    with pytest.raises(ConfigError, match="--data"):
        original_frame(protocol)
    frame, info = original_frame(protocol, pd.read_csv("reviews.csv"))
    assert info["fingerprint_matches"] and info["source"] == "given"


def test_the_loop_on_an_image_model(tmp_path, monkeypatch):
    """Image folder study -> champion served with logged images -> feedback -> monitor alert -> retrain on the
    original images + the logged ones (as PNG bytes in the retrain table) -> a challenger and a recorded decision."""
    import base64
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from graftlab.core.config import StudyConfig
    from graftlab.serving import ServeConfig, create_app
    from graftlab.study import Study
    from graftlab.testing import make_tiny_cnn, synthetic_images

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAFT_TRACKING_URI", raising=False)
    original = synthetic_images(120, seed=0)
    for i, row in original.iterrows():
        folder = tmp_path / "shapes" / row["shape"]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(row["image"]).save(folder / f"{i}.png")
    cfg = StudyConfig.from_dict({
        "name": "tiny-shapes", "data": {"source": {"kind": "image_folder", "path": "shapes"}, "label": "label",
                                        "slices": ["brightness_quartile"]},
        "backbones": [str(make_tiny_cnn(tmp_path / "cnn"))], "strategies": ["majority", "pixel_logreg", "linear_probe"],
        "train": {"epochs": 1, "batch_size": 16},
        "eval": {"seeds": 1, "bootstrap": 100, "latency": False, "robustness": False},
    })
    Study(cfg, progress=False).run()

    def encode(pixels):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode()

    new = list(synthetic_images(70, seed=21).image) + list(original.image[:5])  # 5 the champion already trained on
    db = tmp_path / "predictions.db"
    serve_cfg = ServeConfig.from_dict({"model": "tiny-shapes@champion", "log_db": str(db), "log_inputs": True})
    labels = ["hbar", "square", "vbar"]
    with TestClient(create_app(serve_cfg)) as client:
        for i in range(0, len(new), 15):
            answer = client.post("/v1/predict", json={"images": [encode(x) for x in new[i:i + 15]]})
            assert answer.status_code == 200, answer.text
            for p in answer.json()["predictions"]:  # every label contradicts the model
                wrong = labels[(labels.index(p["label"]) + 1) % 3]
                assert client.post("/v1/feedback", json={"request_id": p["request_id"], "label": wrong}).status_code == 200
    res = run_cli("retrain", "tiny-shapes", "--log-db", db, "--min-new-labels", "30", "--fresh-monitor")
    assert res.exit_code == 0, res.output
    record = json.loads(max(Path(".graft/retrain/tiny-shapes").glob("*/decision.json")).read_text())
    ev = record["evidence"]
    assert ev["trigger"]["alerted"] and ev["new_labels"]["labeled"] == 75
    assert ev["new_labels"]["in_original_data"] == 5 and ev["new_labels"]["usable"] == 70
    assert record["challenger_version"] == 2 and record["decision"] in ("keep", "promote", "canary")
    assert ev["comparison"]["comparable"] and ev["comparison"]["n"] == ev["split"]["holdout"]["n"]
    table = pd.read_parquet(max(Path(".graft/retrain/tiny-shapes").glob("*/training_data.parquet")))
    assert len(table) == 120 + ev["split"]["train"]["n"] + ev["split"]["val"]["n"]
    assert all(isinstance(v, bytes) and v.startswith(b"\x89PNG") for v in table["image"])
