"""The packaged model: one folder that serving, monitoring and ``graft predict`` load without training code.

Layout::

    model/
      predictor.json, model.safetensors | weights.safetensors, backbone/...   (the predictor's own files)
      model.json        label map, calibration temperature, backbone card, strategy, metrics, lineage
      reference.json    (optional) reference profile for drift monitoring
      manifest.json     sha256 + size of every file, verified on load
"""

from .model import MODEL_JSON, PackagedModel, export_model, load_model

__all__ = ["MODEL_JSON", "PackagedModel", "export_model", "load_model"]
