"""The whole protocol on images: a study on the tiny CNN with the pixel baseline, probe and fine-tuning,
paired comparisons, brightness slices, image robustness, the report; a text-only strategy is refused."""

from __future__ import annotations

import pytest

from graftlab.core.config import StudyConfig
from graftlab.core.errors import ConfigError
from graftlab.study import Study
from graftlab.testing import make_tiny_cnn, synthetic_images


def _config(cnn: str, strategies: list, tmp_path) -> StudyConfig:
    return StudyConfig.from_dict({
        "name": "shapes",
        "data": {"image": "image", "label": "shape", "slices": ["brightness_quartile"],
                 "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "backbones": [cnn],
        "strategies": strategies,
        "train": {"epochs": 2, "lr": 3e-3, "batch_size": 16, "image_augment": True},
        "eval": {"seeds": 2, "bootstrap": 200, "fractions": [10, 500], "latency": False},
        "tracking": {"enabled": False},
        "output_dir": str(tmp_path / "runs"),
    })


def test_image_study_runs_the_protocol_end_to_end(tmp_path):
    cnn = str(make_tiny_cnn(tmp_path / "cnn"))
    cfg = _config(cnn, ["majority", "pixel_logreg", "linear_probe", {"finetune": {"trainable_layers": 1}}], tmp_path)
    result = Study(cfg, frame=synthetic_images(180), progress=False).run()
    r = result.results
    assert set(r["strategies"]) == {"majority", "pixel_logreg", "linear_probe", "finetune[trainable_layers=1]"}
    assert r["backbone"]["modality"] == "image"
    assert any(c["b"] == "pixel_logreg" or c["a"] == "pixel_logreg" for c in r["comparisons"])
    assert set(r["transfer_gain"]) == {"over_scratch", "over_pixel_logreg"}  # no text baseline "not run" on images
    assert r["transfer_gain"]["over_scratch"] is None and r["transfer_gain"]["over_pixel_logreg"]["b"] == "pixel_logreg"
    assert {row["perturbation"] for row in r["robustness"]} >= {"blur (3x3 box)", "darker (x0.6)"}
    assert any("Q1 (darkest)" in str(s) for s in r["slices"])
    assert "learning_curve" in r
    # deterministic pixel_logreg: one fit on the training split, every seed on the learning curve's subsamples
    # and once on a learning-curve size that takes every row (500 per class: the whole training split)
    seeds = {(d.parent.name, d.name) for d in (result.run_dir / "trials" / "pixel_logreg").glob("*/seed-*")}
    assert {seed for size, seed in seeds if size in ("size-all", "size-500")} == {"seed-0"}
    assert {seed for size, seed in seeds if size == "size-10"} == {"seed-0", "seed-1"}
    finetune = {(d.parent.name, d.name) for d in (result.run_dir / "trials").glob("finetune*/size-500/seed-*")}
    assert {seed for _, seed in finetune} == {"seed-0", "seed-1"}
    assert r["strategies"]["pixel_logreg"]["latency_ms_b1"] is None  # eval.latency: false
    assert (result.run_dir / "report.html").is_file() and (result.run_dir / "model").is_dir()
    _check_image_explanations(result.run_dir, r)
    from graftlab.packaging import load_model  # the package says what it takes and profiles its inputs for drift

    model = load_model(result.run_dir / "model")
    assert model.meta["modality"] == "image" == model.modality
    ref = model.reference()
    assert ref["input_words"] is None and 0.0 < ref["input_brightness"]["mean"] < 1.0
    assert ref["input_brightness"]["std"] > 0 and len(ref["input_brightness"]["quantiles"]) == 5
    _check_graft_predict_on_images(result.run_dir / "model", model, tmp_path)


def _check_graft_predict_on_images(model_dir, model, tmp_path):
    """`graft predict --image` (files or a folder) and `--file` with image paths equal the model's own probabilities."""
    import json

    import numpy as np
    import pandas as pd
    from PIL import Image
    from typer.testing import CliRunner

    from graftlab.cli import app

    assert model.meta["input_column"] == "image"
    images = synthetic_images(3, seed=11).image.tolist()
    folder = tmp_path / "to_predict"
    (folder / "more").mkdir(parents=True)
    names = ["a.png", "b.png", "more/c.png"]
    for name, pixels in zip(names, images, strict=True):
        Image.fromarray(pixels).save(folder / name)
    expected = model.predict_proba(images)
    runner = CliRunner()
    for args in (["--image", str(folder)], ["--image", str(folder / "a.png"), "--image", str(folder / "more")]):
        res = runner.invoke(app, ["predict", str(model_dir), *args])
        assert res.exit_code == 0, res.output
        rows = [json.loads(line) for line in res.output.strip().splitlines()]
        assert [r["input"] for r in rows] == [str(folder / n) for n in (names if len(args) == 2 else ["a.png", "more/c.png"])]
        got = np.array([[r["probabilities"][n] for n in model.label_names] for r in rows])
        np.testing.assert_allclose(got, expected if len(args) == 2 else expected[[0, 2]], atol=1e-6)
    pd.DataFrame({"image": names}).to_csv(folder / "list.csv", index=False)
    res = runner.invoke(app, ["predict", str(model_dir), "--file", str(folder / "list.csv")])
    assert res.exit_code == 0 and [json.loads(x)["image"] for x in res.output.strip().splitlines()] == names
    res = runner.invoke(app, ["predict", str(model_dir), "--text", "a shirt"])
    assert res.exit_code == 2 and "is an image model: pass --image" in res.output
    (folder / "broken.png").write_bytes(b"not a png")
    res = runner.invoke(app, ["predict", str(model_dir), "--image", str(folder)])
    assert res.exit_code == 2 and "broken.png cannot be read as an image" in res.output


def _check_image_explanations(run_dir, r):
    """The report's explained test images: in results.json with a decodable heatmap PNG, and shown as cards."""
    import base64
    import io
    import json

    from PIL import Image

    assert "explanations_error" not in r and "class_tokens" not in r  # no words in pixels
    examples = r["explanations"]
    assert examples and json.loads((run_dir / "results.json").read_text())["explanations"] == examples
    for e in examples:
        assert e["kind"] in ("confident_correct", "confident_wrong") and e["target_label"] == e["predicted"]
        assert e["method"] in ("ig", "occlusion") and (e["method"] == "ig" or e["note"])  # config asks for ig
        assert set(e["top_patches"]) == {"for", "against"} and len(e["grid"]) == e["grid_shape"][0]
        with Image.open(io.BytesIO(base64.b64decode(e["image_png"]))) as png:
            assert png.format == "PNG" and 150 <= png.size[0] <= 200
    html = (run_dir / "report.html").read_text()
    section = html[html.index('<section id="explanations">'):]
    section = section[: section.index("</section>")]
    assert section.count('class="card"') == len(examples)
    assert all(f'src="data:image/png;base64,{e["image_png"]}"' in section for e in examples)


def test_text_only_strategy_on_images_is_refused_clearly(tmp_path):
    cnn = str(make_tiny_cnn(tmp_path / "cnn"))
    cfg = _config(cnn, ["majority", "tfidf_logreg"], tmp_path)
    with pytest.raises(ConfigError, match="'tfidf_logreg' works on text inputs, but the data are images.*pixel_logreg"):
        Study(cfg, frame=synthetic_images(90), progress=False).prepare()  # refused before any training (and by graft validate)
    with pytest.raises(ConfigError, match="'tfidf_logreg' works on text inputs"):
        Study(cfg, frame=synthetic_images(90), progress=False).run()
    assert not (tmp_path / "runs").exists()  # refused before a run folder or any training


@pytest.mark.parametrize("n_rows, expected", [
    (120, ["majority", "pixel_logreg", "full", "linear_probe"]),  # 24 per class: few-shot (k-fold prefers full)
    (300, ["majority", "pixel_logreg", "linear_probe", "full"]),  # 60 per class
])
def test_without_strategies_an_image_study_gets_the_image_defaults(tmp_path, n_rows, expected):
    cnn = str(make_tiny_cnn(tmp_path / "cnn"))
    data = _config(cnn, ["majority"], tmp_path).model_dump(exclude={"strategies"})
    study = Study(StudyConfig.from_dict(data), frame=synthetic_images(n_rows), progress=False)
    study.prepare()  # before: the text fallback list, whose tfidf_logreg refused the images
    assert list(study.strategies) == expected
    assert study.defaults["regime"].startswith("few-shot" if n_rows == 120 else "small data")
    # the config's own training settings win over the defaults' (full: lr 5e-4, 5 epochs)
    assert all("lr" not in spec.params for spec, _ in study.strategies.values())
    del data["train"]["lr"]
    study = Study(StudyConfig.from_dict(data), frame=synthetic_images(n_rows), progress=False)
    study.prepare()
    assert {n: spec.params for n, (spec, _) in study.strategies.items()}.get("full", {"lr": 5e-4}) == {"lr": 5e-4}


def test_estimator_fits_images(tmp_path):
    import numpy as np

    from graftlab import GraftClassifier

    df = synthetic_images(90)
    X, y = np.stack([np.asarray(x if x.ndim == 2 else x.mean(2), np.uint8) for x in df.image]), df["shape"].to_numpy()
    clf = GraftClassifier(backbone=str(make_tiny_cnn(tmp_path / "cnn")), strategy="linear_probe").fit(X[:60], y[:60])
    assert clf.predict_proba(X[60:]).shape == (30, 3) and set(clf.predict(X[60:])) <= set(y)
