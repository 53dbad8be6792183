"""A content hash of a labeled dataset: same rows and label map → same fingerprint, in any process."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

import numpy as np

from .dataset import LabeledData

__all__ = ["fingerprint", "FINGERPRINT_FORMAT"]

FINGERPRINT_FORMAT = "graftlab-fingerprint/1"


def _canonical_input(x: Any) -> str:
    """Texts in Unicode NFC (otherwise unchanged); arrays as dtype, shape and a hash of their bytes."""
    if isinstance(x, str):
        return unicodedata.normalize("NFC", x)
    if isinstance(x, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
        return f"ndarray:{x.dtype.str}:{list(x.shape)}:{digest}"
    if isinstance(x, bytes):
        return "bytes:" + hashlib.sha256(x).hexdigest()
    return unicodedata.normalize("NFC", str(x))


def fingerprint(data: LabeledData, *more: LabeledData) -> str:
    """sha256 (hex) over the canonical rows and the label map of one or more datasets.

    What is hashed, in order, as UTF-8:

    1. the format tag ``graftlab-fingerprint/1`` and the label map as a JSON list (so renaming,
       adding or reordering classes changes the fingerprint);
    2. for each dataset given (``data`` first, then ``more`` in order, e.g. a source and a fixed
       test set, so moving a row from one to the other changes the fingerprint): its row count,
       then one JSON line ``[input, label_name]`` per row, rows sorted by (input, label_name).

    Inputs are text in Unicode NFC and otherwise kept as they are (whitespace and case count).
    Row order, row ids and metadata columns do not enter the hash; labels do, by name.

    Args:
        data: the dataset to hash.
        *more: further parts hashed after ``data``; they must share its label map.

    Returns:
        64 hex characters.
    """
    parts = (data, *more)
    for part in more:
        if list(part.label_names) != list(data.label_names):
            raise ValueError("every part passed to fingerprint() must share the same label map")
    h = hashlib.sha256()
    h.update(f"{FINGERPRINT_FORMAT}\n".encode())
    h.update((json.dumps(list(data.label_names), ensure_ascii=False) + "\n").encode())
    for part in parts:
        names = [part.label_names[i] for i in part.labels]
        rows = sorted(zip((_canonical_input(x) for x in part.inputs), names, strict=True))
        h.update(f"part {len(rows)}\n".encode())
        for row in rows:
            h.update((json.dumps(row, ensure_ascii=False) + "\n").encode())
    return h.hexdigest()
