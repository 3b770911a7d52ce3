"""The inference endpoint's contract: what `POST /invocations` accepts and answers.

Request bodies (by `Content-Type`):
- `application/x-npy`: one numpy array saved with `numpy.save`, uint8, shape N x H x W x 3 (RGB) or
  H x W x 3 for a single frame.
- `image/jpeg` (and `image/png`): one frame.

Response (`application/json`): `InferenceResponse`, one `FrameResult` per frame, in request order.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION: Literal["1"] = "1"

CONTENT_TYPE_NPY = "application/x-npy"
CONTENT_TYPE_JPEG = "image/jpeg"
CONTENT_TYPE_PNG = "image/png"
CONTENT_TYPE_JSON = "application/json"
ACCEPTED_CONTENT_TYPES = (CONTENT_TYPE_NPY, CONTENT_TYPE_JPEG, CONTENT_TYPE_PNG)

# SageMaker real-time endpoints refuse payloads over 6 MB; we refuse them first, with a clear 413.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


class Region(BaseModel):
    """An axis-aligned box in normalised image coordinates (0..1, origin top-left)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float = Field(ge=0.0, le=1.0, description="Left edge, fraction of the image width.")
    y: float = Field(ge=0.0, le=1.0, description="Top edge, fraction of the image height.")
    w: float = Field(ge=0.0, le=1.0, description="Width, fraction of the image width.")
    h: float = Field(ge=0.0, le=1.0, description="Height, fraction of the image height.")
    score: float = Field(description="How unusual this region is (same scale as the frame score).")


class FrameResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: float = Field(description="Anomaly score of the frame; higher is more unusual.")
    regions: list[Region] = Field(default_factory=list, description="Where the frame is unusual.")

    @field_validator("score")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"score must be finite, got {value!r}")
        return value


class InferenceResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = SCHEMA_VERSION
    model_version: str = Field(description="Version of the model artifact that produced the scores.")
    threshold: float | None = Field(
        default=None, description="Calibrated alert threshold stored in the model artifact, if any."
    )
    results: list[FrameResult]
