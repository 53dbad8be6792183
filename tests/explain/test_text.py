"""explain(): integrated gradients completeness, occlusion that finds the words the model uses, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftlab.core.errors import ConfigError, DataError
from graftlab.explain import explain
from graftlab.explain.text import log_odds
from graftlab.testing import TINY_WORDS

POSITIVE, NEGATIVE, FILLER = set(TINY_WORDS[:12]), set(TINY_WORDS[12:23]), set(TINY_WORDS[23:])

# Completeness: IG attributions must sum to F(input) - F(baseline), F = the target's log-odds, within
# this absolute tolerance (log-odds units) at 64 integration steps.
IG_TOLERANCE = 1e-2
TEXTS = ["the tea was delicious and fresh , i recommend it",
         "awful stale coffee , a waste of money",
         "my dog and cat love this snack"]


def _log_odds_of_ids(predictor, ids, target):
    """The target's log-odds computed directly from token ids (independent of graftlab.explain)."""
    t = torch.tensor([ids])
    with torch.no_grad():
        logits = predictor.model({"input_ids": t, "attention_mask": torch.ones_like(t)}).numpy()
    return float(log_odds(logits, target)[0])


@pytest.mark.parametrize("text", TEXTS)
def test_integrated_gradients_are_complete(neural, text):
    e = explain(neural, text, method="ig", n_steps=64)
    tok = neural.backbone.tokenizer
    ids = tok(text, truncation=True, max_length=32)["input_ids"]
    baseline = [i if i in (tok.cls_token_id, tok.sep_token_id) else tok.pad_token_id for i in ids]
    diff = _log_odds_of_ids(neural, ids, e["target"]) - _log_odds_of_ids(neural, baseline, e["target"])
    assert abs(diff) > 0.1, "the text must move the model away from the baseline for the check to mean anything"
    assert len(e["tokens"]) == len(e["attributions"]) == len(ids)
    assert abs(sum(e["attributions"]) - diff) <= IG_TOLERANCE
    assert e["completeness_error"] <= IG_TOLERANCE
    assert e["completeness_error"] == pytest.approx(abs(sum(e["attributions"]) - diff), abs=1e-4)
    assert e["baseline"] == "pad" and e["method"] == "ig" and e["note"] is None


def test_special_tokens_get_no_attribution_and_words_sum_their_pieces(neural):
    e = explain(neural, "unbelievably tasty tea", method="ig")
    assert e["tokens"][0] == "[CLS]" and e["tokens"][-1] == "[SEP]"
    assert e["attributions"][0] == 0.0 and e["attributions"][-1] == 0.0  # same token in input and baseline
    assert e["words"] == ["unbelievably", "tasty", "tea"]
    assert sum(e["word_attributions"]) == pytest.approx(sum(e["attributions"]), abs=1e-6)
    assert [e["text"][s:t] for s, t in e["word_spans"]] == e["words"]


def test_ig_works_on_a_frozen_encoder(neural):
    params = list(neural.model.parameters())
    before = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        e = explain(neural, TEXTS[0], method="ig")
    finally:
        for p, flag in zip(params, before, strict=True):
            p.requires_grad_(flag)
    assert e["completeness_error"] <= IG_TOLERANCE and any(abs(a) > 1e-3 for a in e["attributions"])


@pytest.mark.parametrize(("method", "n_texts"), [("occlusion", 40), ("ig", 12)])
def test_sentiment_words_are_credited_more_often_than_filler(neural, data, method, n_texts):
    """Over test texts, a sentiment word of the predicted class gets positive attribution far more
    often (and far more of it) than a filler word. (Per text the two methods can rank words
    differently: the tiny model is saturated, where occlusion sees little and IG integrates.)"""
    sentiment, filler = [], []
    for text in data.test.inputs[:n_texts]:
        e = explain(neural, text, method=method, n_steps=16)
        own = POSITIVE if e["label"] == "great" else NEGATIVE
        for word, a in zip(e["words"], e["word_attributions"], strict=True):
            (sentiment if word in own else filler if word in FILLER else []).append(a)
    sentiment, filler = np.array(sentiment), np.array(filler)
    assert len(sentiment) >= n_texts and len(filler) >= 2 * n_texts
    assert (sentiment > 0).mean() >= 0.9 and (sentiment > 0).mean() >= (filler > 0).mean() + 0.2
    assert sentiment.mean() > filler.mean() + 0.2


def test_target_other_class_flips_the_sign_for_two_classes(neural):
    a = explain(neural, TEXTS[0], method="ig", target=0)
    b = explain(neural, TEXTS[0], method="ig", target="other")
    assert (a["target_label"], b["target_label"]) == ("great", "other")
    np.testing.assert_allclose(a["attributions"], -np.array(b["attributions"]), atol=1e-4)


def test_packaged_model_uses_its_calibrated_probability(neural, packaged_dir):
    from graftlab.packaging import load_model

    model = load_model(packaged_dir)
    e = explain(model, TEXTS[1], method="occlusion")
    p = model.predict_proba([TEXTS[1]])[0]
    assert e["confidence"] == pytest.approx(float(p.max()), abs=1e-5)
    assert e["probabilities"] == pytest.approx(dict(zip(model.label_names, p.tolist())), abs=1e-5)
    assert e["confidence"] < float(neural.predict_proba([TEXTS[1]])[0].max())  # temperature 2 softens it
    np.testing.assert_allclose(e["attributions"], explain(neural, TEXTS[1], method="occlusion")["attributions"],
                               atol=1e-5)


def test_long_text_is_marked_truncated(neural):
    e = explain(neural, " ".join(["tasty tea"] * 40), method="occlusion")
    assert e["truncated"] and len(e["tokens"]) == 32 and len(e["words"]) == 30


def test_tfidf_is_explained_by_occlusion_and_the_sentiment_word_ranks_first(tfidf):
    e = explain(tfidf, "the tea and the box was delicious", method="ig")
    assert e["method"] == "occlusion" and "occlusion" in e["note"] and e["completeness_error"] is None
    assert e["label"] == "great" and e["baseline"] == "word removed"
    assert e["words"][int(np.argmax(e["word_attributions"]))] == "delicious"
    neg = explain(tfidf, "the tea and the box was awful", method="occlusion")
    assert neg["label"] == "other" and neg["words"][int(np.argmax(neg["word_attributions"]))] == "awful"


def test_prior_ignores_its_input(prior):
    e = explain(prior, "delicious tea", method="ig")
    assert e["method"] == "occlusion" and e["attributions"] == [0.0, 0.0]


def test_arguments_are_validated(neural):
    with pytest.raises(ConfigError, match="'method'.*'ig', 'occlusion'.*'shap'"):
        explain(neural, "tea", method="shap")
    with pytest.raises(ConfigError, match="'target'.*'great', 'other'.*'meh'"):
        explain(neural, "tea", target="meh")
    with pytest.raises(ConfigError, match="'target'.*\\[0, 1\\]"):
        explain(neural, "tea", target=5)
    with pytest.raises(ConfigError, match="'n_steps'"):
        explain(neural, "tea", n_steps=1)
    with pytest.raises(DataError, match="'text'.*list"):
        explain(neural, ["tea"])
    with pytest.raises(ConfigError, match="'model'"):
        explain(object(), "tea")


def test_a_label_name_that_looks_like_an_index_means_the_label():
    from graftlab.explain.api import _target_index

    stars = ["1", "2", "3", "4", "5"]
    assert _target_index("1", stars) == 0 and _target_index("5", stars) == 4 and _target_index(2, stars) == 2
    assert _target_index("0", ["neg", "pos"]) == 0 and _target_index(None, stars) is None
