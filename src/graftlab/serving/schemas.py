"""Request and response bodies. Request models are built per app so the OpenAPI schema shows its limits."""

# no ``from __future__ import annotations``: the request models are built inside a function and pydantic
# must see the local, limit-specific types rather than their names.

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from .config import ServeLimits

__all__ = ["AdminResponse", "BatchPrediction", "FeedbackResponse", "Prediction", "RequestModels", "request_models"]


def _valid_unicode(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (it holds an unpaired surrogate escape such as \\ud800)") from None
    return text


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Prediction(BaseModel):
    """The answer for one input."""

    request_id: str = Field(description="quote it in POST /v1/feedback")
    label: str
    probabilities: dict[str, float] = Field(description="calibrated probability of every label")
    model_version: str
    route: str = Field(description="champion or canary: which model answered")


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


class FeedbackResponse(BaseModel):
    request_id: str
    label: str
    recorded: bool = True


class AdminResponse(BaseModel):
    event: dict[str, Any]
    health: dict[str, Any]


class PromoteRequest(_Body):
    force: bool = Field(default=False, description="promote even when the registry says the version's gates failed")
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


class RollbackRequest(_Body):
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


@dataclass(frozen=True)
class RequestModels:
    predict: type[BaseModel]
    feedback: type[BaseModel]
    explain: type[BaseModel]
    promote: type[BaseModel] = PromoteRequest
    rollback: type[BaseModel] = RollbackRequest


def request_models(limits: ServeLimits) -> RequestModels:
    """The request bodies of an app whose inputs are bounded by ``limits``."""
    Text = Annotated[str, StringConstraints(max_length=limits.max_chars), AfterValidator(_valid_unicode)]
    Texts = Annotated[list[Text], Field(min_length=1, max_length=limits.max_batch)]

    class PredictRequest(_Body):
        """Either one input (``text``) or a batch (``texts``)."""

        text: Text | None = Field(default=None, description=f"one input of at most {limits.max_chars} characters")
        texts: Texts | None = Field(default=None, description=f"1 to {limits.max_batch} inputs of at most "
                                                              f"{limits.max_chars} characters each")

        @model_validator(mode="after")
        def _exactly_one(self) -> "PredictRequest":
            if (self.text is None) == (self.texts is None):
                raise ValueError("give exactly one of 'text' (one input) or 'texts' (a batch)")
            return self

    class FeedbackRequest(_Body):
        """The true label of a request answered earlier."""

        request_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
        label: Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_valid_unicode)]

    class ExplainRequest(_Body):
        """One input to explain (same limits as predict)."""

        text: Text
        method: Annotated[str, StringConstraints(min_length=1, max_length=50)] = Field(
            default="occlusion", description="occlusion (any text model) or ig (integrated gradients)")
        target: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
            default=None, description="the label to explain; default the predicted one")

    return RequestModels(PredictRequest, FeedbackRequest, ExplainRequest)
