"""The words most associated with each class across a set of texts, from the model's predictions.

Method: weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008,
"Fightin' Words"), computed on which texts contain each word (presence, not counts) and with each
text weighted by the model's probability for the class. A word scores high for class c when texts
containing it are predicted as c much more often than the rest; the score is a z-score, so rare words
are not ranked high on a handful of texts. English stopwords (scikit-learn's ``ENGLISH_STOP_WORDS``) are
left out: "the" or "was" can separate a small test set's classes by chance and say nothing about them.
It describes the model's *predictions* over the set (an association, cheap: no extra model calls), not
which words the model attends to; per-example attributions come from :func:`graftlab.explain.explain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.errors import ConfigError, DataError

__all__ = ["TOKEN_PATTERN", "class_tokens"]

#: words of two or more characters that start with a letter (numbers and ids are left out)
TOKEN_PATTERN = r"(?u)\b[^\W\d_]\w+\b"


def _log_odds_z(counts: np.ndarray) -> np.ndarray:
    """z-scores (vocab, k) of each word for each class against all other classes.

    ``counts`` (vocab, k): soft number of texts of each class that contain each word. The prior is
    the pooled counts (the whole set is the background corpus).
    """
    total = counts.sum(1)  # (vocab,)
    alpha, alpha0 = total, total.sum()
    n = counts.sum(0)  # (k,)
    z = np.zeros_like(counts)
    for c in range(counts.shape[1]):
        y_c, y_r = counts[:, c], total - counts[:, c]
        n_c, n_r = n[c], n.sum() - n[c]
        delta = (np.log((y_c + alpha) / (n_c + alpha0 - y_c - alpha))
                 - np.log((y_r + alpha) / (n_r + alpha0 - y_r - alpha)))
        z[:, c] = delta / np.sqrt(1.0 / (y_c + alpha) + 1.0 / (y_r + alpha))
    return z


def class_tokens(
    inputs: Sequence[str],
    proba: np.ndarray,
    label_names: Sequence[str],
    top: int = 10,
    min_count: int = 3,
) -> dict[str, list[dict[str, Any]]]:
    """The ``top`` words most associated with each class in the model's predictions on ``inputs``.

    Args:
        inputs: texts (e.g. the test split).
        proba: (n, k) predicted probabilities for ``inputs``.
        label_names: names of the k classes.
        top: words per class.
        min_count: a word must occur in at least this many texts.

    Returns:
        ``{label: [{"token", "score", "count", "share"}, ...]}``, best first, only words with a
        positive score: ``score`` is the log-odds z-score, ``count`` the number of texts containing
        the word and ``share`` the mean predicted probability of the class over those texts.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    proba = np.asarray(proba, dtype=np.float64)
    names = [str(x) for x in label_names]
    if proba.ndim != 2 or proba.shape != (len(inputs), len(names)):
        raise DataError(f"class_tokens needs proba of shape (n_inputs, n_classes) = ({len(inputs)}, {len(names)}). "
                        f"Got {proba.shape} instead.")
    for name, value, low in (("top", top, 1), ("min_count", min_count, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"The '{name}' parameter of class_tokens must be an int >= {low}. Got {value!r} instead.")
    vectorizer = CountVectorizer(binary=True, lowercase=True, token_pattern=TOKEN_PATTERN, stop_words="english",
                                 min_df=min_count)
    try:
        present = vectorizer.fit_transform([str(t) for t in inputs])  # (n, vocab) 0/1
    except ValueError:  # no word occurs min_count times
        return {name: [] for name in names}
    vocab = vectorizer.get_feature_names_out()
    counts = np.asarray(present.T @ proba)  # (vocab, k): soft document counts per class
    docs = np.asarray(present.sum(0)).ravel()  # (vocab,)
    z = _log_odds_z(counts)
    out: dict[str, list[dict[str, Any]]] = {}
    for c, name in enumerate(names):
        order = np.lexsort((vocab, -z[:, c]))  # highest score first, ties alphabetical
        out[name] = [{"token": str(vocab[w]), "score": round(float(z[w, c]), 3), "count": int(docs[w]),
                      "share": round(float(counts[w, c] / docs[w]), 3)}
                     for w in order[:top] if z[w, c] > 1e-9]
    return out
