"""One real sqlite-backed MLflow store shared by the tracking tests, filled by three tiny studies.

Built once per session, inside a temporary project folder that is the working directory while the
studies run and log (so the default store ``.graft/mlflow.db`` and ``.graft/artifacts`` are used):

1. ``rich``: majority, tfidf_logreg, full (fine-tuned tiny BERT); gate passes -> version 1, champion.
2. ``cheap``: majority, tfidf_logreg; gate passes -> version 2, challenger.
3. ``failing``: same strategies, a gate no model can pass -> version 3, gates=failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from graftlab.core.artifacts import load_json
from graftlab.core.config import StudyConfig
from graftlab.testing import make_tiny_bert, synthetic_reviews

MODEL_NAME = "reviews-clf"


@dataclass
class Logged:
    config: StudyConfig
    run_dir: Path
    results: dict[str, Any]
    info: dict[str, Any]


@dataclass
class Tracked:
    root: Path
    uri: str
    name: str
    rich: Logged
    cheap: Logged
    failing: Logged


def study_config(root: Path, bert: Path, strategies: list[Any], gates: list[str], name: str) -> StudyConfig:
    return StudyConfig.from_dict({
        "name": name,
        "data": {"source": {"kind": "csv", "path": str(root / "reviews.csv")}, "text": "review", "label": "score",
                 "slices": ["product"], "license": "CC-BY-4.0"},
        "backbones": [str(bert)],
        "strategies": strategies,
        "train": {"epochs": 1, "lr": 3e-3, "batch_size": 32, "max_length": 24},
        "eval": {"seeds": 1, "bootstrap": 200, "gates": gates, "latency": False},
        "tracking": {"register_as": MODEL_NAME},
        "output_dir": str(root / "runs"),
    })


def _run_and_log(cfg: StudyConfig) -> Logged:
    from graftlab.study import Study
    from graftlab.tracking import log_study

    res = Study(cfg, progress=False).run()
    tracking_json = res.run_dir / "tracking.json"
    # Once Study.run logs by itself, it has written tracking.json; otherwise log here.
    info = load_json(tracking_json) if tracking_json.is_file() else log_study(res.results, res.run_dir, cfg)
    return Logged(cfg, res.run_dir, load_json(res.run_dir / "results.json"), info)


@pytest.fixture(scope="session")
def tracked(tmp_path_factory) -> Tracked:
    root = tmp_path_factory.mktemp("project").resolve()
    bert = make_tiny_bert(root / "tiny-bert")
    synthetic_reviews(160, seed=0).to_csv(root / "reviews.csv", index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("GRAFT_TRACKING_URI", raising=False)
        mp.setenv("GRAFT_CACHE_DIR", str(root / "cache"))
        cheap = ["majority", "tfidf_logreg"]
        rich = _run_and_log(study_config(root, bert, [*cheap, "full"], ["macro_f1 >= 0.5"], "rich"))
        second = _run_and_log(study_config(root, bert, cheap, ["macro_f1 >= 0.5"], "cheap"))
        failing = _run_and_log(study_config(root, bert, cheap, ["macro_f1 >= 1.5"], "failing"))
    return Tracked(root, f"sqlite:///{root / '.graft' / 'mlflow.db'}", MODEL_NAME, rich, second, failing)


@pytest.fixture(scope="session")
def mlflow_client(tracked: Tracked):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracked.uri, registry_uri=tracked.uri)
