"""Choosing a backbone before committing to it: LogME, the bake-off and the license gate."""

from .bakeoff import SCORE_KEYS, bakeoff_subset, pick_winner, probe_cv_accuracy, run_bakeoff
from .license import LicenseVerdict, check_license, license_verdict, license_verdicts
from .logme import log_evidence, logme, logme_evidence

__all__ = [
    "SCORE_KEYS",
    "LicenseVerdict",
    "bakeoff_subset",
    "check_license",
    "license_verdict",
    "license_verdicts",
    "log_evidence",
    "logme",
    "logme_evidence",
    "pick_winner",
    "probe_cv_accuracy",
    "run_bakeoff",
]
