"""explain() on image models: occlusion over a grid of patches that finds the region a model uses, integrated
gradients that add up, the fallback note, input checks, JSON output, and ``graft explain --image``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from graftlab.core.errors import ConfigError, DataError
from graftlab.explain import explain, report_examples
from graftlab.explain.text import log_odds

# Completeness of integrated gradients over pixels: the patch attributions must add up to
# F(image) - F(channel-mean image), F = the target's log-odds, within this absolute tolerance at
# 256 steps. (The tiny CNN is piecewise linear, so the integral converges slowly: 0.4 at 16 steps,
# 0.01-0.02 at 256, on log-odds differences of 3-10.)
IG_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def shapes():
    """The three-shape images (12 x 12, grayscale and RGB) split 120 / 40 / 40."""
    from graftlab.data.dataset import LabeledData
    from graftlab.testing import synthetic_images

    df = synthetic_images(200, seed=0)
    names = sorted(df["shape"].unique())
    y = df["shape"].map({n: i for i, n in enumerate(names)}).to_numpy()
    full = LabeledData(df.image.tolist(), y, names, np.arange(len(df)))
    return SimpleNamespace(train=full.subset(range(120)), val=full.subset(range(120, 160)),
                           test=full.subset(range(160, 200)), names=names)


def _fit(name, data, backbone=None):
    from graftlab.core.config import TrainConfig
    from graftlab.strategies import FitContext, make_strategy

    ctx = FitContext(train=TrainConfig(epochs=1), seed=0, backbone=backbone)
    return make_strategy(name).fit(data.train, data.val, ctx).predictor


@pytest.fixture(scope="module")
def cnn_probe(tmp_path_factory, shapes):
    """A linear probe on the tiny random CNN (a neural image predictor: integrated gradients apply)."""
    from graftlab.backbones import get_backbone
    from graftlab.testing import make_tiny_cnn

    backbone = get_backbone(str(make_tiny_cnn(tmp_path_factory.mktemp("tiny-cnn"))))
    return _fit("linear_probe", shapes, backbone)


@pytest.fixture(scope="module")
def pixels(shapes):
    return _fit("pixel_logreg", shapes)


class RegionStub:
    """An image predictor whose 'bright' logit is the mean brightness of one region only (fractions of h, w)."""

    kind = "region_stub"
    modality = "image"

    def __init__(self, top: float, bottom: float, left: float, right: float) -> None:
        self.region = (top, bottom, left, right)
        self.label_names = ["dark", "bright"]

    def box(self, h: int, w: int) -> tuple[int, int, int, int]:
        top, bottom, left, right = self.region
        return round(top * h), round(bottom * h), round(left * w), round(right * w)

    def predict_logits(self, inputs, batch_size=64):
        out = []
        for x in inputs:
            a = np.asarray(x, dtype=np.float64)
            a = a.mean(-1) if a.ndim == 3 else a
            t, b, l, r = self.box(*a.shape)
            out.append([0.0, 8.0 * (a[t:b, l:r].mean() / 255.0 - 0.5)])
        return np.array(out)


def _noise(h, w, seed=0, rgb=False):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3) if rgb else (h, w), dtype=np.uint8)


# -- shape, units, agreement with a hand computation ------------------------------------------------------
@pytest.mark.parametrize(("shape", "grid", "expected"), [((12, 12), 8, [8, 8]), ((13, 10, 3), 8, [8, 8]),
                                                          ((12, 12), 4, [4, 4]), ((12, 5), 8, [8, 5])])
def test_grid_has_the_requested_shape_and_covers_the_image(cnn_probe, shape, grid, expected):
    img = _noise(shape[0], shape[1], rgb=len(shape) == 3)
    e = explain(cnn_probe, img, method="occlusion", grid=grid)
    assert e["grid_shape"] == expected and e["image_shape"] == list(shape[:2])
    scores = np.array(e["grid"])
    assert scores.shape == tuple(expected) and np.isfinite(scores).all() and np.abs(scores).max() > 0
    assert e["row_edges"][0] == 0 and e["row_edges"][-1] == shape[0] and e["col_edges"][-1] == shape[1]
    assert np.all(np.diff(e["row_edges"]) >= 1) and np.all(np.diff(e["col_edges"]) >= 1)
    covered = np.zeros(shape[:2], dtype=int)  # every pixel in exactly one patch
    for row in e["patch_bounds"]:
        for top, left, bottom, right in row:
            covered[top:bottom, left:right] += 1
    assert (covered == 1).all()
    assert e["method"] == "occlusion" and e["note"] is None and e["completeness_error"] is None
    assert "text" not in e
    json.dumps(e)  # plain floats, ints and lists: the HTTP service returns it as is


def test_a_patch_attribution_is_the_log_odds_drop_measured_by_hand(cnn_probe, shapes):
    img = next(x for x in shapes.test.inputs if x.ndim == 3)  # a colour one: the fill is per channel
    e = explain(cnn_probe, img, method="occlusion", target=2)
    z = cnn_probe.predict_logits([img])
    assert e["log_odds"] == pytest.approx(float(log_odds(z, 2)[0]), abs=1e-6)
    fill = np.round(img.reshape(-1, 3).astype(np.float64).mean(0)).astype(np.uint8)
    for r, c in [(0, 0), (3, 5), (7, 7)]:
        top, left, bottom, right = e["patch_bounds"][r][c]
        covered = img.copy()
        covered[top:bottom, left:right] = fill
        drop = float(log_odds(z, 2)[0] - log_odds(cnn_probe.predict_logits([covered]), 2)[0])
        assert e["grid"][r][c] == pytest.approx(drop, abs=1e-5)
    assert e["target"] == 2 and e["target_label"] == shapes.names[2]
    proba = cnn_probe.predict_proba([img])[0]
    assert e["label"] == shapes.names[int(proba.argmax())] and e["confidence"] == pytest.approx(float(proba.max()), abs=1e-6)


# -- the test that can fail: attribution goes where the signal is -----------------------------------------
@pytest.mark.parametrize("region", [(0.0, 0.5, 0.0, 0.5), (0.25, 0.75, 0.75, 1.0)], ids=["top-left", "right-bar"])
@pytest.mark.parametrize("shape", [(32, 32), (30, 45, 3)])
def test_occlusion_credits_only_the_region_the_model_reads(region, shape):
    stub = RegionStub(*region)
    img = _noise(shape[0], shape[1], seed=1, rgb=len(shape) == 3)
    t, b, l, r = stub.box(*shape[:2])
    img[t:b, l:r] = 230  # the region is bright: the stub says 'bright'
    e = explain(stub, img, method="occlusion")
    assert e["label"] == "bright"
    scores = np.abs(np.array(e["grid"]))
    inside = np.zeros(scores.shape, dtype=bool)  # cells fully in the region
    outside = np.zeros(scores.shape, dtype=bool)  # cells that do not touch it
    for i, row in enumerate(e["patch_bounds"]):
        for j, (top, left, bottom, right) in enumerate(row):
            inside[i, j] = t <= top and bottom <= b and l <= left and right <= r
            outside[i, j] = bottom <= t or top >= b or right <= l or left >= r
    assert inside.any() and outside.any()
    best = np.unravel_index(np.argmax(scores), scores.shape)
    assert not outside[best], f"largest attribution at cell {best}, outside the region the model reads"
    assert (np.array(e["grid"])[inside] > 0).all()  # covering a bright patch lowers 'bright'
    assert scores[outside].max() < 1e-9  # the model never looks there


def test_a_fitted_pixel_model_is_credited_where_its_signal_is():
    """pixel_logreg trained on noise whose label is the top-left quarter's brightness."""
    from graftlab.data.dataset import LabeledData

    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(160):
        img = rng.integers(0, 200, (16, 16), dtype=np.uint8)
        if i % 2:
            img[:8, :8] = np.clip(img[:8, :8].astype(int) + 120, 0, 255)
        images.append(img)
        labels.append(i % 2)
    full = LabeledData(images, np.array(labels), ["dark", "bright"], np.arange(160))
    data = SimpleNamespace(train=full.subset(range(120)), val=full.subset(range(120, 160)))
    model = _fit("pixel_logreg", data)
    for img in images[1:8:2]:  # bright ones
        e = explain(model, img, method="occlusion", grid=4)
        scores = np.abs(np.array(e["grid"]))
        assert e["label"] == "bright"
        assert np.unravel_index(np.argmax(scores), scores.shape) in {(0, 0), (0, 1), (1, 0), (1, 1)}


# -- integrated gradients over pixels, the fallback, packaged models ---------------------------------------
@pytest.mark.parametrize("i", [0, 1, 2])
def test_integrated_gradients_over_pixels_are_complete(cnn_probe, shapes, i):
    img = shapes.test.inputs[i]
    e = explain(cnn_probe, img, method="ig", n_steps=256)
    fill = np.array(e["fill"], dtype=np.uint8)
    baseline = np.broadcast_to(fill if img.ndim == 3 else fill[0], img.shape).copy()
    odds = log_odds(cnn_probe.predict_logits([img, baseline]), e["target"])  # independent of graftlab.explain
    diff = float(odds[0] - odds[1])
    assert abs(diff) > 0.5, "the image must move the model away from the baseline for the check to mean anything"
    assert e["method"] == "ig" and e["note"] is None and e["n_steps"] == 256
    assert e["log_odds_difference"] == pytest.approx(diff, abs=1e-4)
    assert abs(np.sum(e["grid"]) - diff) <= IG_TOLERANCE
    assert e["completeness_error"] == pytest.approx(abs(np.sum(e["grid"]) - diff), abs=1e-3)
    json.dumps(e)


def test_ig_falls_back_to_occlusion_with_a_note_for_a_model_without_gradients(pixels, shapes):
    e = explain(pixels, shapes.test.inputs[0], method="ig")
    assert e["method"] == "occlusion" and "Integrated gradients needs a neural image model" in e["note"]
    assert "pixel_logreg" in e["note"] and e["grid_shape"] == [8, 8]
    assert explain(pixels, shapes.test.inputs[0], method="occlusion")["note"] is None


def test_packaged_image_model_uses_its_calibrated_probability(cnn_probe, shapes, tmp_path):
    from graftlab.packaging import export_model, load_model

    model = load_model(export_model(cnn_probe, tmp_path / "model", {"name": "shapes", "temperature": 2.0}))
    img = shapes.test.inputs[0]
    e = explain(model, img, method="occlusion")
    assert e["confidence"] == pytest.approx(float(model.predict_proba([img])[0].max()), abs=1e-5)
    np.testing.assert_allclose(e["grid"], explain(cnn_probe, img, method="occlusion")["grid"], atol=1e-5)


# -- what the model takes ------------------------------------------------------------------------------
def test_a_text_for_an_image_model_and_an_image_for_a_text_model_are_data_errors(cnn_probe, tfidf):
    with pytest.raises(DataError, match="got a str.*image model \\(region_stub\\).*numpy array.*--image"):
        explain(RegionStub(0, 1, 0, 1), "a bright square")
    with pytest.raises(DataError, match="image model.*numpy array"):
        explain(cnn_probe, "a bright square")
    with pytest.raises(DataError, match="'text'.*string.*text model.*ndarray"):
        explain(tfidf, _noise(8, 8))
    with pytest.raises(DataError, match="must be an image.*shape \\(5,\\)"):
        explain(cnn_probe, np.zeros(5))


@pytest.mark.parametrize("grid", [1, 33, 2.5, True, "8"])
def test_grid_is_validated(cnn_probe, grid):
    with pytest.raises(ConfigError, match=f"'grid'.*\\[2, 32\\].*{grid!r}"):
        explain(cnn_probe, _noise(8, 8), grid=grid)


# -- the report's examples: explained test images with a heatmap PNG ---------------------------------------
def test_report_examples_on_images_carry_a_heatmap_png_and_the_strongest_patches(cnn_probe, shapes):
    import base64
    import io

    from PIL import Image

    from graftlab.explain.api import IMAGE_PNG_WIDTH

    x, y = shapes.test.inputs, shapes.test.labels
    proba = cnn_probe.predict_proba(x)
    out = report_examples(cnn_probe, x, y, proba, shapes.names, method="ig", n_steps=8, grid=4)
    assert out and json.loads(json.dumps(out)) == out  # goes into results.json as is
    pred, conf = proba.argmax(1), proba.max(1)
    for e in out:
        i = e["index"]
        assert e["true_label"] == e["label"] == shapes.names[y[i]] and e["predicted"] == shapes.names[pred[i]]
        assert e["kind"] == ("confident_correct" if y[i] == pred[i] else "confident_wrong")
        assert e["prob"] == pytest.approx(conf[i]) and e["target_label"] == e["predicted"]
        assert e["method"] == "ig" and e["n_steps"] == 8 and e["grid_shape"] == [4, 4] and "text" not in e
        with Image.open(io.BytesIO(base64.b64decode(e["image_png"]))) as png:
            assert png.format == "PNG" and png.size[0] == IMAGE_PNG_WIDTH
        pos, neg = e["top_patches"]["for"], e["top_patches"]["against"]
        assert len(pos) <= 3 and len(neg) <= 3 and all(p["score"] > 0 for p in pos) and all(p["score"] < 0 for p in neg)
        assert pos[0]["score"] == pytest.approx(np.max(e["grid"])) if pos else np.max(e["grid"]) <= 0


def test_report_examples_on_images_are_capped_to_the_most_confident_half_errors(monkeypatch):
    from graftlab.explain import api

    stub = RegionStub(0, 1, 0, 1)
    images = [np.full((8, 8), v, dtype=np.uint8) for v in (200, 220, 240, 30, 40, 50)]
    y = np.array([1, 1, 0, 0, 0, 1])  # true: bright bright dark | dark dark bright
    p_bright = np.array([0.9, 0.8, 0.7, 0.2, 0.3, 0.4])  # predicted: bright x3, dark x3
    proba = np.stack([1 - p_bright, p_bright], 1)
    every = report_examples(stub, images, y, proba, ["dark", "bright"], method="occlusion", max_examples=10)
    assert [(e["kind"], e["index"]) for e in every] == [("confident_correct", 3), ("confident_wrong", 2),
                                                        ("confident_correct", 0), ("confident_wrong", 5)]
    capped = report_examples(stub, images, y, proba, ["dark", "bright"], method="occlusion", max_examples=3)
    assert [e["index"] for e in capped] == [2, 0, 5]  # both errors (the odd place), the more confident correct
    monkeypatch.setattr(api, "IMAGE_MAX_EXAMPLES", 2)  # the default for images
    assert [e["index"] for e in report_examples(stub, images, y, proba, ["dark", "bright"], method="occlusion")] \
        == [2, 0]
    with pytest.raises(ConfigError, match="'max_examples'.*None or an int >= 1.*0"):
        report_examples(stub, images, y, proba, ["dark", "bright"], max_examples=0)


def test_report_examples_refuse_images_for_a_text_model(tfidf):
    images = [_noise(8, 8, seed=i) for i in range(2)]
    with pytest.raises(DataError, match="report_examples got images, but the model \\(tfidf_logreg\\)"):
        report_examples(tfidf, images, [0, 1], np.array([[0.9, 0.1], [0.2, 0.8]]), ["great", "other"])


# -- graft explain --image -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_model_dir(tmp_path_factory, cnn_probe):
    from graftlab.packaging import export_model

    return export_model(cnn_probe, tmp_path_factory.mktemp("packaged-image") / "model", {"name": "shapes"})


@pytest.fixture
def png(tmp_path, shapes):
    from PIL import Image

    path = tmp_path / "square.png"
    Image.fromarray(shapes.test.inputs[0]).save(path)
    return path


def test_cli_explains_an_image_file_and_writes_a_heatmap(image_model_dir, png, tmp_path):
    from PIL import Image

    from graftlab.cli import app

    out = tmp_path / "maps"
    res = CliRunner().invoke(app, ["explain", str(image_model_dir), "--image", str(png), "--method", "occlusion",
                                   "--grid", "4", "--heatmap", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "occlusion" in res.output and "for:" in res.output and "against:" in res.output
    assert "4 x 4 patches over 12 x 12 pixels" in res.output and "row 0 col" in res.output
    with Image.open(out / "square.png.explain.png") as heat:
        assert heat.format == "PNG" and heat.size[0] > 100
    twin = tmp_path / "elsewhere" / png.name  # the same file name in another folder keeps its own map
    twin.parent.mkdir()
    twin.write_bytes(png.read_bytes())
    res = CliRunner().invoke(app, ["explain", str(image_model_dir), "--image", str(png), "--image", str(twin),
                                   "--method", "occlusion", "--grid", "2", "--heatmap", str(out / "two")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "two").iterdir()) == ["square.png.2.explain.png", "square.png.explain.png"]


def test_cli_json_for_an_image(image_model_dir, png):
    from graftlab.cli import app

    res = CliRunner().invoke(app, ["explain", str(image_model_dir), "--image", str(png), "--json"])
    assert res.exit_code == 0, res.output
    e = json.loads(res.output.strip().splitlines()[-1])
    assert e["image"] == str(png) and e["method"] == "ig" and e["grid_shape"] == [8, 8]


def test_cli_user_errors_for_images_exit_2(image_model_dir, png, tmp_path):
    from graftlab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["explain", str(image_model_dir), "--image", str(tmp_path / "nope.png")])
    assert res.exit_code == 2 and "nope.png does not exist" in res.output and "Traceback" not in res.output
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    res = runner.invoke(app, ["explain", str(image_model_dir), "--image", str(broken)])
    assert res.exit_code == 2 and "cannot be read as an image" in res.output
    res = runner.invoke(app, ["explain", str(image_model_dir), "--text", "a bright square"])
    assert res.exit_code == 2 and "image model" in res.output and "--image" in res.output
    res = runner.invoke(app, ["explain", str(image_model_dir), "--image", str(png), "--grid", "40"])
    assert res.exit_code == 2 and "'grid'" in res.output
    res = runner.invoke(app, ["explain", str(image_model_dir), "--text", "tea", "--heatmap", str(tmp_path)])
    assert res.exit_code == 2 and "--heatmap" in res.output
