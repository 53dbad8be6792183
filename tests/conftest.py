"""Shared fixtures: a small clean labeled table, a writer for study configs that use it, and a guard that keeps
serve tests from starting uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

_WORDS = ["tea", "coffee", "cocoa", "honey", "oats", "rice", "jam", "salt", "soup", "nuts"]


def make_reviews(n_per_class: int = 30, classes: tuple[str, ...] = ("great", "other")) -> pd.DataFrame:
    """Unique review texts (no exact or near duplicates), balanced classes, a product group per 5 rows."""
    rows = []
    for c, label in enumerate(classes):
        for i in range(n_per_class):
            k = c * n_per_class + i
            rows.append({
                "review": f"review {k} says the {_WORDS[k % len(_WORDS)]} is {label}",
                "score": label,
                "product": f"p{k // 5}",
                "kind": "food" if k % 2 else "drink",
            })
    return pd.DataFrame(rows)


@pytest.fixture
def reviews() -> pd.DataFrame:
    return make_reviews()


@pytest.fixture
def reviews_factory() -> Callable[..., pd.DataFrame]:
    return make_reviews


@pytest.fixture
def write_study(tmp_path: Path) -> Callable[..., Path]:
    """Write ``frame`` to reviews.csv and a study YAML using it; ``data`` entries override the defaults."""

    def write(frame: pd.DataFrame | None = None, name: str = "tiny", **data: Any) -> Path:
        (frame if frame is not None else make_reviews()).to_csv(tmp_path / "reviews.csv", index=False)
        cfg = {"name": name, "data": {"source": {"kind": "csv", "path": "reviews.csv"}, "text": "review",
                                      "label": "score", **data}}
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    return write


@pytest.fixture
def no_server(monkeypatch):
    """A serve test must fail before uvicorn starts: if it got that far, fail instead of blocking."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: pytest.fail("uvicorn.run was reached"))
