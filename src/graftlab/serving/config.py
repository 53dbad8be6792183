"""The typed serving config: which models, input limits, micro-batching, prediction log, rollout policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from ..core.config import Strict, format_validation_error
from ..core.errors import ConfigError

__all__ = ["ADMIN_TOKEN_ENV", "DEFAULT_LOG_DB", "DEFAULT_REQUEST_BYTES", "BatchingConfig", "RolloutPolicy", "ServeConfig", "ServeLimits"]

DEFAULT_LOG_DB = Path(".graft") / "predictions.db"
ADMIN_TOKEN_ENV = "GRAFT_ADMIN_TOKEN"


#: the request body limit when none is given, by what the champion takes: a phone photo is 3-5 MB as a
#: file and a third more in base64, while 64 texts of 5,000 characters fit in 1 MB
DEFAULT_REQUEST_BYTES = {"text": 1_000_000, "image": 30_000_000}


class ServeLimits(Strict):
    """Input limits; a request over a limit gets 413 (bytes) or 422 (characters, batch size, image pixels)."""

    max_chars: Annotated[int, Field(ge=1)] = 5_000
    max_batch: Annotated[int, Field(ge=1)] = 64
    max_request_bytes: Annotated[int | None, Field(ge=64)] = None  # None: DEFAULT_REQUEST_BYTES for the modality
    max_image_pixels: Annotated[int, Field(ge=1)] = 20_000_000

    def request_bytes(self, modality: str) -> int:
        """The request body limit for a champion taking ``modality`` ("text" or "image")."""
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return DEFAULT_REQUEST_BYTES.get(modality, DEFAULT_REQUEST_BYTES["text"])


class BatchingConfig(Strict):
    """Requests that arrive within ``window_ms`` of each other share one model call of at most ``max_items`` texts."""

    window_ms: Annotated[float, Field(ge=0.0, le=1_000.0)] = 5.0
    max_items: Annotated[int, Field(ge=1)] = 32
    model_batch_size: Annotated[int, Field(ge=1)] = 64


class RolloutPolicy(Strict):
    """When the challenger is switched off automatically (champion-only) -- judged over a count window.

    Each observation is one request scored by the challenger. Once ``min_requests`` observations are in
    the last ``window``, the challenger is rolled back as soon as its error rate, its latency p95 or its
    disagreement rate with the champion is above the threshold.
    """

    window: Annotated[int, Field(ge=1)] = 200
    min_requests: Annotated[int, Field(ge=1)] = 20
    max_error_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    max_latency_p95_ms: Annotated[float, Field(gt=0.0)] = 2_000.0
    max_disagreement: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25
    canary_check_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        default=1.0, description="share of canary requests also scored by the champion (in the background) to measure disagreement"
    )

    @model_validator(mode="after")
    def _min_in_window(self) -> RolloutPolicy:
        if self.min_requests > self.window:
            raise ValueError(f"min_requests ({self.min_requests}) must be at most window ({self.window})")
        return self


class ServeConfig(Strict):
    """Everything ``graft serve`` needs. ``model``/``shadow``/``canary`` are model references: a packaged
    model folder, or NAME, NAME@alias or NAME:version in the registry."""

    model: str
    shadow: str | None = None
    canary: str | None = None
    canary_percent: Annotated[float, Field(ge=0.0, le=100.0)] = 10.0
    quantize: bool = False
    quantize_min_agreement: Annotated[float, Field(ge=0.0, le=1.0)] = 0.99
    log_db: Path = DEFAULT_LOG_DB
    log_inputs: bool = Field(default=False, description="store input texts (redacted) in the prediction log")
    tracking_uri: str | None = None
    admin_token_env: str = ADMIN_TOKEN_ENV
    limits: ServeLimits = Field(default_factory=ServeLimits)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy)

    @model_validator(mode="after")
    def _one_challenger(self) -> ServeConfig:
        if self.shadow and self.canary:
            raise ValueError("give either a shadow or a canary challenger, not both")
        return self

    @property
    def challenger(self) -> str | None:
        """The model reference served beside the champion (shadow or canary), if any."""
        return self.shadow or self.canary

    @property
    def mode(self) -> str:
        """``shadow``, ``canary`` or ``none``."""
        return "shadow" if self.shadow else "canary" if self.canary else "none"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "serve config") -> ServeConfig:
        """Validate ``data``; raise :class:`ConfigError` naming each bad key."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, cls, source)) from None
