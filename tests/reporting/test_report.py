import math
import re

import pytest

from graftlab.core.errors import ArtifactError
from graftlab.core.results import (
    AblationRow,
    Bakeoff,
    BakeoffCandidate,
    Comparison,
    DataCheckResult,
    DataSection,
    GateResult,
    LearningCurve,
    SliceResult,
    StrategySummary,
    StudyResults,
)
from graftlab.reporting import render_report
from graftlab.reporting.formatting import fmt_ci, fmt_num

SECTION_ORDER = ["decision", "comparison", "paired", "training", "confusion", "calibration", "slices",
                 "robustness", "learning-curve", "bakeoff", "ablation", "explanations", "data", "reproduce"]
EXTERNAL = re.compile(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""",
                      re.IGNORECASE)


def visible_text(html: str) -> str:
    """The page's text as a reader sees it (tags removed, whitespace collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def html(results, tmp_path):
    path = render_report(results, tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    return path.read_text(encoding="utf-8")


def test_all_sections_render_in_order(html):
    positions = [html.index(f'<section id="{s}">') for s in SECTION_ORDER]
    assert positions == sorted(positions)
    for anchor in SECTION_ORDER:
        assert f'href="#{anchor}"' in html


def test_header_and_banner(results, html):
    assert results.study in html and results.run_id in html
    assert "2026-11-22 05:15" in html
    assert results.data.fingerprint[:12] in html
    assert "minilm-l6" in html and "Apache-2.0" in html
    assert 'class="banner fail"' in html and "GATES FAILED" in html
    assert "2 of 3 gates passed" in html


def test_numbers_from_results_appear(results, html):
    text = visible_text(html)
    for entry in results.strategies.values():
        for metric in entry.test.values():
            assert fmt_ci(metric) in text
    assert "validation Macro F1 0.874 (runner-up 0.866)" in text
    for c in results.comparisons:
        assert fmt_num(c.diff).lstrip("-") in html
    assert "p=0.431" in html and "p&lt;0.001" in html
    for gate in results.gates:
        assert gate.evidence.replace("<", "&lt;").replace(">", "&gt;") in html
    assert results.learning_curve.reading in html
    assert results.selection.why in html
    assert "pet_food" in html and "typos" in html and "CC-BY-NC-4.0" in html
    assert "trainable_layers 2 → 4" in html
    assert "near-duplicates of training rows" in html
    assert "transformers" in html and "4.45.2" in html
    assert "epochs: 10" in html  # config rendered as YAML


def test_best_per_column_respects_direction(html):
    table = re.search(r'<table class="metrics">.*?</table>', html, re.S).group(0)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr[^>]*>\s*<td><b>([^<]+)</b>.*?</tr>", table, re.S)}
    winner_row, majority_row = rows["finetune[trainable_layers=2]"], rows["majority"]
    # macro F1 is highest for the winner; log loss, Brier and ECE are lowest for the winner too
    assert winner_row.count('class="num best"') >= 6
    assert 'class="num best"' not in majority_row


def test_readings_and_highlights(html):
    assert "significantly better" in html and "not distinguishable" in html
    assert 'class="winner"' in html and 'class="flagged"' in html
    assert "badge base" in html  # baselines marked


def test_figures_are_embedded(html):
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)
    assert len(images) == 7  # forest, training, confusion, reliability, slices, learning curve, bake-off


def test_explanation_tokens_are_coloured(html):
    assert "rgba(220, 38, 38, 0.85)" in html  # strongest positive token
    assert "rgba(37, 99, 235," in html  # negative tokens in blue
    assert ">del</span><span" in html and ">icious</span>" in html  # WordPiece continuation joined
    assert "[CLS]" not in html  # tokenizer markers are not words


def test_offline_no_external_resources_and_no_scripts(html):
    assert not EXTERNAL.search(html)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()


def test_user_text_is_escaped(binary_results, tmp_path):
    binary_results.explanations[0]["tokens"][1] = "<script>alert(1)</script>"
    binary_results.study = "a&b <i>"
    html = render_report(binary_results, tmp_path).read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "a&amp;b &lt;i&gt;" in html


def test_minimal_results_render(minimal_results, tmp_path):
    html = render_report(minimal_results, tmp_path).read_text()
    assert '<section id="decision">' in html and '<section id="comparison">' in html
    for absent in SECTION_ORDER[2:]:
        assert f'<section id="{absent}">' not in html
    assert "No gates declared" in html and "linear_probe" in html
    assert "Stability and cost" not in html  # no seeds, timings or sizes recorded
    assert fmt_ci(minimal_results.strategies["linear_probe"].test["macro_f1"]) in visible_text(html)


def test_the_dict_of_results_json_renders_as_its_record_does(binary_results, tmp_path):
    from_record = render_report(binary_results, tmp_path / "record").read_text()
    assert render_report(binary_results.to_dict(), tmp_path / "dict").read_text() == from_record


def test_what_is_not_a_studys_results_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="not a graftlab study's results"):
        render_report({"strategies": {}}, tmp_path)


def _sparse_results(**sections) -> StudyResults:
    """One strategy holding nothing but its kind and a validation score, and the sections given."""
    return StudyResults(study="x", run_id="r", winner="a",
                        strategies={"a": StrategySummary(kind="transfer", val={"macro_f1": 0.5})}, **sections)


@pytest.mark.parametrize("results", [
    _sparse_results(),
    # every section present, holding only what its record requires (no number where one can be missing)
    _sparse_results(gates=[GateResult(gate="g", passed=False)],
                    slices=[SliceResult(slice_column="c", slice="s", n=0, metric="macro_f1", value=math.nan)],
                    robustness=[{}], comparisons=[Comparison(diff=math.nan, ci_low=math.nan, ci_high=math.nan)],
                    explanations=[{}], class_tokens={"a": [{}]}, learning_curve=LearningCurve(metric="macro_f1"),
                    bakeoff=Bakeoff(winner="b", candidates=[BakeoffCandidate(backbone="b")]),
                    ablation=[AblationRow(strategy="a", knob="k")],
                    data=DataSection(checks=[DataCheckResult(name="c", status="warn")]),
                    transfer_gain={"over_scratch": None}),
], ids=["bare", "sections_without_numbers"])
def test_sparse_results_render(results, tmp_path):
    html = render_report(results, tmp_path).read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_a_real_studys_results_render(real_results, tmp_path):
    """The results a study writes, rather than this folder's synthetic ones, fill every section they hold."""
    html = render_report(real_results, tmp_path).read_text(encoding="utf-8")
    for anchor in ("decision", "comparison", "paired", "confusion", "slices", "learning-curve", "data", "reproduce"):
        assert f'<section id="{anchor}">' in html
    headline = real_results.headline
    assert real_results.winner in html and fmt_ci(headline) in visible_text(html)
    assert ("GATES PASSED" if real_results.gates_passed else "GATES FAILED") in html
    assert not EXTERNAL.search(html) and "<script" not in html.lower()


def test_slices_from_the_evaluation_layer_show_their_names_and_plot(binary_results, tmp_path):
    """The report reads slice rows exactly as graftlab.evaluation.slice_metrics writes them."""
    import numpy as np

    from graftlab.evaluation import slice_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    proba = np.where(rng.random(300) < 0.8, y, 1 - y)[:, None] == np.arange(2)
    groups = {"product_type": np.array(["coffee", "snacks", "dog_food"])[rng.integers(0, 3, 300)]}
    binary_results.slices = slice_metrics(y, proba.astype(float) * 0.8 + 0.1, groups, n_boot=200)
    html = render_report(binary_results, tmp_path / "out").read_text(encoding="utf-8")
    section = html.split('id="slices"')[1].split("</section>")[0]
    for name in ("coffee", "snacks", "dog_food"):
        assert f"<td>{name}</td>" in section
    assert 'src="data:image/png;base64,' in section  # the slices figure


# A 1 x 1 PNG: the report embeds an image example's heatmap as it is, without decoding it.
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def _image_example(kind, label, predicted, prob, **extra):
    """One image example as graftlab.explain.report_examples writes it (the keys the report reads)."""
    return {"kind": kind, "label": label, "true_label": label, "predicted": predicted, "target_label": predicted,
            "prob": prob, "method": "ig", "note": None, "index": 7, "grid": [[0.4, -0.2], [0.0, 1.1]],
            "grid_shape": [2, 2], "image_png": PNG_1PX,
            "top_patches": {"for": [{"row": 1, "col": 1, "score": 1.1, "bounds": [14, 14, 28, 28]}],
                            "against": [{"row": 0, "col": 1, "score": -0.2, "bounds": [0, 14, 14, 28]}]},
            **extra}


def _explanations_section(html: str) -> str:
    section = html[html.index('<section id="explanations">'):]
    return section[: section.index("</section>")]


def test_image_explanations_render_as_cards(binary_results, tmp_path):
    note = "Integrated gradients needs a neural image model; pixel_logreg is explained by occlusion."
    binary_results.explanations = [
        _image_example("confident_correct", "Coat", "Coat", 0.994),
        _image_example("confident_wrong", "Shirt", "Pullover", 0.9971, method="occlusion", note=note),
    ]
    html = render_report(binary_results, tmp_path).read_text()
    section = _explanations_section(html)
    assert section.count('class="card"') == 2 and 'href="#explanations"' in html
    assert section.count(f'<img src="data:image/png;base64,{PNG_1PX}"') == 2
    assert "confident &amp; correct" in section and "confident &amp; wrong" in section
    text = visible_text(section)
    assert "label Coat predicted Coat · p 0.994" in text and "label Shirt predicted Pullover · p 0.997" in text
    assert "integrated gradients" in text and "occlusion" in text and note in text
    assert 'title="strongest for: (1, 1) +1.10; against: (0, 1) -0.20' in section
    assert "Token attributions" not in section and 'class="expl"' not in section  # no texts here
    assert ".cards {" in html


def test_an_image_example_without_a_valid_png_renders_no_image(binary_results, tmp_path):
    bad = _image_example("confident_wrong", "Bag", "Coat", 0.8, image_png='"><script>alert(1)</script>')
    binary_results.explanations = [bad, _image_example("x", "Bag", "Bag", 0.5, image_png=None)]
    html = render_report(binary_results, tmp_path).read_text()
    section = _explanations_section(html)
    assert section.count('class="noimg"') == 2 and "<img" not in section and "<script" not in html.lower()
    assert 'badge neutral">x</span>' in section


def test_text_explanations_render_no_image_cards(html):
    section = _explanations_section(html)
    assert section.count('class="expl"') == 2 and 'class="card' not in section
    assert ".cards {" not in html  # the card styles come only with image examples


def test_why_examples_could_not_be_explained_is_shown(binary_results, tmp_path):
    binary_results.explanations, binary_results.class_tokens = [], {}
    binary_results.explanations_error = "The 'majority' predictor has no input to attribute."
    section = _explanations_section(render_report(binary_results, tmp_path).read_text())
    assert "No example explanations: The &#39;majority&#39; predictor has no input to attribute." in section


def test_a_time_ordered_split_shows_each_splits_period(binary_results, tmp_path):
    binary_results.data.summary = {"time_order": {"column": "posted", "ranges": {
        "train": ["2024-01-01", "2024-06-10"], "val": ["2024-07-01", "2024-08-10"], "test": None}}}
    text = visible_text(render_report(binary_results, tmp_path).read_text())
    assert "Split by time on posted" in text and "posted from … to" in text
    assert "train " in text and "2024-01-01 to 2024-06-10" in text and "2024-07-01 to 2024-08-10" in text
