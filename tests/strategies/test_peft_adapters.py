"""lora / ia3 through peft: what trains, what is saved, that merging keeps predictions, and the
learning rates of the adapter parameter groups."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from graftlab.backbones import get_backbone
from graftlab.core.config import TrainConfig
from graftlab.core.errors import ConfigError
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, make_strategy
from graftlab.strategies.peft_adapters import auto_target_modules, load_adapter
from graftlab.training import Trainer, TrainResult, seed_everything


def split(df, n_train=96, n_val=32):
    names = sorted(df.score.unique())
    y = df.score.map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(df.review.tolist(), y, names, np.arange(len(df)))
    return data.subset(range(n_train)), data.subset(range(n_train, n_train + n_val)), data.subset(range(200, 240))


def fit(name, bb, reviews, work_dir=None, **params):
    train, val, test = split(reviews)
    cfg = TrainConfig(epochs=2, batch_size=16, max_length=32)
    seed_everything(0)
    ctx = FitContext(train=cfg, seed=0, backbone=bb, trainer=Trainer(cfg, seed=0, progress=False), work_dir=work_dir)
    return make_strategy(name, {"lr": 5e-3, **params}).fit(train, val, ctx), test


def test_auto_targets_pick_attention_projections_by_name(tiny_bert):
    enc = get_backbone(tiny_bert).load_encoder()
    lora, ff = auto_target_modules(enc, "lora")
    assert lora == [f"encoder.layer.{i}.attention.self.{m}" for i in (0, 1) for m in ("query", "value")] and ff == []
    ia3, ff = auto_target_modules(enc, "ia3")
    assert ff == ["encoder.layer.0.output.dense", "encoder.layer.1.output.dense"]  # not attention.output.dense
    assert set(ia3) == set(ff) | {f"encoder.layer.{i}.attention.self.{m}" for i in (0, 1) for m in ("key", "value")}


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_adapter_trains_saves_and_merges_without_changing_predictions(method, tiny_bert, reviews, tmp_path):
    bb = get_backbone(tiny_bert)
    out, test = fit(method, bb, reviews, work_dir=tmp_path)
    head = sum(p.numel() for p in out.predictor.model.head.parameters())
    assert 0 < out.info["adapter_params"] and out.trainable_params == out.info["adapter_params"] + head
    assert out.trainable_params < 0.1 * out.total_params

    # the served model is a plain encoder: no peft modules, the same keys as the pretrained one
    merged = out.predictor.model.encoder
    assert type(merged).__module__.startswith("transformers.")
    assert set(merged.state_dict()) == set(bb.load_encoder().state_dict())

    # adapter + head saved as safetensors and JSON, trained (not at initialisation), reloaded unmerged
    folder = tmp_path / "adapter"
    assert sorted(p.name for p in folder.iterdir()) == ["adapter.json", "adapter_config.json", "adapter_model.safetensors", "head.safetensors"]
    assert json.loads((folder / "adapter_config.json").read_text())["peft_type"] == method.upper()
    weights = load_file(str(folder / "adapter_model.safetensors"))
    trained = [v for k, v in weights.items() if ("lora_B" in k if method == "lora" else "ia3_l" in k)]
    init = 0.0 if method == "lora" else 1.0
    assert trained and any((v - init).abs().max() > 1e-4 for v in trained)
    unmerged = load_adapter(folder, bb)
    assert type(unmerged.encoder).__name__ == "PeftModel"
    torch.testing.assert_close(unmerged.head.weight, out.predictor.model.head.weight)
    with torch.no_grad():
        batch = bb.encode(test.inputs, max_length=32).collate(range(len(test)))
        expected = unmerged(batch).numpy()
    np.testing.assert_allclose(out.predictor.predict_logits(test.inputs), expected, atol=1e-5)
    base = bb.load_encoder().state_dict()
    assert any(not torch.equal(base[k], v) for k, v in merged.state_dict().items())  # the merge changed weights


class GroupsSpy:
    """Records the optimizer groups instead of training."""

    def fit(self, model, param_groups, train, val, *, name="", epochs=None):
        self.groups = param_groups
        self.names = {id(p): n for n, p in model.named_parameters()}
        return TrainResult(history=[], steps=0)


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_adapter_groups_follow_layer_lr_decay_and_hold_only_adapters(method, tiny_bert, reviews):
    bb = get_backbone(tiny_bert)
    spy = GroupsSpy()
    train, val, _ = split(reviews, 16, 8)
    cfg = TrainConfig(max_length=32, head_lr=0.1)
    make_strategy(method, {"lr": 1e-3, "layer_lr_decay": 0.5}).fit(train, val, FitContext(train=cfg, seed=0, backbone=bb, trainer=spy))
    lrs = {g["name"].removesuffix(".no_decay"): g["lr"] for g in spy.groups}
    assert lrs["head"] == 0.1 and lrs["block1"] == 1e-3 and lrs["block0"] == 5e-4 and "embeddings" not in lrs
    marker = "lora_" if method == "lora" else "ia3_"
    encoder_params = [spy.names[id(p)] for g in spy.groups if not g["name"].startswith("head") for p in g["params"]]
    assert encoder_params and all(marker in n for n in encoder_params)
    if method == "ia3":  # scaling vectors must not be decayed towards zero
        assert all(g["weight_decay"] == 0.0 for g in spy.groups if not g["name"].startswith("head"))


def test_adapter_parameters_are_validated():
    with pytest.raises(ConfigError, match="'r'"):
        make_strategy("lora", {"r": 0})
    with pytest.raises(ConfigError, match="target_modules"):
        make_strategy("lora", {"target_modules": "everything"})
    assert make_strategy("lora").params.lr is None  # train.lr x 10 (test_lr_rule.py)
