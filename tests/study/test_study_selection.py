"""The study's ablation of enabled knobs and its choice between validation-split and k-fold selection."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from graftlab import load_model
from graftlab.strategies import load_predictor

from graftlab.core.config import StudyConfig, load_config
from graftlab.study import Study
from graftlab.testing import synthetic_reviews


def config(tiny_bert, tmp_path, n_rows, **over):
    synthetic_reviews(n_rows, seed=0).to_csv(tmp_path / "reviews.csv", index=False)
    cfg = {
        "name": "tiny",
        "data": {"source": {"kind": "csv", "path": str(tmp_path / "reviews.csv")}, "text": "review", "label": "score"},
        "backbones": [tiny_bert],
        "train": {"epochs": 1, "lr": 3e-3, "batch_size": 16, "max_length": 32},
        "eval": {"seeds": 2, "bootstrap": 200, "robustness": False, "explain": "off"},
        "tracking": {"enabled": False},
        "output_dir": str(tmp_path / "runs"),
    }
    for k, v in over.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return StudyConfig.from_dict(cfg)


def test_each_enabled_knob_is_ablated_with_a_paired_ci(tiny_bert, tmp_path):
    focal = {"finetune": {"trainable_layers": 1, "loss": {"kind": "focal", "gamma": 2.0}, "label": "finetune-focal"}}
    cfg = config(tiny_bert, tmp_path, 240, strategies=["majority", focal])
    res = Study(cfg, progress=False).run()
    rows = res.results["ablation"]
    assert [(r["strategy"], r["knob"]) for r in rows] == [("finetune-focal", "focal")]
    row = rows[0]
    assert row["ci_low"] <= row["diff"] <= row["ci_high"] and 0.0 <= row["p_value"] <= 1.0
    assert row["without"] == "cross-entropy instead of focal loss"
    # the variant ran the same seeds with plain cross-entropy, in its own trial folders, and differs from the original
    variant = res.run_dir / "trials" / "finetune-focal_without_focal" / "size-ablation"
    assert sorted(p.name for p in variant.iterdir()) == ["seed-0", "seed-1"]
    assert json.loads((variant / "seed-0" / "result.json").read_text())["params"]["loss"]["kind"] == "ce"
    assert row["diff"] != 0.0
    html = (res.run_dir / "report.html").read_text()
    assert 'id="ablation"' in html and "finetune-focal" in html


def test_ablation_can_be_turned_off_and_plain_strategies_have_nothing_to_ablate(tiny_bert, tmp_path):
    focal = {"finetune": {"trainable_layers": 1, "loss": {"kind": "focal"}}}
    off = Study(config(tiny_bert, tmp_path, 240, strategies=[focal], eval={"ablation": False, "seeds": 1}), progress=False).run()
    assert "ablation" not in off.results and not any("without" in p.name for p in (off.run_dir / "trials").iterdir())
    plain = Study(config(tiny_bert, tmp_path, 240, strategies=["linear_probe"], eval={"seeds": 1}), progress=False).run()
    assert "ablation" not in plain.results


def test_tiny_training_split_selects_by_kfold_and_says_why(tiny_bert, tmp_path):
    cfg = config(tiny_bert, tmp_path, 60, strategies=["majority", "tfidf_logreg"], eval={"seeds": 1})
    res = Study(cfg, progress=False).run()
    sel = res.results["selection"]
    assert sel["selection_method"] == "repeated stratified k-fold"
    assert "fewer than 50" in sel["why"] and "cross-validation" in sel["why"]
    assert set(sel["kfold"]["scores"]) == {"majority", "tfidf_logreg"}
    assert res.winner == sel["ranking"][0]
    assert (res.run_dir / "selection.json").is_file()
    decision = (res.run_dir / "decision.md").read_text()
    assert "k-fold" in decision


@pytest.mark.parametrize("mode", ["validation", "kfold"])
def test_selection_mode_can_be_forced(tiny_bert, tmp_path, mode):
    rows = 60 if mode == "validation" else 240
    cfg = config(tiny_bert, tmp_path, rows, strategies=["majority", "tfidf_logreg"], eval={"seeds": 1, "selection": mode})
    sel = Study(cfg, progress=False).run().results["selection"]
    expected = {"validation": "validation split", "kfold": "repeated stratified k-fold"}[mode]
    assert sel["selection_method"] == expected and f"eval.selection: {mode}" in sel["why"]


def test_without_strategies_a_tiny_study_runs_the_few_shot_defaults(tiny_bert, tmp_path):
    cfg = config(tiny_bert, tmp_path, 60, eval={"seeds": 1})

    res = Study(cfg, progress=False).run()
    assert list(res.results["strategies"]) == ["majority", "tfidf_logreg", "contrastive", "linear_probe"]
    assert res.results["strategy_defaults"]["regime"].startswith("few-shot")
    assert res.results["selection"]["selection_method"] == "repeated stratified k-fold"
    assert "lists no strategies" in res.results["selection"]["why"]
    # the run folder's config.yaml leaves the strategies to the study, so --resume gets the same defaults back
    assert "strategies" not in yaml.safe_load((res.run_dir / "config.yaml").read_text())
    resumed = Study(load_config(res.run_dir / "config.yaml"), progress=False).run(resume=res.run_dir)
    assert list(resumed.results["strategies"]) == list(res.results["strategies"])
    assert resumed.results["strategies"]["contrastive"]["test"] == res.results["strategies"]["contrastive"]["test"]
    # a config that names its strategies keeps them
    named = Study(config(tiny_bert, tmp_path, 60, strategies=["majority", "linear_probe"], eval={"seeds": 1}), progress=False).run()
    assert list(named.results["strategies"]) == ["majority", "linear_probe"] and "strategy_defaults" not in named.results


def test_an_ablation_variant_that_is_already_configured_reuses_its_trials(tiny_bert, tmp_path):
    focal = {"finetune": {"trainable_layers": 1, "loss": {"kind": "focal", "gamma": 3.0}, "label": "ft-focal"}}
    plain = {"finetune": {"trainable_layers": 1, "label": "ft"}}
    res = Study(config(tiny_bert, tmp_path, 240, strategies=[plain, focal], eval={"seeds": 1}), progress=False).run()
    (row,) = res.results["ablation"]
    assert (row["strategy"], row["knob"], row["variant"]) == ("ft-focal", "focal", "ft")
    assert not any("without" in p.name for p in (res.run_dir / "trials").iterdir())


def test_after_kfold_selection_the_winner_is_refit_on_every_labeled_example_and_shipped(tiny_bert, tmp_path):
    cfg = config(tiny_bert, tmp_path, 60, strategies=["majority", "linear_probe"], eval={"seeds": 2})
    res = Study(cfg, progress=False).run()
    sel, r = res.results["selection"], res.results
    assert sel["selection_method"] == "repeated stratified k-fold"
    refit = sel.refit
    n_labeled = r["data"]["splits"]["train"] + r["data"]["splits"]["val"]
    assert refit.done and refit.strategy == res.winner and refit.n_train == n_labeled
    assert refit.test["macro_f1"].ci_low <= refit.test["macro_f1"].value <= refit.test["macro_f1"].ci_high
    assert set(refit.vs_training_split.to_dict()) == {"diff", "ci_low", "ci_high", "p_value"}
    assert f"all {n_labeled} labeled examples" in sel["why"]
    folder = res.run_dir / "trials" / res.winner / "size-refit" / f"seed-{refit.seed}"
    assert json.loads((folder / "result.json").read_text())["n_train"] == n_labeled
    meta = json.loads((res.run_dir / "model" / "model.json").read_text())
    assert meta["refit_on_train_val"] is True and meta["temperature"] == 1.0
    assert meta["metrics"] == refit.to_dict()["test"]
    # the packaged model is the refit: it predicts what the refit trial predicted
    texts = pd.read_csv(tmp_path / "reviews.csv").review.tolist()[:5]
    refit_model = load_predictor(folder / "model")
    assert np.allclose(load_model(res.run_dir / "model").predict_logits(texts), refit_model.predict_logits(texts), atol=1e-5)
    # eval.refit: false ships the training-split model, as before
    off = Study(config(tiny_bert, tmp_path, 60, strategies=["majority", "linear_probe"], eval={"seeds": 1, "refit": False}),
                progress=False).run()
    assert "refit" not in off.results["selection"]
    assert json.loads((off.run_dir / "model" / "model.json").read_text())["refit_on_train_val"] is False


def test_a_winner_that_needs_validation_rows_is_not_refit(tiny_bert, tmp_path):
    cfg = config(tiny_bert, tmp_path, 60, strategies=["full"], eval={"seeds": 1})
    sel = Study(cfg, progress=False).run().results["selection"]
    assert sel.refit.to_dict() == {"done": False, "why": "full needs a validation split to train, so the packaged model is the "
                                                  "one trained on the training split."}


def test_validation_selection_keeps_the_preferred_strategy_unless_beaten_significantly(tiny_bert, tmp_path):
    # 240 rows: validation selection; full is the measured default order's preferred strategy from 50 per class
    cfg = config(tiny_bert, tmp_path, 240, strategies=["majority", "full"], eval={"seeds": 1})
    res = Study(cfg, progress=False).run()
    sel = res.results["selection"]
    assert sel["selection_method"] == "validation split" and "preferred full" in sel["rule"]
    val = res.results["strategies"]
    if val["majority"]["val"]["macro_f1"] > val["full"]["val"]["macro_f1"]:  # a lead: tested, and said
        assert sel["decided_by"] in ("prior", "data") and "prior_test" in sel
        assert (res.winner == "full") == (sel["decided_by"] == "prior")
    else:
        assert res.winner == "full" and sel["decided_by"] == "data and prior"


# -- ties go to the cheaper model ---------------------------------------------------------------------------------
def _summary(val: float, latency: float | None, params: int | None) -> dict:
    return {"val": {"macro_f1": val}, "latency_ms_b1": latency, "trainable_params": params}


def test_a_validation_tie_goes_to_the_faster_model_then_to_fewer_trainable_parameters():
    from graftlab.study.aggregate import select_winner

    # linear_probe's mean over 3 seeds of 0.8 is 0.8000000000000002: still a tie with the single-seed tfidf_logreg
    tied = {"linear_probe": _summary(float(np.mean([0.8] * 3)), 49.6, 1_538),
            "tfidf_logreg": _summary(0.8, 4.7, 40_000), "majority": _summary(0.4, 0.01, 0)}
    winner, runner_up, selection = select_winner(tied, "macro_f1")
    assert (winner, runner_up) == ("tfidf_logreg", "linear_probe")
    assert "ties go to the faster strategy (latency at batch 1), then to fewer trainable parameters" in selection["rule"]
    same_speed = {"big": _summary(0.8, 5.0, 22_000_000), "small": _summary(0.8, 5.0, 1_538)}
    assert select_winner(same_speed, "macro_f1")[0] == "small"
    unmeasured = {"unmeasured": _summary(0.8, None, 10), "measured": _summary(0.8, 9.0, 10)}
    assert select_winner(unmeasured, "macro_f1")[0] == "measured"
    assert select_winner({"a": _summary(0.7, 50.0, 10), "b": _summary(0.8, 90.0, 10)}, "macro_f1")[0] == "b"

