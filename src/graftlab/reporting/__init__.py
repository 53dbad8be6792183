"""Human-facing output of a study, built from its results: report.html (with, from the run folder, the chosen
model's ROC and precision-recall curves and test errors) and the decision record.

Imports nothing from graftlab but ``graftlab.core``; figures are matplotlib PNGs embedded as data
URIs, so the report works offline.
"""

from . import plots
from .decision import build_decision, write_decision_record
from .predictions import write_test_errors
from .report import render_report

__all__ = ["build_decision", "plots", "render_report", "write_decision_record", "write_test_errors"]
