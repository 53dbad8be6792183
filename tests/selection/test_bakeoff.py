"""The bake-off: candidates scored once on cached embeddings, a winner by the configured rule."""

import json
import math
import shutil

import numpy as np
import pytest

from graftlab.backbones import embedding_cache as ec
from graftlab.backbones import get_backbone
from graftlab.backbones.catalog import latency_cache_path, latency_key
from graftlab.core.config import StudyConfig
from graftlab.core.errors import ConfigError
from graftlab.selection import bakeoff_subset, pick_winner, probe_cv_accuracy, run_bakeoff

KEYS = {"backbone", "logme", "probe_cv_accuracy", "latency_ms_b1", "latency_ms_b32", "license", "commercial_use",
        "allowed", "reason", "score", "seconds"}


def config(backbones, bakeoff=None, require=None, **extra):
    return StudyConfig.from_dict({"name": "t", "data": {}, "backbones": list(backbones),
                                  "bakeoff": {"subset": 80, "folds": 3, "C": [0.01, 1.0], **(bakeoff or {})},
                                  "require": require or {}, "train": {"max_length": 32, "eval_batch_size": 16},
                                  **extra})


@pytest.fixture
def fresh_memory(monkeypatch):
    """An empty in-process embedding cache (the disk cache is per test already)."""
    monkeypatch.setattr(ec, "_MEMORY", {})


def set_latency(path_or_name, ms):
    """Pretend this machine measured ``ms`` for a backbone (the bake-off reads the catalog's cache)."""
    bb = get_backbone(path_or_name)
    path = latency_cache_path()
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[latency_key(bb)] = {"latency_ms_b1": ms, "latency_ms_b32": ms / 4}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_two_tiny_berts_return_a_winner_with_every_field(tiny_berts, splits, fresh_memory):
    train, val = splits
    out = run_bakeoff(config(tiny_berts), train, val, progress=False)
    names = [get_backbone(p).card.name for p in tiny_berts]
    assert [c["backbone"] for c in out["candidates"]] == names
    assert out["winner"] in names and out["runner_up"] in names and out["winner"] != out["runner_up"]
    for c in out["candidates"]:
        assert KEYS <= set(c), KEYS - set(c)
        assert 0.0 <= c["probe_cv_accuracy"] <= 1.0 and math.isfinite(c["logme"])
        assert c["score"] == c["probe_cv_accuracy"] and c["allowed"] is True and c["reason"] == "ok"
        assert c["latency_ms_b1"] > 0 and c["seconds"] > 0 and c["folds"] == len(c["probe_cv_folds"]) == 3
        assert c["probe_cv_accuracy"] == pytest.approx(np.mean(c["probe_cv_folds"]), abs=1e-5)
    best = max(out["candidates"], key=lambda c: c["score"])
    assert out["winner"] == best["backbone"]
    assert out["subset"] == 80 and "highest probe_cv" in out["rule"] and out["seconds"] > 0
    assert out["winner"] in out["reading"] and "paired over the same 3 folds" in out["reading"]


def test_embeddings_are_computed_once_per_backbone_and_data(tiny_berts, splits, fresh_memory, monkeypatch):
    train, val = splits
    cfg = config(tiny_berts, {"score": "logme"})
    start = ec.STATS["forward_batches"]
    first = run_bakeoff(cfg, train, val, progress=False)
    per_candidate = math.ceil(80 / 16)  # subset rows / eval batch size
    assert ec.STATS["forward_batches"] - start == 2 * per_candidate
    assert [c["forward_batches"] for c in first["candidates"]] == [per_candidate, per_candidate]

    # a second bake-off (another score) and the embeddings of the same subset reuse the cache
    mid = ec.STATS["forward_batches"]
    second = run_bakeoff(config(tiny_berts, {"score": "probe_cv"}), train, val, progress=False)
    sub = bakeoff_subset(train, 80, cfg.seed)
    for path in tiny_berts:
        get_backbone(path).embed(sub.inputs, max_length=32, batch_size=16)
    assert ec.STATS["forward_batches"] == mid
    assert [c["forward_batches"] for c in second["candidates"]] == [0, 0]
    assert [c["logme"] for c in second["candidates"]] == [c["logme"] for c in first["candidates"]]

    # a new process (empty memory) reads them from disk instead of recomputing
    monkeypatch.setattr(ec, "_MEMORY", {})
    hits = ec.STATS["disk_hits"]
    run_bakeoff(cfg, train, val, progress=False)
    assert ec.STATS["forward_batches"] == mid and ec.STATS["disk_hits"] == hits + 2


def test_latency_budget_excludes_slow_candidates(tiny_berts, splits, fresh_memory):
    train, val = splits
    fast, slow = tiny_berts
    set_latency(fast, 5.0)
    set_latency(slow, 50.0)
    out = run_bakeoff(config(tiny_berts, {"latency_budget_ms": 10}), train, val, progress=False)
    rows = {c["backbone"]: c for c in out["candidates"]}
    slow_row = rows[get_backbone(slow).card.name]
    assert out["winner"] == get_backbone(fast).card.name
    assert slow_row["allowed"] is False and "exceeds the budget of 10 ms" in slow_row["reason"]
    assert slow_row["probe_cv_accuracy"] is not None  # still scored: the report shows what the budget costs
    assert "latency ≤ 10 ms" in out["rule"]


def test_no_candidate_within_budget_fails_before_embedding(tiny_berts, splits, fresh_memory):
    train, val = splits
    for p in tiny_berts:
        set_latency(p, 50.0)
    before = ec.STATS["forward_batches"]
    with pytest.raises(ConfigError, match="latency_budget_ms = 1 ms") as err:
        run_bakeoff(config(tiny_berts, {"latency_budget_ms": 1}), train, val, progress=False)
    assert "Raise the budget" in str(err.value)
    assert ec.STATS["forward_batches"] == before


def test_license_allow_list_excludes_a_candidate_without_computing_it(tiny_berts, splits, tmp_path, fresh_memory):
    train, val = splits
    mit = tmp_path / "mit-model"
    shutil.copytree(tiny_berts[1], mit)
    (mit / "README.md").write_text("---\nlicense: mit\n---\n")
    out = run_bakeoff(config([tiny_berts[0], str(mit)], require={"licenses": ["MIT"]}), train, val, progress=False)
    rows = {c["backbone"]: c for c in out["candidates"]}
    refused = rows[get_backbone(tiny_berts[0]).card.name]
    assert out["winner"] == "mit-model"
    assert refused["allowed"] is False and refused["reason"].startswith("license:") and "'unknown'" in refused["reason"]
    assert refused["logme"] is None and refused["latency_ms_b1"] is None and refused["score"] is None
    assert rows["mit-model"]["license"] == "MIT"


def test_prefer_faster_within_a_margin(tiny_berts, splits, fresh_memory):
    train, val = splits
    set_latency(tiny_berts[0], 30.0)
    set_latency(tiny_berts[1], 3.0)
    out = run_bakeoff(config(tiny_berts, {"prefer_faster_within": 1.0}), train, val, progress=False)
    assert out["winner"] == get_backbone(tiny_berts[1]).card.name  # every accuracy is within 1.0 of the best


def test_short_finetune_can_be_the_score(tiny_berts, splits, fresh_memory):
    train, val = splits
    cfg = config(tiny_berts[:1], {"finetune": True, "score": "finetune", "finetune_layers": 5, "subset": 40},
                 )
    out = run_bakeoff(cfg, train, val, progress=False)
    (row,) = out["candidates"]
    assert 0.0 <= row["finetune_val_accuracy"] <= 1.0 and row["score"] == row["finetune_val_accuracy"]
    assert row["finetune_seconds"] > 0 and "short fine-tune" in out["rule"]


def test_pick_winner_rule():
    rows = [
        {"backbone": "a", "allowed": True, "probe_cv_accuracy": 0.80, "latency_ms_b1": 50.0},
        {"backbone": "b", "allowed": True, "probe_cv_accuracy": 0.79, "latency_ms_b1": 5.0},
        {"backbone": "c", "allowed": False, "probe_cv_accuracy": 0.95, "latency_ms_b1": 1.0},
        {"backbone": "d", "allowed": True, "probe_cv_accuracy": None, "latency_ms_b1": 1.0},
    ]
    assert pick_winner(rows, "probe_cv")["backbone"] == "a"
    assert pick_winner(rows, "probe_cv", margin=0.02)["backbone"] == "b"
    assert pick_winner(rows[2:3], "probe_cv") is None


def test_subset_is_stratified_deterministic_and_sized(splits):
    train, _ = splits
    a, b = bakeoff_subset(train, 60, seed=3), bakeoff_subset(train, 60, seed=3)
    assert len(a) == 60 and list(a.ids) == list(b.ids) and len(set(a.ids)) == 60
    frac = np.bincount(train.labels) / len(train)
    assert np.abs(np.bincount(a.labels) / 60 - frac).max() < 0.02
    assert bakeoff_subset(train, None, 0) is train and bakeoff_subset(train, 10_000, 0) is train


def test_probe_cv_uses_fewer_folds_for_a_small_class():
    rng = np.random.default_rng(0)
    y = np.array([0] * 30 + [1] * 3)
    x = rng.normal(size=(33, 4)) + y[:, None]
    folds = probe_cv_accuracy(x, y, folds=5, C=1.0, seed=0)
    assert len(folds) == 3 and ((0 <= folds) & (folds <= 1)).all()


def test_probe_cv_separates_signal_from_noise_with_a_nested_c_grid():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 120)
    noise = rng.normal(size=(120, 40))
    signal = noise.copy()
    signal[:, :3] += 2.5 * y[:, None]
    grid = [0.001, 0.01, 0.1, 1.0]
    good = probe_cv_accuracy(signal, y, folds=4, C=grid, seed=0).mean()
    bad = probe_cv_accuracy(noise, y, folds=4, C=grid, seed=0).mean()
    assert good > 0.85 and bad < 0.7


def test_config_rejects_finetune_score_without_finetune():
    with pytest.raises(ConfigError, match="finetune: true"):
        config(["a", "b"], {"score": "finetune"})
