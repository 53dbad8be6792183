"""gradual_unfreeze: groups unfrozen top-down with decayed learning rates, the best stage kept, stages
stopped when validation gets worse, one trainer per stage, and a history that concatenates the stages."""

import numpy as np
import torch

from graftlab.backbones import get_backbone
from graftlab.backbones import prefix_cache as pc
from graftlab.core.config import TrainConfig
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, make_strategy
from graftlab.training import Trainer, TrainResult


def split(df, n_train=64, n_val=32):
    names = sorted(df.score.unique())
    y = df.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(df.review.tolist(), y, names, np.arange(len(df)))
    return data.subset(range(n_train)), data.subset(range(n_train, n_train + n_val)), data.subset(range(200, 240))


class ScriptedTrainer:
    """Stands in for a stage's trainer: stamps the stage number into the head, returns a scripted score."""

    def __init__(self, log, stage, score):
        self.log, self.stage, self.score = log, stage, score

    def fit(self, model, param_groups, train, val, *, name="", epochs=None):
        trainable = {n.split(".")[3] for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.encoder.layer")}
        emb = any(p.requires_grad for p in model.encoder.embeddings.parameters())
        self.log.append({"stage": self.stage, "blocks": sorted(trainable), "embeddings": emb, "epochs": epochs,
                         "lrs": {g["name"]: g["lr"] for g in param_groups}, "train": type(train).__name__})
        with torch.no_grad():
            model.head.bias.fill_(float(self.stage))
        return TrainResult(history=[{"step": 5, "val_macro_f1": self.score}], best_step=5, best_metric=self.score, steps=5)


def run_scripted(tiny_bert, reviews, scores, tmp_path, **params):
    train, val, _ = split(reviews, 16, 8)
    log, dirs = [], []

    def factory(work_dir=None, train_cfg=None):
        dirs.append(work_dir)
        stage = len(dirs) - 1
        return ScriptedTrainer(log, stage, scores[stage])

    cfg = TrainConfig(lr=1e-3, max_length=32)
    ctx = FitContext(train=cfg, seed=0, backbone=get_backbone(tiny_bert), work_dir=tmp_path, trainer_factory=factory)
    out = make_strategy("gradual_unfreeze", {"layer_lr_decay": 0.5, "epochs_per_stage": 2, **params}).fit(train, val, ctx)
    return out, log, dirs


def test_groups_unfreeze_top_down_with_decayed_rates_and_stop_when_worse(tiny_bert, reviews, tmp_path):
    out, log, dirs = run_scripted(tiny_bert, reviews, [0.5, 0.7, 0.6, 0.9], tmp_path)
    assert [s["stage"] for s in log] == [0, 1, 2]  # stage 2 was worse: stage 3 never ran
    assert [s["blocks"] for s in log] == [[], ["1"], ["0", "1"]] and not any(s["embeddings"] for s in log)
    assert all(s["epochs"] == 2 for s in log)
    assert log[2]["lrs"] == {"head": 1e-3, "head.no_decay": 1e-3, "block1": 1e-3, "block1.no_decay": 1e-3,
                             "block0": 5e-4, "block0.no_decay": 5e-4}
    assert dirs == [tmp_path / f"stage-{s}" for s in range(3)]
    assert out.info["best_stage"] == 1 and "stage 2 made val_macro_f1 worse" in out.info["stop_reason"]
    assert torch.all(out.predictor.model.head.bias == 1.0)  # the best stage's weights, not the last
    assert [(h["stage"], h["step"], h["stage_step"]) for h in out.history] == [(0, 5, 5), (1, 10, 5), (2, 15, 5)]
    block = sum(p.numel() for p in out.predictor.model.encoder.encoder.layer[1].parameters())
    head = sum(p.numel() for p in out.predictor.model.head.parameters())
    assert out.trainable_params == block + head  # counted at the best stage
    assert log[0]["train"] == "HiddenSet" and log[1]["train"] == "HiddenSet" and log[2]["train"] == "TokenSet"


def test_a_tie_goes_on_but_keeps_the_earlier_state_and_all_stages_can_run(tiny_bert, reviews, tmp_path):
    out, log, _ = run_scripted(tiny_bert, reviews, [0.5, 0.5, 0.6, 0.7], tmp_path)
    assert len(log) == 4 and log[3]["embeddings"]  # the last stage unfreezes the embeddings too
    assert out.info["best_stage"] == 3 and out.info["stop_reason"] == "all 4 stages ran"
    out, log, _ = run_scripted(tiny_bert, reviews, [0.5, 0.5, 0.4, 0.9], tmp_path)
    assert len(log) == 3 and out.info["best_stage"] == 0 and torch.all(out.predictor.model.head.bias == 0.0)
    out, log, _ = run_scripted(tiny_bert, reviews, [0.1, 0.2, 0.3, 0.4], tmp_path, max_stages=2)
    assert len(log) == 2 and out.info["best_stage"] == 1


def test_real_stages_train_with_a_trainer_per_stage(tiny_bert, reviews, tmp_path):
    pc.clear_memory()
    train, val, test = split(reviews)
    cfg = TrainConfig(epochs=5, lr=3e-3, batch_size=16, max_length=32, early_stopping=None)
    made = []

    def factory(work_dir=None, train_cfg=None):
        made.append(work_dir)
        return Trainer(train_cfg or cfg, seed=0, work_dir=work_dir, progress=False)

    ctx = FitContext(train=cfg, seed=0, backbone=get_backbone(tiny_bert), work_dir=tmp_path, trainer_factory=factory)
    out = make_strategy("gradual_unfreeze", {"max_stages": 3}).fit(train, val, ctx)
    stages = out.info["stages"]
    assert made[: len(stages)] == [tmp_path / f"stage-{s}" for s in range(len(stages))]
    assert [h["stage"] for h in out.history] == [s["stage"] for s in stages]  # one epoch per stage
    assert [h["step"] for h in out.history] == [4 * (s + 1) for s in range(len(stages))]
    assert stages[0]["prefix_cache"]["start_block"] == 2 and stages[0]["unfrozen"] == []
    if len(stages) > 1:
        assert stages[1]["prefix_cache"]["start_block"] == 1 and stages[1]["unfrozen"] == ["block1"]
    assert out.predictor.predict_proba(test.inputs).shape == (len(test), 2)
    assert out.info["knobs"] == {}  # 0.8 is gradual_unfreeze's own default decay, not a knob
