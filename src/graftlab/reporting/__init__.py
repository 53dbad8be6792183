"""Human-facing output of a study, built only from its results dict: report.html and the decision record.

Imports nothing from graftlab but ``graftlab.core``; figures are matplotlib PNGs embedded as data
URIs, so the report works offline.
"""

from . import plots
from .decision import build_decision, write_decision_record
from .report import render_report

__all__ = ["build_decision", "plots", "render_report", "write_decision_record"]
