"""graftlab: transfer learning you can defend.

Adapt a pretrained backbone to a small labeled dataset with every standard strategy, prove with honest
statistics which one is best and whether transfer was worth it, then ship and watch the winner.

Start with ``graftlab.Study.from_yaml("study.yaml").run()`` (then ``.leaderboard()``); ``dir(graftlab)`` lists the
public API. Imports are lazy so that ``import graftlab`` stays fast and has no side effects.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # a study: config -> run -> results
    "Study",
    "StudyConfig",
    "StudyResult",
    "load_config",
    "load_results",
    # a model: scikit-learn estimator, packaged model, its evaluation on new labeled rows
    "GraftClassifier",
    "Evaluation",
    "PackagedModel",
    "load_model",
    # the registry
    "list_models",
    "promote",
    "resolve_model",
    "rollback",
    # serving, monitoring, retraining
    "ServeConfig",
    "create_app",
    "retrain",
    "run_monitor",
]

_LAZY = {
    "Study": ("graftlab.study", "Study"),
    "StudyConfig": ("graftlab.core.config", "StudyConfig"),
    "StudyResult": ("graftlab.study", "StudyResult"),
    "load_config": ("graftlab.core.config", "load_config"),
    "load_results": ("graftlab.study", "load_results"),
    "GraftClassifier": ("graftlab.estimator", "GraftClassifier"),
    "Evaluation": ("graftlab.evaluation.evaluate", "Evaluation"),
    "PackagedModel": ("graftlab.packaging", "PackagedModel"),
    "load_model": ("graftlab.packaging", "load_model"),
    "list_models": ("graftlab.tracking", "list_models"),
    "promote": ("graftlab.tracking", "promote"),
    "resolve_model": ("graftlab.tracking", "resolve_model"),
    "rollback": ("graftlab.tracking", "rollback"),
    "ServeConfig": ("graftlab.serving", "ServeConfig"),
    "create_app": ("graftlab.serving", "create_app"),
    "retrain": ("graftlab.lifecycle", "retrain"),
    "run_monitor": ("graftlab.monitoring", "run_monitor"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'graftlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (what ``__all__`` lists), so that ``dir(graftlab)`` and tab completion show it."""
    return sorted(__all__)
