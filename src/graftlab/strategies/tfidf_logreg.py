"""``tfidf_logreg``: word and bigram TF-IDF features with a logistic regression (scikit-learn).

The regularisation strength C is chosen on the validation split. The fitted model is saved as JSON
(vocabulary, settings) + safetensors (idf, coefficients): no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from ..core.artifacts import load_arrays, load_json, save_arrays, save_json
from ..core.errors import ConfigError, DataError
from ..data.dataset import LabeledData
from .base import PREDICTORS, STRATEGIES, FitContext, FitOutcome, Predictor, Strategy, StrategyParams
from .selection import select_logreg


class TfidfParams(StrategyParams):
    ngram_max: Annotated[int, Field(ge=1, le=3)] = 2
    max_features: Annotated[int, Field(ge=10)] = 50_000
    min_df: Annotated[int, Field(ge=1)] = 1
    C: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0])


@PREDICTORS.register("tfidf_logreg")
class TfidfPredictor(Predictor):
    kind = "tfidf_logreg"
    modality = "text"

    def __init__(self, vectorizer: TfidfVectorizer, coef: np.ndarray, intercept: np.ndarray, label_names: Sequence[str]) -> None:
        super().__init__(label_names)
        self.vectorizer = vectorizer
        self.coef = coef  # (k, vocab) — binary problems are stored as two rows
        self.intercept = intercept  # (k,)

    def predict_logits(self, inputs: Sequence, batch_size: int = 64) -> np.ndarray:
        x = self.vectorizer.transform([str(t) for t in inputs])  # (n, vocab) sparse
        return np.asarray(x @ self.coef.T) + self.intercept

    def n_parameters(self) -> int:
        return int(self.coef.size + self.intercept.size)

    def save_files(self, folder: Path) -> dict[str, Any]:
        vec = self.vectorizer
        vocab = {term: int(i) for term, i in vec.vocabulary_.items()}
        save_json(vocab, folder / "vocabulary.json")
        save_arrays({"idf": vec.idf_, "coef": self.coef, "intercept": self.intercept}, folder / "weights.safetensors")
        return {"ngram_range": list(vec.ngram_range), "sublinear_tf": vec.sublinear_tf, "lowercase": vec.lowercase}

    @classmethod
    def load_files(cls, folder: Path, spec: dict[str, Any]) -> TfidfPredictor:
        arrays = load_arrays(folder / "weights.safetensors")
        vec = TfidfVectorizer(
            ngram_range=tuple(spec["ngram_range"]),
            sublinear_tf=spec["sublinear_tf"],
            lowercase=spec["lowercase"],
            vocabulary=load_json(folder / "vocabulary.json"),
        )
        vec.idf_ = arrays["idf"]  # sets the fitted state without refitting
        k = arrays["coef"].shape[0]
        return cls(vec, arrays["coef"], arrays["intercept"], [str(i) for i in range(k)])


def as_multiclass(model: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(coef (k, d), intercept (k,)) giving the same softmax as ``model`` (binary: [0, w])."""
    coef, intercept = model.coef_, model.intercept_
    if n_classes == 2 and coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef.astype(np.float64), intercept.astype(np.float64)


def _check_has_words(vec: TfidfVectorizer, texts: Sequence[str]) -> None:
    """Raise DataError when ``vec`` finds no word in any of ``texts`` (scikit-learn's "empty vocabulary")."""
    analyze = vec.build_analyzer()
    if any(analyze(t) for t in texts):  # stops at the first text with a word: almost always the first
        return
    shown = ", ".join(repr(t[:30]) for t in texts[:3]) + (", ..." if len(texts) > 3 else "")
    raise DataError(
        f"The TF-IDF baseline (tfidf_logreg) found no words of two or more letters in the {len(texts)} training texts "
        f"({shown}): it counts runs of 2+ letters or digits, so one-letter tokens, symbols and punctuation give it "
        "nothing to learn from. Check that the text column holds the texts to classify; if these are the texts, leave "
        "tfidf_logreg out and use a strategy on a pretrained backbone (its tokenizer reads single characters)."
    )


@STRATEGIES.register("tfidf_logreg")
class TfidfLogreg(Strategy):
    """Baseline: what a careful practitioner gets without any pretrained model."""

    name = "tfidf_logreg"
    kind = "baseline"
    fits_without_val = True
    deterministic = True  # TF-IDF and lbfgs logistic regressions (C chosen on val) draw nothing at random
    uses_backbone = False
    modalities = ("text",)
    Params = TfidfParams

    def fit(self, train: LabeledData, val: LabeledData, ctx: FitContext) -> FitOutcome:
        self.check_data(train)
        p = self.params
        vec = TfidfVectorizer(ngram_range=(1, p.ngram_max), max_features=p.max_features, min_df=p.min_df, sublinear_tf=True)
        texts = [str(t) for t in train.inputs]
        _check_has_words(vec, texts)
        try:
            x_train = vec.fit_transform(texts)
        except ValueError:  # "no terms remain" / "max_df corresponds to < documents than min_df"
            if p.min_df <= 1:
                raise
            raise ConfigError(
                f"tfidf_logreg's min_df {p.min_df} keeps no term: no word or word pair is in {p.min_df} of the "
                f"{len(texts)} training texts. Lower min_df (strategies: tfidf_logreg: min_df: 1 keeps every term)."
            ) from None
        x_val = vec.transform([str(t) for t in val.inputs]) if len(val) else None  # no rows: select_logreg fits C = 1
        model, info = select_logreg(x_train, train.labels, x_val, val.labels, p.C, ctx.seed, ctx.train)
        coef, intercept = as_multiclass(model, train.n_classes)
        pred = TfidfPredictor(vec, coef, intercept, train.label_names)
        return FitOutcome(pred, trainable_params=pred.n_parameters(), total_params=pred.n_parameters(), info=info)
