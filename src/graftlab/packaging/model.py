"""Export and load the packaged model folder (safetensors + JSON + sha256 manifest; never pickle)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import load_json, save_json, verify_manifest, write_manifest
from ..core.errors import ArtifactError
from ..strategies.base import Predictor, load_predictor, save_predictor

__all__ = ["MODEL_CARD_JSON", "MODEL_JSON", "PackagedModel", "export_model", "load_model"]

MODEL_JSON = "model.json"
MODEL_CARD_JSON = "model_card.json"  # written by graftlab.tracking.card; covered by the manifest
FORMAT = "graftlab-model/1"


class PackagedModel:
    """A loaded model: calibrated probabilities and labels for raw inputs."""

    def __init__(self, predictor: Predictor, meta: dict[str, Any], folder: Path) -> None:
        self.predictor = predictor
        self.meta = meta
        self.folder = folder
        self.label_names: list[str] = list(meta["label_names"])
        self.predictor.label_names = self.label_names
        self.temperature: float = float(meta.get("temperature", 1.0))

    def predict_logits(self, inputs: Sequence, batch_size: int = 64) -> np.ndarray:
        """(n, k) raw scores, before the temperature and the softmax."""
        return self.predictor.predict_logits(list(inputs), batch_size)

    def predict_proba(self, inputs: Sequence, batch_size: int = 64, calibrated: bool = True) -> np.ndarray:
        """(n, k) probabilities; temperature-scaled when a temperature was fitted on validation."""
        return self.predictor.predict_proba(list(inputs), batch_size, self.temperature if calibrated else 1.0)

    def predict(self, inputs: Sequence, batch_size: int = 64) -> list[str]:
        """The most probable label of each input."""
        proba = self.predict_proba(inputs, batch_size)
        return [self.label_names[i] for i in proba.argmax(1)]

    @property
    def modality(self) -> str:
        """``"text"`` or ``"image"``: what the model takes (recorded by the study; older packages: the backbone's
        card or the predictor's own; a class prior alone counts as text)."""
        backbone = self.meta.get("backbone")
        for found in (self.meta.get("modality"), backbone.get("modality") if isinstance(backbone, dict) else None,
                      self.predictor.modality):
            if found in ("text", "image"):
                return str(found)
        return "text"

    @property
    def name(self) -> str:
        """The name the model is registered under (default: its folder's)."""
        return str(self.meta.get("name", self.folder.name))

    def reference(self) -> dict[str, Any] | None:
        """The reference profile for drift monitoring (``reference.json``), if present."""
        path = self.folder / "reference.json"
        return load_json(path) if path.is_file() else None

    def card(self) -> dict[str, Any] | None:
        """The model card (``model_card.json``, added when the study was logged), if present."""
        path = self.folder / MODEL_CARD_JSON
        return load_json(path) if path.is_file() else None


def export_model(predictor: Predictor, folder: str | Path, meta: dict[str, Any], reference: dict[str, Any] | None = None) -> Path:
    """Write ``predictor`` and its metadata to ``folder`` (replaced if present) with a manifest."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    save_predictor(predictor, folder)
    save_json({"format": FORMAT, **meta, "label_names": list(predictor.label_names)}, folder / MODEL_JSON)
    if reference is not None:
        save_json(reference, folder / "reference.json")
    write_manifest(folder)
    return folder


def load_model(folder: str | Path) -> PackagedModel:
    """Verify every file against the manifest, then load. A tampered or truncated file is refused."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"Model folder {folder} does not exist. Pass the 'model' folder of a run (runs/<study>/<run>/model).")
    if not (folder / MODEL_JSON).is_file() and (folder / "model" / MODEL_JSON).is_file():
        folder = folder / "model"  # a run folder was given
    verify_manifest(folder)
    meta = load_json(folder / MODEL_JSON)
    if meta.get("format") != FORMAT:
        raise ArtifactError(f"{folder / MODEL_JSON} has format {meta.get('format')!r}; this graftlab reads {FORMAT!r}.")
    return PackagedModel(load_predictor(folder), meta, folder)
