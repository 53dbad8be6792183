"""Orchestration: a study from config to evidence, model, report and decision record."""

from .result import StudyResult, evaluate_model, leaderboard
from .study import Study, load_results

__all__ = ["Study", "StudyResult", "evaluate_model", "leaderboard", "load_results"]
