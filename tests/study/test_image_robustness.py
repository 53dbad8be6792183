"""Image robustness perturbations: seeded, uint8 in and out, and each one changes the images."""

from __future__ import annotations

import random

import numpy as np

from graftlab.strategies.base import Predictor
from graftlab.study.robustness import IMAGE_PERTURBATIONS, robustness_report


class _MeanBrightness(Predictor):
    """A stand-in predictor: class 1 when the image is bright."""

    def __init__(self):
        super().__init__(["dark", "bright"])

    def save_files(self, folder):
        raise NotImplementedError

    @classmethod
    def load_files(cls, folder, spec):
        raise NotImplementedError

    def predict_logits(self, inputs, batch_size=64):
        m = np.array([x.mean() / 255.0 for x in inputs])
        return np.stack([(0.5 - m) * 10, (m - 0.5) * 10], axis=1)


def test_each_image_perturbation_is_seeded_and_keeps_the_image_format():
    rng = np.random.default_rng(0)
    for img in (rng.integers(0, 256, (12, 10), dtype=np.uint8), rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)):
        for name, fn in IMAGE_PERTURBATIONS.items():
            a, b = fn(img, random.Random(1)), fn(img, random.Random(1))
            assert a.dtype == np.uint8 and a.shape == img.shape, name
            assert np.array_equal(a, b) and not np.array_equal(a, img), name


def test_robustness_report_on_images_shows_the_brightness_sensitivity():
    images = [np.full((6, 6), v, np.uint8) for v in (60, 100, 160, 200)]
    labels = np.array([0, 0, 1, 1])
    pred = _MeanBrightness()
    rows = robustness_report(pred, images, labels, "accuracy", 1.0, pred.predict_logits(images))
    by_name = {r["perturbation"]: r for r in rows}
    assert set(by_name) == set(IMAGE_PERTURBATIONS)
    assert by_name["darker (x0.6)"]["drop"] > 0 and by_name["darker (x0.6)"]["changed_share"] == 1.0
    assert by_name["darker (x0.6)"]["model_input_changed_share"] is None  # the stand-in cannot say what it sees
