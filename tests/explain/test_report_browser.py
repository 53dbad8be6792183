"""The report's explanations, from a real (tiny) model, rendered in headless Chromium and actually painted."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from graftlab.explain import class_tokens, report_examples
from graftlab.reporting import render_report

_BROWSER_TEST = Path(__file__).parents[1] / "reporting" / "test_browser.py"


def _screenshot_helper():
    """tests/reporting/test_browser.py's ``screenshot`` (one chromium command for every browser test)."""
    if not _BROWSER_TEST.is_file():
        pytest.skip("tests/reporting/test_browser.py is not here")
    spec = importlib.util.spec_from_file_location("_report_browser_helper", _BROWSER_TEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return module.screenshot


@pytest.fixture(scope="module")
def results(neural, data):
    texts, y = data.test.inputs, data.test.labels
    proba = neural.predict_proba(texts)
    metric = {"value": 0.9, "ci_low": 0.85, "ci_high": 0.95}
    return {
        "study": "explanations", "run_id": "20260101-000000", "headline_metric": "macro_f1",
        "strategies": {"full": {"kind": "transfer", "test": {"macro_f1": metric}, "val": {"macro_f1": 0.9}}},
        "winner": "full",
        "explanations": report_examples(neural, texts, y, proba, data.names, method="ig"),
        "class_tokens": class_tokens(data.train.inputs + texts, neural.predict_proba(data.train.inputs + texts),
                                     data.names, top=8),
    }


def test_explanations_render_as_coloured_tokens_and_class_words(results, tmp_path):
    html = render_report(results, tmp_path).read_text()
    section = html[html.index('<section id="explanations">'):]
    section = section[: section.index("</section>")]
    assert section.count('class="expl"') == len(results["explanations"]) >= 2
    assert "confident &amp; correct" in section and "integrated gradients" in section
    assert "rgba(220, 38, 38" in section and "rgba(37, 99, 235" in section  # evidence for and against
    assert "Words most associated with each class" in section
    for label, words in results["class_tokens"].items():
        assert words and f"<b>{label}</b>" in section and f">{words[0]['token']}</span>" in section


@pytest.mark.browser
def test_explanations_are_painted_in_chromium(results, tmp_path):
    screenshot = _screenshot_helper()
    Image = pytest.importorskip("PIL.Image")
    html = render_report(results, tmp_path)
    png = tmp_path / "explanations.png"
    proc = screenshot(html, png, height=1600)
    assert png.exists(), f"no screenshot; chromium said:\n{proc.stderr[-2000:]}"
    with Image.open(png) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    reddish = int(((r > 200) & (g < 140) & (b < 140)).sum())
    bluish = int(((b > 200) & (r < 140) & (g < 190)).sum())
    assert reddish > 500 and bluish > 200, (reddish, bluish)  # highlighted tokens were painted


def test_report_shows_the_words_as_written(neural, tmp_path):
    from graftlab.explain import explain

    e = explain(neural, "The tea was Delicious, truly!", method="occlusion")
    long = explain(neural, " ".join(["Tasty tea"] * 40), method="occlusion")
    results = {"study": "s", "run_id": "r", "strategies": {"full": {"kind": "transfer"}}, "winner": "full",
               "explanations": [e, long]}
    html = render_report(results, tmp_path).read_text()
    assert ">Delicious</span><span" in html  # casing kept, the comma follows with no space
    assert ">truly</span><span" in html and "[CLS]" not in html
    assert 'title="cut here: the model reads no further">…</span>' in html
