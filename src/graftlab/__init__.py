"""graftlab: transfer learning you can defend.

Adapt a pretrained backbone to a small labeled dataset with every standard strategy, prove with honest
statistics which one is best and whether transfer was worth it, then ship and watch the winner.

Imports are lazy so that ``import graftlab`` stays fast and has no side effects.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "Study", "StudyConfig", "GraftClassifier", "load_model", "load_config"]

_LAZY = {
    "Study": ("graftlab.study", "Study"),
    "StudyConfig": ("graftlab.core.config", "StudyConfig"),
    "load_config": ("graftlab.core.config", "load_config"),
    "GraftClassifier": ("graftlab.estimator", "GraftClassifier"),
    "load_model": ("graftlab.packaging", "load_model"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'graftlab' has no attribute {name!r}")
