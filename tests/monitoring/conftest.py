"""A packaged TF-IDF model with a reference profile, and a writer that fills a prediction log with traffic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from monitor_fixtures import fit_tfidf, reference_profile, write_traffic


@pytest.fixture(scope="session")
def tfidf_model(tmp_path_factory) -> Path:
    """A packaged TF-IDF model (name 'tiny-monitor') whose reference profile has no embeddings."""
    from graftlab.packaging import export_model

    predictor, texts, y, names = fit_tfidf()
    proba = predictor.predict_proba(texts)
    folder = tmp_path_factory.mktemp("monitor-model") / "model"
    return export_model(predictor, folder, {"name": "tiny-monitor", "temperature": 1.0},
                        reference=reference_profile(texts, proba, y, names))


@pytest.fixture
def traffic() -> Callable[..., list[str]]:
    return write_traffic
