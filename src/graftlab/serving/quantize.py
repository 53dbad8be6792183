"""int8 dynamic quantization of a packaged neural model, accepted only when it agrees with fp32.

The ``nn.Linear`` layers of the predictor's encoder (of its whole torch model when it has no
``encoder``) are quantized with ``torch.ao.quantization.quantize_dynamic`` (weights int8 with one scale
per output channel, activations quantized on the fly); the classification head stays fp32. The
quantized copy is compared with the fp32 model on the reference texts stored in the package
(``reference.json`` ``texts``, or ``sample_texts``); it is used only when the share of identical
predicted labels is at least ``min_agreement``. Otherwise, or when there is nothing to check against,
the fp32 model is served and the reason is logged.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["QuantizationReport", "quantize_model", "reference_texts"]

log = logging.getLogger("graftlab.serving")


@dataclass
class QuantizationReport:
    """What happened at load: whether int8 is served, the measured agreement and why."""

    requested: bool
    applied: bool = False
    agreement: float | None = None
    n_checked: int = 0
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "applied": self.applied, "agreement": self.agreement,
                "n_checked": self.n_checked, "reason": self.reason, **self.extra}


def reference_texts(model: Any, limit: int = 512) -> list[str]:
    """The sample of texts stored with the model's reference profile (empty when there is none)."""
    ref = model.reference() or {}
    texts = ref.get("texts") or ref.get("sample_texts") or []
    return [str(t) for t in texts][:limit]


class _QuantizedView:
    """A PackagedModel look-alike whose predictor runs the int8 torch model."""

    def __init__(self, base: Any, predictor: Any) -> None:
        self._base = base
        self.predictor = predictor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def predict_proba(self, inputs: Any, batch_size: int = 64, calibrated: bool = True) -> np.ndarray:
        t = self._base.temperature if calibrated else 1.0
        return self.predictor.predict_proba(list(inputs), batch_size, t)


def _int8_predictor(predictor: Any) -> Any:
    import torch
    from torch import nn

    def int8(module: nn.Module) -> nn.Module:  # returns a quantized copy; ``module`` is left as it was
        with warnings.catch_warnings():  # quantize_dynamic is deprecated in favour of torchao, not installed here
            warnings.simplefilter("ignore")
            qconfig = torch.ao.quantization.per_channel_dynamic_qconfig  # closer to fp32 than one scale per tensor
            return torch.ao.quantization.quantize_dynamic(module, {nn.Linear: qconfig}, dtype=torch.qint8)

    model = predictor.model
    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, nn.Module):
        # only the encoder: it holds the compute; the head is tiny and int8 rounding of it costs agreement for nothing
        qmodel = copy.copy(model)
        qmodel._modules = dict(model._modules)  # a shallow copy would share (and so modify) the original's children
        qmodel.encoder = int8(encoder)
    else:
        qmodel = int8(model)
    quantized = copy.copy(predictor)  # shares the tokenizer/backbone; only the torch model is replaced
    quantized.model = qmodel.eval()
    return quantized


def quantize_model(model: Any, min_agreement: float = 0.99, texts: list[str] | None = None) -> tuple[Any, QuantizationReport]:
    """Return (model to serve, report). The int8 model is returned only when it passed the agreement check.

    Args:
        model: a PackagedModel.
        min_agreement: the least share of inputs on which int8 and fp32 must predict the same label.
        texts: inputs to check on; by default the reference texts stored in the package.
    """
    import torch

    report = QuantizationReport(requested=True)
    if not isinstance(getattr(model.predictor, "model", None), torch.nn.Module):
        report.reason = f"the {getattr(model.predictor, 'kind', '?')} predictor has no torch model to quantize; serving it as is"
        log.warning("quantization skipped: %s", report.reason)
        return model, report
    if getattr(model, "modality", "text") != "text" and texts is None:
        report.reason = ("dynamic int8 quantization covers the linear layers of text encoders; an image model's "
                         "convolutions are not quantized this way, so it is served fp32")
        log.warning("quantization skipped: %s", report.reason)
        return model, report
    texts = reference_texts(model) if texts is None else texts
    if not texts:
        report.reason = ("reference.json holds no 'texts' to check int8 agreement against; serving fp32 "
                         "(re-export the model with reference texts to allow quantization)")
        log.warning("quantization refused: %s", report.reason)
        return model, report
    candidate = _QuantizedView(model, _int8_predictor(model.predictor))
    fp32 = model.predict_proba(texts).argmax(1)
    int8 = candidate.predict_proba(texts).argmax(1)
    report.agreement = float(np.mean(fp32 == int8))
    report.n_checked = len(texts)
    if report.agreement < min_agreement:
        report.reason = (f"int8 agrees with fp32 on {report.agreement:.2%} of {len(texts)} reference texts, "
                         f"below the required {min_agreement:.2%}; serving fp32")
        log.warning("quantization refused: %s", report.reason)
        return model, report
    report.applied = True
    report.reason = f"int8 agrees with fp32 on {report.agreement:.2%} of {len(texts)} reference texts"
    log.info("quantization applied: %s", report.reason)
    return candidate, report
