"""The retraining loop: rerun the champion's study protocol on original + new labeled traffic, compare
champion and challenger on a fresh holdout, and promote only when the challenger is significantly better
(``graft retrain``). Orchestrates study, tracking, monitoring and packaging."""

from .protocol import SPLIT_COLUMN, Protocol, SplitRecord, find_protocol, original_frame
from .record import DecisionRecord, RetrainEvidence, render_markdown, write_record
from .retrain import LABELS_UNTIL_TAG, RetrainOutcome, RetrainPolicy, retrain, time_split

__all__ = [
    "LABELS_UNTIL_TAG",
    "SPLIT_COLUMN",
    "DecisionRecord",
    "Protocol",
    "RetrainEvidence",
    "RetrainOutcome",
    "RetrainPolicy",
    "SplitRecord",
    "find_protocol",
    "original_frame",
    "render_markdown",
    "retrain",
    "time_split",
    "write_record",
]
