"""The study-wide time budget (top-level ``time_budget_s``): optional work runs only when its estimated cost fits
beside the work that always runs; what it leaves out is said in the console, results.json, the report and the
decision record. Left out first: ablation variants, then learning-curve points, then extra seeds; never the
baselines, a strategy's first seed, k-fold selection or the refit."""

import copy

import pytest
import yaml
from test_study_curve_failure import console_text

from graftlab.core.config import StudyConfig
from graftlab.core.errors import ConfigError
from graftlab.core.progress import Progress, Task
from graftlab.study import Study
from graftlab.study.budget import Budget
from graftlab.testing import synthetic_reviews

# copied for each config: reading a config takes the label out of its dict
FOCAL = {"finetune": {"trainable_layers": 1, "loss": {"kind": "focal"}, "label": "ft-focal"}}
STUDY = """
name: tiny
data: {{source: {{kind: csv, path: '{csv}'}}, text: review, label: score}}
backbones: ['{backbone}']
train: {{epochs: 1, lr: 3.0e-3, batch_size: 16, max_length: 32}}
eval: {{seeds: 2, bootstrap: 100, fractions: [0.5], robustness: false, explain: 'off', latency: false}}
tracking: {{enabled: false}}
output_dir: '{runs}'
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def config(tmp_path, **top) -> StudyConfig:
    """Two strategies (ft-focal has a knob to ablate), 2 seeds and a learning-curve point: every kind of optional work."""
    synthetic_reviews(240, seed=0).to_csv(tmp_path / "reviews.csv", index=False)
    cfg = yaml.safe_load(STUDY.format(csv=tmp_path / "reviews.csv", runs=tmp_path / "runs", backbone=top.pop("backbone")))
    return StudyConfig.from_dict({**cfg, "strategies": ["majority", copy.deepcopy(FOCAL)], **top})


def test_optional_work_runs_only_when_its_estimate_fits_beside_the_work_that_always_runs():
    clock = Clock()
    progress = Progress(False, clock=clock)
    with progress.trial(Task("ft seed 0", "ft", rows=10)):
        clock.now += 10.0  # 1 s per row
    kfold = [Task(f"k-fold ft {i}/2", "ft", rows=10, kind="k-fold") for i in (1, 2)]  # 20 s, never left out
    seed = Task("ft seed 1", "ft", rows=10, kind="extra seed")
    curve = Task("learning curve 0.5: ft seed 0", "ft", rows=10, kind="learning curve")
    progress.plan([seed, curve, *kfold])
    budget = Budget(45.0, progress)
    assert budget.admit([seed])  # 10 s spent + 10 s + the 20 s of k-fold kept = 40 s <= 45 s
    with progress.trial(seed):
        clock.now += 10.0
    assert not budget.admit([curve])  # 20 + 10 + 20 = 50 s > 45 s
    assert curve not in progress.pending and all(t in progress.pending for t in kfold)
    record = budget.record(total_s=42.0)
    assert record.seconds == 45.0 and [(d.kind, d.what) for d in record.dropped] == [("learning curve", curve.label)]
    assert record.dropped[0].estimate_s == pytest.approx(10.0)
    assert "learning curve 0.5: ft seed 0" in record.reading and "45 s" in record.reading
    unlimited = Budget(None, progress)
    assert unlimited.admit([Task("x", "ft", rows=10**6, kind="ablation")]) and unlimited.record(total_s=1.0) is None


def test_a_budget_too_small_for_the_optional_work_drops_it_in_order_and_says_so(tiny_bert, tmp_path):
    res = Study(config(tmp_path, backbone=tiny_bert, time_budget_s=0.01), progress=False).run()
    budget = res.results.timings.budget
    assert budget.seconds == 0.01
    assert [(d.kind, d.what) for d in budget.dropped] == [
        ("extra seed", "ft-focal seed 1"),
        ("learning curve", "learning curve 0.5: majority"),
        ("learning curve", "learning curve 0.5: ft-focal"),
        ("ablation", "ablation: ft-focal without focal"),
    ]
    trials = res.run_dir / "trials"
    assert sorted(p.name for p in (trials / "ft-focal" / "size-all").iterdir()) == ["seed-0"]
    assert not list(trials.glob("*/size-0.5")) and not any("without" in p.name for p in trials.iterdir())
    # the baselines and each strategy's first seed always run
    assert set(res.results.strategies) == {"majority", "ft-focal"}
    assert res.results.ablation is None
    assert "time budget" in res.results.selection.why and "ft-focal seed 1" in res.results.selection.why
    assert "ft-focal seed 1" in (res.run_dir / "decision.md").read_text()
    assert "ft-focal seed 1" in (res.run_dir / "report.html").read_text()
    shown = console_text(res)
    assert "time_budget_s" in shown and "left out" in shown and "ft-focal seed 1" in shown


def test_a_budget_that_fits_drops_nothing(tiny_bert, tmp_path):
    res = Study(config(tmp_path, backbone=tiny_bert, time_budget_s=3600), progress=False).run()
    budget = res.results.timings.budget
    assert budget.seconds == 3600 and budget.dropped == []
    trials = res.run_dir / "trials"
    assert sorted(p.name for p in (trials / "ft-focal" / "size-all").iterdir()) == ["seed-0", "seed-1"]
    assert list(trials.glob("*/size-0.5")) and res.results.ablation
    assert "time budget" not in res.results.selection.why
    assert "left out" not in console_text(res)


def test_the_study_budget_is_its_own_key_beside_the_per_fit_one(tmp_path):
    cfg = config(tmp_path, backbone="minilm-l6", time_budget_s=600, train={"time_budget_s": 60})
    assert cfg.time_budget_s == 600 and cfg.train.time_budget_s == 60
    assert config(tmp_path, backbone="minilm-l6").time_budget_s is None
    with pytest.raises(ConfigError, match="time_budget_s"):
        config(tmp_path, backbone="minilm-l6", time_budget_s=0)
