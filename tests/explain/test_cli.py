"""``graft explain``: coloured tokens in the terminal, JSON on request, clear errors."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from graftlab.cli import app

COLOUR = {"FORCE_COLOR": "1", "COLORTERM": "truecolor", "TERM": "xterm-256color", "COLUMNS": "120"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize("method", ["ig", "occlusion"])
def test_explain_prints_coloured_words(runner, packaged_dir, method):
    text = "the tea was delicious and fresh"
    res = runner.invoke(app, ["explain", str(packaged_dir), "--text", text, "--method", method], env=COLOUR)
    assert res.exit_code == 0, res.output
    plain = ANSI.sub("", res.output)
    assert text in plain and ("integrated gradients" if method == "ig" else "occlusion") in plain
    assert "for:" in plain and "against:" in plain
    backgrounds = set(re.findall(r"\x1b\[[0-9;]*48;2;(\d+);(\d+);(\d+)", res.output))  # truecolor backgrounds
    assert any(int(r) > int(b) for r, _, b in backgrounds), "no red (evidence for) word"
    assert len(backgrounds) >= 3


def test_explain_json_and_target(runner, packaged_dir):
    res = runner.invoke(app, ["explain", str(packaged_dir), "--text", "awful stale tea", "--text", "tasty tea",
                              "--method", "occlusion", "--target", "other", "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.strip().splitlines()]
    assert [e["text"] for e in lines] == ["awful stale tea", "tasty tea"]
    assert all(e["target_label"] == "other" for e in lines)
    assert lines[0]["words"] == ["awful", "stale", "tea"]


def test_explain_json_shares_the_prediction_schema(runner, packaged_dir):
    from graftlab.packaging import load_model

    res = runner.invoke(app, ["explain", str(packaged_dir), "--text", "tasty tea", "--method", "occlusion", "--json"])
    assert res.exit_code == 0, res.output
    e = json.loads(res.output)
    assert "prob" not in e and "probs" not in e
    expected = load_model(packaged_dir).predict_proba(["tasty tea"])[0]
    assert e["probabilities"] == pytest.approx(dict(zip(["great", "other"], expected.tolist())), abs=1e-5)
    assert e["confidence"] == pytest.approx(float(expected.max()), abs=1e-5) and e["label"] in ("great", "other")


def test_explain_user_errors_exit_2(runner, packaged_dir, tmp_path):
    res = runner.invoke(app, ["explain", str(tmp_path / "nope"), "--text", "tea"])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["explain", str(packaged_dir), "--text", "tea", "--method", "shap"])
    assert res.exit_code == 2 and "'method'" in res.output
    res = runner.invoke(app, ["explain", str(packaged_dir)])
    assert res.exit_code == 2 and "--text" in res.output


def test_registry_reference_goes_to_the_registry(runner, monkeypatch, packaged_dir):
    registry = pytest.importorskip("graftlab.tracking.registry")
    asked = []
    monkeypatch.setattr(registry, "resolve_model", lambda ref, tracking_uri=None: asked.append(ref) or packaged_dir)
    monkeypatch.setattr(registry, "show", lambda name, tracking_uri=None: {"name": name, "aliases": {"champion": 1}})
    res = runner.invoke(app, ["explain", "reviews@champion", "--text", "tasty tea", "--method", "occlusion"])
    assert res.exit_code == 0, res.output
    assert asked == ["reviews@champion"] and "tasty tea" in res.output


def test_registry_reference_without_tracking_is_a_clear_error(runner, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "graftlab.tracking.registry", None)  # as if the module were absent
    res = runner.invoke(app, ["explain", "reviews@champion", "--text", "tea"])
    assert res.exit_code == 2 and "NAME@alias" in res.output and "model folder" in res.output
