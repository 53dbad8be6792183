"""Data: loading, labeling, fingerprints, splits and pre-training checks."""

from .checks import CheckResult, DataChecksFailed, checks_table, normalise_texts
from .dataset import LabeledData
from .fingerprint import fingerprint
from .load import load_frame, load_frame_like, source_name, to_labeled
from .prepare import PreparedData, load_data, load_prepared_split, prepare_data
from .split import load_split, save_split, split_data, subsample

__all__ = [
    "CheckResult",
    "DataChecksFailed",
    "LabeledData",
    "PreparedData",
    "checks_table",
    "fingerprint",
    "load_data",
    "load_frame",
    "load_frame_like",
    "load_prepared_split",
    "load_split",
    "normalise_texts",
    "prepare_data",
    "save_split",
    "source_name",
    "split_data",
    "subsample",
    "to_labeled",
]
