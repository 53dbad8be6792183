"""The retraining loop: rerun the champion's study protocol on original + new labeled traffic, compare
champion and challenger on a fresh holdout, and promote only when the challenger is significantly better
(``graft retrain``). Orchestrates study, tracking, monitoring and packaging."""

from .protocol import SPLIT_COLUMN, Protocol, find_protocol, original_frame
from .record import render_markdown, write_record
from .retrain import LABELS_UNTIL_TAG, RetrainOutcome, RetrainPolicy, retrain, time_split

__all__ = [
    "LABELS_UNTIL_TAG",
    "SPLIT_COLUMN",
    "Protocol",
    "RetrainOutcome",
    "RetrainPolicy",
    "find_protocol",
    "original_frame",
    "render_markdown",
    "retrain",
    "time_split",
    "write_record",
]
