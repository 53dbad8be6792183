"""``graft explain`` with the wrong kind of input for the model says which kind it takes, as ``graft predict`` does."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from graftlab.cli import app


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    """pixel_logreg on the synthetic shapes, packaged (no backbone: quick)."""
    from graftlab.core.config import TrainConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.packaging import export_model
    from graftlab.strategies import FitContext, make_strategy
    from graftlab.testing import synthetic_images

    df = synthetic_images(90, seed=0)
    names = sorted(df["shape"].unique())
    y = df["shape"].map({n: i for i, n in enumerate(names)}).to_numpy()
    data = LabeledData(df.image.tolist(), y, names, np.arange(len(df)))
    fitted = make_strategy("pixel_logreg").fit(data.subset(range(60)), data.subset(range(60, 90)),
                                               FitContext(train=TrainConfig(epochs=1), seed=0, backbone=None))
    folder = tmp_path_factory.mktemp("image") / "model"
    return export_model(fitted.predictor, folder, {"name": "shapes", "temperature": 1.0})


@pytest.fixture(scope="module")
def text_model(tmp_path_factory, tfidf):
    from graftlab.packaging import export_model

    return export_model(tfidf, tmp_path_factory.mktemp("text") / "model", {"name": "tiny-tfidf", "temperature": 1.0})


@pytest.fixture
def png(tmp_path):
    from PIL import Image

    path = tmp_path / "red.png"
    Image.new("RGB", (12, 12), (255, 0, 0)).save(path)
    return path


def _fails(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_an_image_for_a_text_model_says_to_pass_text(text_model, png):
    msg = _fails("explain", text_model, "--image", png)
    assert "tiny-tfidf is a text model: pass --text" in msg
    assert "ndarray" not in msg and "'text' parameter" not in msg


def test_a_text_for_an_image_model_says_to_pass_an_image(image_model):
    msg = _fails("explain", image_model, "--text", "great coffee")
    assert "shapes is an image model: pass --image FILE (or a folder)" in msg


def test_the_right_input_still_explains(text_model, image_model, png):
    runner = CliRunner()
    res = runner.invoke(app, ["explain", str(text_model), "--text", "tasty tea", "--method", "occlusion"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["explain", str(image_model), "--image", str(png), "--method", "occlusion"])
    assert res.exit_code == 0, res.output
