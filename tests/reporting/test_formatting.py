import math

import pytest

from graftlab.reporting import formatting as F


@pytest.mark.parametrize(
    ("p", "text"), [(0.0004, "p<0.001"), (0.0031, "p=0.003"), (0.4312, "p=0.431"), (None, F.MISSING), (math.nan, F.MISSING)]
)
def test_fmt_p(p, text):
    assert F.fmt_p(p) == text


def test_fmt_ci_formats_three_decimals_and_tolerates_missing_bounds():
    assert F.fmt_ci({"value": 0.81234, "ci_low": 0.79, "ci_high": 0.83}) == "0.812 [0.790, 0.830]"
    assert F.fmt_ci({"value": 0.81234}) == "0.812"
    assert F.fmt_ci(0.5) == "0.500"
    assert F.fmt_ci(None) == F.MISSING
    assert F.fmt_ci({"value": 0.01, "ci_low": -0.01, "ci_high": 0.03}, signed=True) == "+0.010 [-0.010, +0.030]"


def test_sizes():
    assert F.fmt_count(22_713_216) == "22.7M"
    assert F.fmt_count(812) == "812"
    assert F.fmt_bytes(90_867_000) == "86.7 MB"
    assert F.fmt_seconds(41.3) == "41.3 s"
    assert F.fmt_seconds(600) == "10.0 min"
    assert F.fmt_seconds(0.02) == "0.02 s"


@pytest.mark.parametrize(
    ("diff", "low", "high", "p", "metric", "text"),
    [
        (0.05, 0.02, 0.08, 0.001, "macro_f1", "significantly better"),
        (-0.05, -0.08, -0.02, 0.001, "macro_f1", "significantly worse"),
        (0.01, -0.01, 0.03, 0.4, "macro_f1", "not distinguishable"),
        (0.05, 0.02, 0.08, 0.2, "macro_f1", "not distinguishable"),  # CI and p disagree
        (-0.02, -0.03, -0.01, 0.01, "ece", "significantly better"),  # lower is better
        (0.02, 0.01, 0.03, None, "log_loss", "significantly worse"),
        (None, None, None, None, "macro_f1", "not available"),
    ],
)
def test_reading(diff, low, high, p, metric, text):
    assert F.reading(diff, low, high, p, metric) == text


@pytest.mark.parametrize(("row", "name"), [
    ({"slice_column": "class", "slice": "class=iPhone"}, "class=iPhone"),  # the value already names its column
    ({"slice_column": "length", "slice": "len Q1 (3-20 words)"}, "len Q1 (3-20 words)"),
    ({"slice_column": "product", "slice": "pet_food"}, "product=pet_food"),
    ({"slice_column": "length", "slice": "short"}, "length=short"),  # a user's own column named length
])
def test_slice_names_do_not_repeat_their_column(row, name):
    assert F.slice_name(row) == name
