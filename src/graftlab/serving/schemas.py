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
from .inputs import parse_image

__all__ = ["AdminResponse", "BatchPrediction", "ErrorResponse", "Explanation", "FeedbackResponse", "Health", "ModelName",
           "Prediction", "RequestModels", "Status", "request_models"]


def _valid_unicode(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (it holds an unpaired surrogate escape such as \\ud800)") from None
    return text


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Predicted(BaseModel):
    """The prediction as every surface gives it (graftlab.core.prediction): graft predict, /v1/predict, explain."""

    label: str = Field(description="the most probable label")
    confidence: float = Field(description="the calibrated probability of that label")
    probabilities: dict[str, float] = Field(description="calibrated probability of every label")


class Prediction(_Predicted):
    """The answer for one input."""

    request_id: str = Field(description="quote it in POST /v1/feedback")
    model_version: str
    route: str = Field(description="champion or canary: which model answered")


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


class Explanation(_Predicted):
    """Why the model said what it said about one input (graftlab.explain.explain; more keys by method and modality)."""

    model_config = ConfigDict(extra="allow")

    target: int = Field(description="the index of the label explained")
    target_label: str = Field(description="the label explained: the predicted one unless the request named a target")
    method: str = Field(description="ig or occlusion: the method used")
    note: str | None = Field(default=None, description="why the method differs from the one asked, if it does")
    seconds: float
    text: str | None = Field(default=None, description="text models: the input")
    tokens: list[str] | None = Field(default=None, description="text models: the tokens, with one attribution each")
    attributions: list[float] | None = None
    words: list[str] | None = Field(default=None, description="text models: whole words, with one attribution each")
    word_attributions: list[float] | None = None
    grid: list[list[float]] | None = Field(default=None, description="image models: rows x cols patch attributions, "
                                                                     "row 0 at the top")


class ErrorItem(BaseModel):
    loc: list[str] = Field(description="where in the body: a key, then positions and keys inside it")
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx answer: one readable paragraph, and for a body that does not validate one entry per problem."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(description="what is wrong and what to send instead")
    errors: list[ErrorItem] | None = None


class FeedbackResponse(BaseModel):
    request_id: str
    label: str
    recorded: bool = True


class ModelName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = Field(description="what /v1/predict answers as model_version")


class Health(BaseModel):
    """GET /health, unauthenticated: up or not, and which models answer; nothing about the server's files."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="ok once the models are loaded and the log is open, starting before")
    healthy: bool
    champion: ModelName | None
    challenger: ModelName | None = Field(description="the shadow or canary model, while one is loaded")


class Status(BaseModel):
    """GET /admin/status: where each model came from, the rollout state and its events, the prediction log."""

    status: str
    champion: dict[str, Any] | None = Field(description="ref, path, name, version, registry, modality, labels, "
                                                        "quantization")
    challenger: dict[str, Any] | None
    mode: str = Field(description="none, shadow or canary")
    canary_percent: float | None
    challenger_active: bool
    rollout: dict[str, Any] = Field(description="the rollback policy and its current window")
    events: list[dict[str, Any]]
    log_db: str = Field(description="the prediction log's path")


class AdminResponse(BaseModel):
    event: dict[str, Any]
    health: Status = Field(description="the service's state after the action, as GET /admin/status gives it")


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

    Image = Annotated[str, AfterValidator(parse_image)]  # checked here; decoded off the event loop by the endpoint
    Images = Annotated[list[Image], Field(min_length=1, max_length=limits.max_batch)]
    image_help = ("the base64 text of an image file (PNG, JPEG, BMP, GIF, TIFF, WebP), optionally as a data URL "
                  f"'data:image/png;base64,...'; at most {limits.max_image_pixels} pixels")

    class PredictRequest(_Body):
        """One input (``text``, or ``image`` for an image model) or a batch (``texts`` or ``images``)."""

        text: Text | None = Field(default=None, description=f"one input of at most {limits.max_chars} characters")
        texts: Texts | None = Field(default=None, description=f"1 to {limits.max_batch} inputs of at most "
                                                              f"{limits.max_chars} characters each")
        image: Image | None = Field(default=None, description=f"one image (image models): {image_help}")
        images: Images | None = Field(default=None, description=f"1 to {limits.max_batch} images (image models), each "
                                                                f"{image_help}")

        @model_validator(mode="after")
        def _exactly_one(self) -> "PredictRequest":
            if sum(v is not None for v in (self.text, self.texts, self.image, self.images)) != 1:
                raise ValueError("give exactly one of 'text' or 'image' (one input) or 'texts' or 'images' (a batch)")
            return self

        @property
        def input_field(self) -> str:
            """The field that holds the inputs (named in error messages)."""
            return next(n for n in ("text", "texts", "image", "images") if getattr(self, n) is not None)

        @property
        def inputs(self) -> list:
            """The inputs: texts, or images as :class:`ImagePayload` (not yet decoded)."""
            one = self.text if self.text is not None else self.image
            return [one] if one is not None else list(self.texts if self.texts is not None else self.images)

        @property
        def single(self) -> bool:
            return self.text is not None or self.image is not None

    class FeedbackRequest(_Body):
        """The true label of a request answered earlier."""

        request_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
        label: Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_valid_unicode)]

    class ExplainRequest(_Body):
        """One input to explain (same limits as predict): ``text``, or ``image`` for an image model."""

        text: Text | None = None
        image: Image | None = Field(default=None, description=f"one image (image models): {image_help}")
        grid: Annotated[int, Field(ge=2, le=32)] = Field(
            default=8, description="image models: the image is covered by grid x grid patches, one at a time")
        method: Annotated[str, StringConstraints(min_length=1, max_length=50)] = Field(
            default="occlusion", description="occlusion (any model: one word or one image patch at a time) or ig (integrated "
                                            "gradients; neural models)")
        target: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
            default=None, description="the label to explain; default the predicted one")

        @model_validator(mode="after")
        def _exactly_one(self) -> "ExplainRequest":
            if (self.text is None) == (self.image is None):
                raise ValueError("give exactly one of 'text' or 'image'")
            return self

    return RequestModels(PredictRequest, FeedbackRequest, ExplainRequest)
