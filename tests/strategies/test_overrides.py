"""Per-strategy training overrides (loss, augmentation, sampler), the knobs a strategy reports, and
the ablation variants that turn each knob off."""

import pytest
import yaml

from graftlab.core.config import StudyConfig, TrainConfig
from graftlab.core.errors import ConfigError
from graftlab.strategies import FitContext, make_strategy
from graftlab.strategies.overrides import (
    ablation_variants,
    enabled_knobs,
    train_config_for,
    trainer_for,
)
from graftlab.training import Trainer


def study(strategies, **train):
    return StudyConfig.from_dict({"name": "s", "data": {"text": "review", "label": "score"},
                                  "strategies": strategies, "train": train})


def test_a_study_can_give_one_strategy_its_own_loss_and_label():
    cfg = study(["finetune", {"finetune": {"trainable_layers": 2, "loss": "focal", "label": "finetune-2-focal"}}])
    spec = cfg.strategies[1]
    assert spec.display_name == "finetune-2-focal" and "label" not in spec.params
    strategy = make_strategy(spec.name, spec.params)
    merged = train_config_for(cfg.train, strategy.params)
    assert merged.loss.kind == "focal" and cfg.train.loss.kind == "ce"
    assert merged.lr == cfg.train.lr  # everything else still comes from the study
    assert enabled_knobs(merged, strategy.params) == {"focal": {"gamma": 2.0, "alpha": None}}
    plain = make_strategy("finetune")
    assert train_config_for(cfg.train, plain.params) is cfg.train and enabled_knobs(cfg.train, plain.params) == {}
    again = StudyConfig.from_dict(yaml.safe_load(cfg.to_yaml()))  # round trip with the new settings
    assert again == cfg


def test_override_keys_are_validated():
    with pytest.raises(ConfigError, match="loss"):
        make_strategy("finetune", {"loss": "hinge"})
    with pytest.raises(ConfigError, match="Unknown key 'augmnt'.*Did you mean 'augment'"):
        make_strategy("lora", {"augmnt": True})


def test_knobs_count_study_wide_settings_and_ablations_turn_one_off_at_a_time():
    train = TrainConfig(balanced_sampler=True)
    params = {"trainable_layers": 1, "loss": {"kind": "focal", "label_smoothing": 0.1, "class_weights": "balanced"},
              "augment": True, "layer_lr_decay": 0.8}
    s = make_strategy("finetune", params)
    knobs = enabled_knobs(train_config_for(train, s.params), s.params)
    assert set(knobs) == {"focal", "label_smoothing", "class_weights", "augment", "balanced_sampler", "layer_lr_decay"}
    variants = ablation_variants("finetune", params, train)
    assert set(variants) == set(knobs)
    for knob, p in variants.items():
        v = make_strategy("finetune", p)
        left = enabled_knobs(train_config_for(train, v.params), v.params)
        assert set(left) == set(knobs) - {knob}, knob
        assert p["trainable_layers"] == 1
    assert variants["focal"]["loss"]["label_smoothing"] == 0.1  # only the focal part was removed
    assert ablation_variants("gradual_unfreeze", {}, TrainConfig()) == {}


def test_image_augmentation_is_a_knob_its_ablation_turns_off():
    train = TrainConfig(image_augment={"p": 0.5})
    s = make_strategy("finetune", {"trainable_layers": 2})
    assert enabled_knobs(train_config_for(train, s.params), s.params) == {"image_augment": train.image_augment.model_dump()}
    variants = ablation_variants("finetune", {"trainable_layers": 2}, train)
    assert variants == {"image_augment": {"trainable_layers": 2, "image_augment": False}}
    off = train_config_for(train, make_strategy("finetune", variants["image_augment"]).params)
    assert not off.augmenting_images and enabled_knobs(off, s.params) == {}
    own = make_strategy("full", {"image_augment": True})  # per strategy, on a study without it
    assert train_config_for(TrainConfig(), own.params).augmenting_images


def test_trainer_for_reuses_the_context_trainer_or_builds_one_with_the_new_settings(tmp_path):
    cfg = TrainConfig(epochs=1)
    own = Trainer(cfg, seed=3, progress=False)
    ctx = FitContext(train=cfg, seed=3, trainer=own)
    assert trainer_for(ctx, cfg) is own
    focal = TrainConfig(epochs=1, loss="focal")
    other = trainer_for(ctx, train_config_for(cfg, make_strategy("finetune", {"loss": "focal"}).params))
    assert other is not own and other.cfg.loss.kind == "focal" and other.seed == 3
    calls = []
    ctx = FitContext(train=cfg, seed=0, trainer=own, work_dir=tmp_path,
                     trainer_factory=lambda work_dir=None, train_cfg=None: calls.append((work_dir, train_cfg)) or own)
    trainer_for(ctx, focal)
    assert calls == [(tmp_path, focal)]
    with pytest.raises(ConfigError, match="trainer_factory"):
        trainer_for(FitContext(train=cfg, seed=0, trainer=object()), focal)


def test_trial_context_wires_one_trainer_and_a_factory_with_the_trials_seed_and_folder(tmp_path):
    from graftlab.strategies import trial_context

    cfg = TrainConfig(epochs=1)
    ctx = trial_context(cfg, 7, Trainer, backbone="bb", work_dir=tmp_path, progress=False)
    assert (ctx.train, ctx.seed, ctx.backbone, ctx.work_dir) == (cfg, 7, "bb", tmp_path)
    assert (ctx.trainer.cfg, ctx.trainer.seed, ctx.trainer.work_dir, ctx.trainer.show_progress) == (cfg, 7, tmp_path, False)
    focal = TrainConfig(epochs=1, loss="focal")
    own = trainer_for(ctx, focal)  # a strategy's own settings: from the factory, checkpoints in the trial's folder
    assert (own.cfg, own.seed, own.work_dir) == (focal, 7, tmp_path)
    stage = trainer_for(ctx, cfg, work_dir=tmp_path / "stage-1")
    assert stage.work_dir == tmp_path / "stage-1" and stage.cfg == cfg
    assert trial_context(cfg, 0, Trainer).trainer.work_dir is None  # k-fold fits keep no checkpoints
