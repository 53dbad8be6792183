"""The study end to end on the tiny BERT: outputs, determinism, reload in a new process, SIGKILL resume,
CLI exit codes and the report in a real browser."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from graftlab.cli import app
from graftlab.core.config import StudyConfig
from graftlab.packaging import load_model
from graftlab.study import Study

STRATEGIES = ["majority", "tfidf_logreg", "scratch", "linear_probe", {"finetune": {"trainable_layers": 1}}, "full"]


def config(tiny_bert, out, **over):
    cfg = {
        "name": "tiny",
        "data": {"source": {"kind": "csv", "path": str(out / "reviews.csv")}, "text": "review", "label": "score"},
        "backbones": [tiny_bert],
        "strategies": STRATEGIES,
        "train": {"epochs": 2, "lr": 3e-3, "batch_size": 16, "max_length": 32, "checkpoint_every_steps": 3},
        "eval": {"seeds": 2, "bootstrap": 200, "gates": ["macro_f1 >= 0.5", "beats: majority"]},
        "output_dir": str(out / "runs"),
    }
    for k, v in over.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


@pytest.fixture
def study_dir(tmp_path, reviews):
    reviews.to_csv(tmp_path / "reviews.csv", index=False)
    return tmp_path


def metrics_of(results):
    return {s: {m: v["test"][m]["value"] for m in ("accuracy", "macro_f1", "log_loss")} for s, v in results["strategies"].items()}


def test_study_writes_every_output_and_is_reproducible(tiny_bert, study_dir):
    cfg = StudyConfig.from_dict(config(tiny_bert, study_dir))
    first = Study(cfg, progress=False).run()
    run = first.run_dir
    for name in ("results.json", "report.html", "decision.md", "decision.json", "split.json", "config.yaml"):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    assert set(results["strategies"]) == {"majority", "tfidf_logreg", "scratch", "linear_probe", "finetune[trainable_layers=1]", "full"}
    for s in results["strategies"].values():
        ci = s["test"]["accuracy"]
        assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]
    assert len(results["strategies"]["full"]["seed_stats"]["accuracy"]["values"]) == 2
    # a deterministic strategy is fitted once: another seed would give the same model
    assert {s: v["seeds"] for s, v in results["strategies"].items() if len(v["seeds"]) == 1} == {
        "majority": [0], "tfidf_logreg": [0], "linear_probe": [0]}
    trials = {p.parent.parent.name: json.loads(p.read_text()) for p in (run / "trials").glob("*/size-all/seed-1/result.json")}
    assert trials and all("latency_ms_b1" not in r for r in trials.values())  # the same architecture: measured once
    assert results["strategies"]["full"]["latency_ms_b1"] > 0
    assert results["data"]["fingerprint"] and results["backbone"]["weights_sha256"]
    assert (run / "predictions" / "full.parquet").is_file()
    assert results["exit"]["gates_passed"] is True
    assert {g["gate"] for g in results["gates"]} == {"macro_f1 >= 0.5", "beats: majority"}

    second = Study(cfg, progress=False).run()
    assert metrics_of(second.results) == metrics_of(results)  # same seeds, same numbers


def test_saved_model_reloads_in_a_new_process_with_identical_probabilities(tiny_bert, study_dir):
    cfg = StudyConfig.from_dict(config(tiny_bert, study_dir, strategies=["linear_probe", "full"], eval={"seeds": 1}))
    res = Study(cfg, progress=False).run()
    texts = ["good tasty coffee", "awful stale snack", "the price of the box"]
    here = load_model(res.model_dir).predict_proba(texts)
    code = ("import json,sys; from graftlab.packaging import load_model; "
            f"print(json.dumps(load_model(sys.argv[1]).predict_proba({texts!r}).tolist()))")
    out = subprocess.run([sys.executable, "-c", code, str(res.model_dir)], capture_output=True, text=True, check=True)
    there = np.array(json.loads(out.stdout))
    np.testing.assert_array_equal(here, there.astype(here.dtype))


def test_sigkill_mid_training_then_resume_gives_the_uninterrupted_metrics(tiny_bert, study_dir):
    over = {"strategies": ["majority", "full"], "train": {"epochs": 8}, "eval": {"seeds": 1}}
    cfg_dict = config(tiny_bert, study_dir, **over)
    reference = Study(StudyConfig.from_dict(cfg_dict), progress=False).run()

    path = study_dir / "study.yaml"
    cfg_dict["output_dir"] = str(study_dir / "killed")
    path.write_text(yaml.safe_dump(cfg_dict))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "graftlab.cli", "study", str(path), "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        ckpt = None
        while time.time() < deadline and ckpt is None:
            found = list((study_dir / "killed").glob("tiny/*/trials/full/size-all/seed-0/checkpoint/state.json"))
            if found and json.loads(found[0].read_text())["step"] >= 6:
                ckpt = found[0]
            time.sleep(0.05)
        assert ckpt is not None, "no checkpoint appeared"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir = ckpt.parents[5]
    assert not (run_dir / "results.json").exists()  # it really died mid-study
    assert not (ckpt.parents[1] / "result.json").exists()

    result = subprocess.run([sys.executable, "-m", "graftlab.cli", "study", "--resume", str(run_dir), "--no-progress"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = json.loads((run_dir / "results.json").read_text())
    assert metrics_of(resumed) == metrics_of(reference.results)
    strip = lambda hs: [{k: v for k, v in h.items() if k != "elapsed_s"} for h in hs[0]]  # noqa: E731
    assert strip(resumed["strategies"]["full"]["history"]) == strip(reference.results["strategies"]["full"]["history"])


def test_cli_study_exit_code_follows_the_gates_and_predict_reads_the_model(tiny_bert, study_dir):
    from typer.testing import CliRunner

    runner = CliRunner()
    cfg = config(tiny_bert, study_dir, strategies=["majority", "tfidf_logreg"], eval={"seeds": 1, "gates": ["macro_f1 >= 1.5"]})
    path = study_dir / "impossible.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["study", str(path), "--no-progress"])
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.output

    cfg["eval"]["gates"] = ["macro_f1 >= 0.5"]
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["study", str(path), "--no-progress"])
    assert res.exit_code == 0, res.output
    model = next((study_dir / "runs" / "tiny").glob("*/model"))
    res = runner.invoke(app, ["predict", str(model), "--text", "great tasty coffee", "--text", "awful stale tea"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.strip().splitlines()]
    assert [r["label"] for r in rows] == ["great", "other"]
    (study_dir / "new.csv").write_text("id,review\n1,great tasty coffee\n2,awful stale tea\n")
    res = runner.invoke(app, ["predict", str(model), "--file", str(study_dir / "new.csv")])  # the model's column: review
    assert res.exit_code == 0 and [json.loads(x)["label"] for x in res.output.strip().splitlines()] == ["great", "other"]
    (study_dir / "gaps.csv").write_text("id,review\n1,great tasty coffee\n2,\\N\n3,\n")
    res = runner.invoke(app, ["predict", str(model), "--file", str(study_dir / "gaps.csv")])
    assert res.exit_code == 0 and len(res.stdout.strip().splitlines()) == 3  # every row scored, none lost
    assert "2 of 3 inputs are empty (rows 1, 2 of --file)" in res.stderr
    res = runner.invoke(app, ["predict", str(model), "--image", str(study_dir / "new.csv")])
    assert res.exit_code == 2 and "is a text model: pass --text" in res.output
    (study_dir / "old.csv").write_bytes("review;x\ncafé great\n".encode("cp1252"))
    res = runner.invoke(app, ["predict", str(model), "--file", str(study_dir / "old.csv"), "--sep", ";"])
    assert res.exit_code == 2 and "Set --encoding to the file's encoding" in res.output
    res = runner.invoke(app, ["predict", str(model), "--file", str(study_dir / "old.csv"), "--sep", ";", "--encoding", "cp1252"])
    assert res.exit_code == 0 and json.loads(res.output)["review"] == "café great", res.output

    res = runner.invoke(app, ["predict", str(study_dir / "nope")])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_user_errors_in_the_study_are_clear(tiny_bert, study_dir):
    from graftlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="listed twice"):
        Study(StudyConfig.from_dict(config(tiny_bert, study_dir, strategies=["full", "full"]))).strategies
    with pytest.raises(ConfigError, match="Unknown backbone 'nope'"):
        Study(StudyConfig.from_dict(config(tiny_bert, study_dir, backbones=["nope"]))).prepare()


@pytest.mark.browser
def test_report_of_a_real_study_renders_in_chromium(tiny_bert, study_dir):
    sys.path.insert(0, str(Path(__file__).parents[1] / "reporting"))
    from test_browser import CHROMIUM, screenshot

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    cfg = StudyConfig.from_dict(config(tiny_bert, study_dir, eval={"seeds": 1}))
    run = Study(cfg, progress=False).run().run_dir
    png = run / "report.png"
    proc = screenshot(run / "report.html", png, height=3000)
    assert "Uncaught" not in proc.stderr
    assert png.stat().st_size > 20_000


def test_several_backbones_run_a_bakeoff_and_the_study_continues_with_its_winner(tiny_bert, study_dir, tmp_path):
    from graftlab.testing import make_tiny_bert

    other = str(make_tiny_bert(tmp_path / "other-bert", hidden=16, seed=1))
    cfg = StudyConfig.from_dict(config(tiny_bert, study_dir, backbones=[tiny_bert, other], strategies=["majority", "linear_probe"],
                                       eval={"seeds": 1, "explain": "occlusion"}, bakeoff={"subset": None, "folds": 3}))
    res = Study(cfg, progress=False).run()
    bake = res.results["bakeoff"]
    assert {c["backbone"] for c in bake["candidates"]} == {Path(tiny_bert).name, "other-bert"}
    assert res.results["backbone"]["name"] == bake["winner"]
    assert (res.run_dir / "bakeoff.json").is_file()
    assert "Backbone bake-off" in (res.run_dir / "report.html").read_text()
