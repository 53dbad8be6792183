"""The dataset fingerprint: invariant to row order, sensitive to content and the label map."""

from __future__ import annotations

import unicodedata

import numpy as np

from graftlab.data import LabeledData, fingerprint


def _data(texts, labels, names=("a", "b"), ids=None) -> LabeledData:
    ids = np.arange(len(texts)) if ids is None else np.asarray(ids)
    return LabeledData(list(texts), np.asarray(labels, dtype=np.int64), list(names), ids)


TEXTS = ["good tea", "bad coffee", "fine jam", "café au lait"]
LABELS = [0, 1, 0, 1]


def test_is_a_sha256_hex_and_known_value():
    fp = fingerprint(_data(TEXTS, LABELS))
    assert len(fp) == 64 and int(fp, 16) >= 0
    # Pinned: a change of the canonical form must be deliberate (bump FINGERPRINT_FORMAT).
    assert fp == fingerprint(_data(TEXTS, LABELS))
    assert fp == "a28b9a6f4bc7aed37495436322021372c3b2b89903903c683ef08a8fa3f4de7f"


def test_row_order_and_ids_do_not_matter():
    order = [2, 0, 3, 1]
    shuffled = _data([TEXTS[i] for i in order], [LABELS[i] for i in order], ids=[9, 8, 7, 6])
    assert fingerprint(shuffled) == fingerprint(_data(TEXTS, LABELS))


def test_unicode_is_compared_in_nfc():
    decomposed = [unicodedata.normalize("NFD", t) for t in TEXTS]
    assert decomposed[3] != TEXTS[3]
    assert fingerprint(_data(decomposed, LABELS)) == fingerprint(_data(TEXTS, LABELS))


def test_a_label_change_changes_it():
    flipped = list(LABELS)
    flipped[0] = 1
    assert fingerprint(_data(TEXTS, flipped)) != fingerprint(_data(TEXTS, LABELS))


def test_the_label_map_changes_it():
    base = fingerprint(_data(TEXTS, LABELS))
    # Same rows and same label names per row, but a label map with an extra class.
    assert fingerprint(_data(TEXTS, LABELS, names=("a", "b", "c"))) != base
    # Renamed classes.
    assert fingerprint(_data(TEXTS, LABELS, names=("x", "b"))) != base


def test_a_text_change_changes_it_and_whitespace_counts():
    changed = list(TEXTS)
    changed[1] = "bad coffee "
    assert fingerprint(_data(changed, LABELS)) != fingerprint(_data(TEXTS, LABELS))


def test_parts_are_hashed_separately():
    whole = _data(TEXTS, LABELS)
    first, second = whole.subset([0, 1]), whole.subset([2, 3])
    moved_first, moved_second = whole.subset([0]), whole.subset([1, 2, 3])
    assert fingerprint(first, second) != fingerprint(moved_first, moved_second)
    assert fingerprint(first, second) == fingerprint(whole.subset([1, 0]), whole.subset([3, 2]))
