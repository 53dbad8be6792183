"""Slice metrics flag a deliberately worse slice, leave equal slices alone, and auto_slices labels well."""

import json

import numpy as np
import pytest

from graftlab.evaluation import auto_slices, slice_metrics


def sliced_predictions(rng, accuracies, per_slice, k=3):
    """Examples in slices 'A', 'B', ... whose predictions are right with the given accuracy."""
    group = np.repeat([chr(ord("A") + i) for i in range(len(accuracies))], per_slice)
    acc = np.repeat(accuracies, per_slice)
    y = rng.integers(0, k, size=group.size)
    top = np.where(rng.random(group.size) < acc, y, (y + 1) % k)
    return y, np.eye(k)[top] * 0.7 + 0.1, group


def test_flags_the_worse_slice_only():
    y, p, group = sliced_predictions(np.random.default_rng(0), [0.85, 0.85, 0.55], 300)
    rows = {r["slice"]: r for r in slice_metrics(y, p, {"source": group}, "accuracy", n_boot=1000)}
    assert rows["C"]["flagged"] and rows["C"]["diff_ci_high"] < 0
    assert not rows["A"]["flagged"] and not rows["B"]["flagged"]
    assert rows["C"]["value"] == pytest.approx(float((p.argmax(1) == y)[group == "C"].mean()))
    assert rows["C"]["overall"] == pytest.approx(float((p.argmax(1) == y).mean()))
    assert rows["C"]["ci_low"] <= rows["C"]["value"] <= rows["C"]["ci_high"]
    assert rows["A"]["flag_confidence"] == pytest.approx(1 - 0.05 / 3)  # Bonferroni over 3 slices


def test_flags_a_worse_slice_with_macro_f1_too():
    y, p, group = sliced_predictions(np.random.default_rng(1), [0.9, 0.5], 300)
    rows = {r["slice"]: r for r in slice_metrics(y, p, {"g": group}, "macro_f1", n_boot=500)}
    assert rows["B"]["flagged"] and not rows["A"]["flagged"]


def test_equal_slices_are_rarely_flagged():
    # 100 data sets with four slices of equal true accuracy. Flagging is one-sided, so with the
    # Bonferroni correction the chance that any slice is flagged is about 2.5% per data set
    # (without it, about 10%: 8/100 here). We allow up to 5/100 for simulation noise.
    rng = np.random.default_rng(2)
    any_flag = 0
    for rep in range(100):
        y, p, group = sliced_predictions(rng, [0.75] * 4, 100)
        rows = slice_metrics(y, p, {"g": group}, "accuracy", n_boot=400, seed=rep)
        any_flag += any(r["flagged"] for r in rows)
    assert any_flag <= 5


def test_lower_is_better_metric_flags_a_higher_loss():
    y, p, group = sliced_predictions(np.random.default_rng(3), [0.9, 0.9, 0.5], 200)
    rows = {r["slice"]: r for r in slice_metrics(y, p, {"g": group}, "log_loss", n_boot=500)}
    assert rows["C"]["diff"] > 0 and rows["C"]["flagged"] and not rows["A"]["flagged"]


def test_small_slices_are_reported_but_not_judged():
    y, p, group = sliced_predictions(np.random.default_rng(4), [0.8, 0.1], [200, 5])
    rows = {r["slice"]: r for r in slice_metrics(y, p, {"g": group}, n_boot=200, min_size=10)}
    tiny = rows["B"]
    assert tiny["too_small"] and not tiny["flagged"] and tiny["n"] == 5
    assert tiny["ci_low"] is None and tiny["diff_ci_high"] is None
    assert rows["A"]["flag_confidence"] == pytest.approx(0.95)  # one judged slice: no correction
    json.dumps(list(rows.values()))


def test_auto_slices_labels_length_quartiles_and_classes():
    lengths = [3, 5, 8, 10, 12, 15, 20, 30]
    inputs = [" ".join(["w"] * n) for n in lengths]
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    s = auto_slices(inputs, y, ["bad", "great"])
    assert list(s["class"][:2]) == ["class=bad", "class=great"]
    assert list(s["length"]) == [
        "len Q1 (3-5 words)", "len Q1 (3-5 words)",
        "len Q2 (8-10 words)", "len Q2 (8-10 words)",
        "len Q3 (12-15 words)", "len Q3 (12-15 words)",
        "len Q4 (20-30 words)", "len Q4 (20-30 words)",
    ]  # fmt: skip
    assert set(auto_slices(None, y, ["bad", "great"])) == {"class"}


def test_auto_slices_feed_slice_metrics():
    rng = np.random.default_rng(5)
    y, p, _ = sliced_predictions(rng, [0.8], 200)
    inputs = ["word " * int(n) for n in rng.integers(1, 50, size=200)]
    rows = slice_metrics(y, p, auto_slices(inputs, y, ["a", "b", "c"]), n_boot=200)
    assert [r["slice_column"] for r in rows] == ["length"] * 4 + ["class"] * 3
    assert sum(r["n"] for r in rows if r["slice_column"] == "length") == 200
