"""The model card is built from recorded evidence and travels with the run and the packaged model."""

from __future__ import annotations

import json

from graftlab.core.artifacts import verify_manifest
from graftlab.packaging import load_model
from graftlab.tracking import build_model_card
from graftlab.tracking.card import card_markdown

# the least a study's results hold: who ran, and one strategy that won
MINIMAL = {"study": "reviews", "run_id": "20260101-000000", "winner": "majority",
           "strategies": {"majority": {"kind": "baseline"}}}


def test_card_is_in_the_run_folder_and_the_verified_model(tracked):
    run_dir = tracked.rich.run_dir
    for folder in (run_dir, run_dir / "model"):
        assert (folder / "model_card.md").is_file() and (folder / "model_card.json").is_file()
    manifest = verify_manifest(run_dir / "model")
    assert {"model_card.md", "model_card.json"} <= set(manifest["files"])
    model = load_model(run_dir / "model")  # the rewritten manifest still verifies every file
    assert model.card()["data"]["fingerprint"] == tracked.rich.results["data"]["fingerprint"]


def test_card_holds_the_fingerprint_metrics_and_reproduce_command(tracked):
    r = tracked.rich.results
    card = json.loads((tracked.rich.run_dir / "model_card.json").read_text())
    md = (tracked.rich.run_dir / "model_card.md").read_text()
    fp = r["data"]["fingerprint"]
    winner = r["strategies"][r["winner"]]
    assert card["data"]["fingerprint"] == fp and fp in md
    assert card["model"]["strategy"] == r["winner"]
    for m, v in winner["test"].items():
        assert card["metrics"][m]["value"] == v["value"]
    f1 = winner["test"]["macro_f1"]
    assert f"{f1['value']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}]" in md
    assert card["reproduce"]["command"] == f"graft reproduce {tracked.rich.info['mlflow_run_id']}"
    assert card["reproduce"]["command"] in md
    assert card["license_lineage"]["dataset_license"] == "CC-BY-4.0"
    assert card["license_lineage"]["backbone_license"] == r["backbone"]["license"]
    assert card["intended_use"]["labels"] == r["data"]["label_names"]
    assert card["gates"]["passed"] is True and "## Gates: PASS" in md
    assert set(card["baselines"]) == {s for s, e in r["strategies"].items() if e["kind"] == "baseline"} - {r["winner"]}


def test_card_failure_modes_come_from_the_confusion_matrix():
    results = {
        "study": "reviews", "run_id": "20260101-000000", "winner": "full", "headline_metric": "macro_f1",
        "data": {"label_names": ["a", "b", "c"], "fingerprint": "f" * 64},
        "strategies": {"full": {"kind": "transfer", "test": {"macro_f1": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}},
                                "confusion_matrix": [[5, 4, 0], [1, 6, 0], [0, 0, 3]],
                                "per_class": {c: {"precision": f1, "recall": f1, "f1": f1, "support": n}
                                              for c, f1, n in (("a", 0.6, 9), ("b", 0.7, 7), ("c", 1.0, 3))}}},
        "slices": [{"slice_column": "product", "slice": "p1", "n": 30, "metric": "accuracy", "value": 0.4,
                    "ci_low": 0.3, "ci_high": 0.5, "diff": -0.3, "flagged": True, "too_small": False}],
        "exit": {"gates_passed": False}, "gates": [{"gate": "macro_f1 >= 0.8", "passed": False, "evidence": "0.5"}],
    }
    card = build_model_card(results)
    modes = card["known_failure_modes"]
    assert modes["most_confused"][0] == {"true": "a", "predicted": "b", "count": 4, "share_of_true": 4 / 9}
    assert [s["slice"] for s in modes["flagged_slices"]] == ["p1"]
    assert modes["weakest_classes"][0] == {"class": "a", "f1": 0.6}
    md = card_markdown(card)
    assert "a → b: 4" in md and "## Gates: FAIL" in md
    assert "| product | p1 | 30 |" in md and "Flagged slices: product: p1" in md
    assert card["license_lineage"]["dataset_license"].startswith("not given")


def test_card_tolerates_missing_evidence():
    md = card_markdown(build_model_card(MINIMAL))
    assert "# Model card" in md and "graft reproduce 20260101-000000" in md


def test_card_names_automatic_slices_once():
    slices = [{"slice_column": "class", "slice": "class=great", "n": 40, "metric": "accuracy", "value": 0.9},
              {"slice_column": "length", "slice": "len Q1 (3-20 words)", "n": 25, "metric": "accuracy", "value": 0.8}]
    md = card_markdown(build_model_card({**MINIMAL, "slices": slices}))
    assert "| class | great | 40 |" in md and "| length | len Q1 (3-20 words) | 25 |" in md
    assert "class=" not in md


def test_card_json_read_back_renders_the_same_markdown(tracked):
    run_dir = tracked.rich.run_dir
    card = json.loads((run_dir / "model_card.json").read_text())
    assert card["baselines"]  # the headline score of each baseline is keyed by the metric's name
    assert card_markdown(card) == (run_dir / "model_card.md").read_text()


def test_card_says_no_gates_were_declared_instead_of_pass():
    md = card_markdown(build_model_card({**MINIMAL, "gates": [], "exit": {"gates_passed": True}}))
    assert "## Gates: No gates declared" in md and "## Gates: PASS" not in md
