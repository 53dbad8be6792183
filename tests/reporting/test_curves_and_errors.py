"""report.html: the chosen model's ROC and precision-recall curves and its downloadable test errors, read from the
files a study writes next to the report; per-class support as a count."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from graftlab.reporting import render_report, write_test_errors
from graftlab.reporting.formatting import fmt_num


def section(html: str, anchor: str) -> str:
    found = re.search(rf'<section id="{anchor}">.*?</section>', html, re.S)
    assert found, f"no {anchor} section"
    return found.group(0)


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def write_winner_predictions(run: Path, results, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``predictions/<winner>.parquet`` as the study writes it (val and test rows of every seed); returns the test
    labels and probabilities of the winner's shipped seed."""
    names, n = results.label_names, 60
    y = np.arange(n) % len(names)
    frames, shipped = [], None
    for seed in (0, 1, 2):
        for split in ("val", "test"):
            logits = rng.normal(size=(n, len(names))) + 1.5 * np.eye(len(names))[y] * (seed + 1) / 3
            p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            frames.append(pd.DataFrame({"id": np.arange(n) + (0 if split == "val" else 100), "split": split,
                                        "seed": seed, "y_true": y, "y_pred": p.argmax(1),
                                        **{f"p_{label}": p[:, j] for j, label in enumerate(names)}}))
            if split == "test" and seed == 1:
                shipped = p
    (run / "predictions").mkdir(parents=True)
    pd.concat(frames).to_parquet(run / "predictions" / f"{results.winner.replace('/', '_')}.parquet", index=False)
    return y, shipped


def test_roc_and_precision_recall_of_the_shipped_seed(results, tmp_path):
    """One curve per class, one-vs-rest (binary: the second class against the first), AUC and AP beside them."""
    results.champion.shipped_seed = 1
    y, p = write_winner_predictions(tmp_path, results, np.random.default_rng(0))
    html = render_report(results, tmp_path).read_text()
    curves = section(html, "curves")
    assert 'href="#curves"' in html
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', curves)) == 1
    names = results.label_names
    shown = names[1:] if len(names) == 2 else names
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td><td class=\"num\">([^<]+)</td>", curves)
    assert [r[0] for r in rows] == shown
    for label, auc, ap in rows:
        c = names.index(label)
        assert auc == fmt_num(roc_auc_score(y == c, p[:, c]))
        assert ap == fmt_num(average_precision_score(y == c, p[:, c]))
    assert "seed 1" in visible_text(curves)


def test_without_predictions_there_are_no_curves(binary_results, tmp_path):
    html = render_report(binary_results, tmp_path).read_text()
    assert '<section id="curves">' not in html and 'href="#curves"' not in html


def test_test_errors_are_written_most_confident_first(tmp_path):
    names = ["great", "other"]
    texts = ["fine", 'said "meh", then left', "tasty\ntea", "ok", "bad", "so-so"]
    y = np.array([0, 0, 1, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.95, 0.05], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])
    path = write_test_errors(tmp_path, np.array([10, 11, 12, 13, 14, 15]), texts, y, proba, names)
    assert path == tmp_path / "test_errors.csv"
    errors = pd.read_csv(path, keep_default_na=False)
    assert list(errors.columns) == ["id", "input", "true_label", "predicted_label", "confidence"]
    assert errors.id.tolist() == [12, 11, 14, 15]  # ties keep the test split's order
    assert errors.input.tolist() == ["tasty\ntea", 'said "meh", then left', "bad", "so-so"]
    assert errors.true_label.tolist() == ["other", "great", "great", "other"]
    assert errors.predicted_label.tolist() == ["great", "other", "other", "great"]
    assert errors.confidence.tolist() == [0.95, 0.8, 0.6, 0.6]


def test_image_errors_are_named_by_id(tmp_path):
    images = [np.zeros((4, 4, 3), dtype=np.uint8)] * 2
    path = write_test_errors(tmp_path, np.array([3, 4]), images, np.array([0, 1]), np.array([[0.2, 0.8], [0.1, 0.9]]),
                             ["cat", "dog"])
    errors = pd.read_csv(path)
    assert list(errors.columns) == ["id", "true_label", "predicted_label", "confidence"] and errors.id.tolist() == [3]


def test_the_report_links_and_embeds_the_test_errors(binary_results, tmp_path):
    texts = ["<b>awful</b> box", "great tea", "meh"]
    write_test_errors(tmp_path, np.array([7, 8, 9]), texts, np.array([0, 1, 1]),
                      np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]]), ["great", "other"])
    html = render_report(binary_results, tmp_path).read_text()
    errors = section(html, "confusion")
    assert 'href="test_errors.csv"' in errors
    embedded = re.search(r'href="data:text/csv;base64,([A-Za-z0-9+/=]+)" download="test_errors.csv"', errors)
    assert embedded and base64.b64decode(embedded.group(1)) == (tmp_path / "test_errors.csv").read_bytes()
    text = visible_text(errors)
    assert "2 misclassified test examples" in text
    assert "&lt;b&gt;awful&lt;/b&gt; box" in errors and "<b>awful</b>" not in errors
    assert text.index("awful") < text.index("great tea")  # most confident first


def test_per_class_support_is_a_count(binary_results, tmp_path):
    html = render_report(binary_results, tmp_path).read_text()
    table = re.search(r"<h3>Per class \(test\)</h3>.*?</table>", html, re.S).group(0)
    support = re.findall(r'<td class="num">([^<]+)</td></tr>', table)
    assert support == ["500", "500"]


@pytest.mark.parametrize("support, shown", [(14.0, "14"), (13.5, "14"), (None, "—")])
def test_support_formatting(support, shown):
    from graftlab.reporting.formatting import fmt_int

    assert fmt_int(support) == shown


def test_a_study_writes_its_test_errors_and_the_report_shows_them(real_results):
    run = Path(real_results.run_dir)
    predictions = pd.read_parquet(run / "predictions" / f"{real_results.winner}.parquet")
    shipped = predictions[(predictions.split == "test") & (predictions.seed == real_results.champion.shipped_seed)]
    wrong = shipped[shipped.y_true != shipped.y_pred]
    errors = pd.read_csv(run / "test_errors.csv", keep_default_na=False)
    assert sorted(errors.id) == sorted(wrong.id)
    assert (errors.true_label != errors.predicted_label).all() and errors.input.str.len().gt(0).all()
    html = (run / "report.html").read_text()
    assert '<section id="curves">' in html and 'href="test_errors.csv"' in html
