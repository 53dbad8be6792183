"""Orchestration: a study from config to evidence, model, report and decision record."""

from .study import Study, StudyResult, load_results

__all__ = ["Study", "StudyResult", "load_results"]
