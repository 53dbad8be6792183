"""The in-memory labeled dataset every layer above ``data`` works with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["LabeledData"]


@dataclass(frozen=True)
class LabeledData:
    """Inputs with integer labels, their names, stable row ids and aligned metadata.

    Attributes:
        inputs: texts (or image paths / arrays for image backbones), one per row.
        labels: int64 class indices into ``label_names``, shape (n,).
        label_names: the label map; index ``i`` is class ``i``. Sorted, shared by every split.
        ids: stable row ids (the row's position in the loaded source), shape (n,).
        meta: slice / group / other columns, aligned with ``inputs`` (index 0..n-1).
    """

    inputs: Sequence
    labels: np.ndarray
    label_names: list[str]
    ids: np.ndarray
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        n = len(self.inputs)
        if len(self.labels) != n or len(self.ids) != n or (len(self.meta.columns) and len(self.meta) != n):
            raise ValueError("inputs, labels, ids and meta must have the same length")

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def modality(self) -> str:
        """``image`` when the inputs are arrays (decoded images), ``text`` otherwise."""
        return "image" if len(self.inputs) and isinstance(self.inputs[0], np.ndarray) else "text"

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def subset(self, index: Sequence[int] | np.ndarray) -> LabeledData:
        """Rows at positions ``index`` (not ids), in that order."""
        index = np.asarray(index, dtype=np.int64)
        inputs = [self.inputs[i] for i in index] if not isinstance(self.inputs, np.ndarray) else self.inputs[index]
        meta = self.meta.iloc[index].reset_index(drop=True) if len(self.meta.columns) else pd.DataFrame()
        return LabeledData(inputs, self.labels[index], list(self.label_names), self.ids[index], meta)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.n_classes)

    def relabel(self, mapping: Mapping[str, str | None]) -> LabeledData:
        """Classes renamed by ``mapping`` (label name -> new name, or None to drop its rows); the others kept.

        The new label map is sorted, like a loaded one; classes mapped to the same name become one.
        """
        if not mapping:
            return self
        new = [mapping.get(n, n) for n in self.label_names]
        names = sorted({n for n in new if n is not None})
        index = {n: i for i, n in enumerate(names)}
        target = np.array([index[n] if n is not None else -1 for n in new], dtype=np.int64)
        keep = np.flatnonzero(target[self.labels] >= 0) if len(self.labels) else np.array([], dtype=np.int64)
        d = self.subset(keep)
        return LabeledData(d.inputs, target[d.labels], names, d.ids, d.meta)
