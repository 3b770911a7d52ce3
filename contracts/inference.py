"""The inference endpoint's contract: what `POST /invocations` accepts and answers.

Frame models and temporal models
    The artifact's `config.json` may declare `"temporal_window": T`. When it is absent or 1 (a frame
    model) every item of a request is one frame. When T >= 2 (a temporal model) every item is a window
    of T consecutive frames of one camera, oldest first; the last frame of the window is the one
    scored, so a result still describes one frame. Every response says which kind answered
    (`InferenceResponse.temporal_window`), so a client can discover T from any response (a 400 also
    names it).

Request bodies (by `Content-Type`):
- `application/x-npy`: one numpy array saved with `numpy.save` (no pickles), uint8, RGB.
  Frame model: N x H x W x 3, or H x W x 3 for a single frame.
  Temporal model: N x T x H x W x 3, or T x H x W x 3 for a single window.
- `image/jpeg`, `image/png`: one frame (frame models only; a temporal model answers 415).
- `application/json`: an `InferenceRequest`, e.g.
  `{"instances": [{"frames": ["<base64 JPEG or PNG>"]}, {"frames": ["..."]}]}` with one image per
  item for a frame model and T images per item (oldest first) for a temporal model. Every image of a
  request must have the same size. `schema_version` may be given and must be "1".

Every body is at most `MAX_PAYLOAD_BYTES` (SageMaker's real-time limit) and every decoded frame at most
`MAX_FRAME_PIXELS`; a larger body or frame, or more items than the endpoint's batch limit, is a 413.

Cameras: a request may name its camera in SageMaker custom attributes (`camera_id=<id>`); the
response's `threshold` is then that camera's calibrated threshold. A request that batches the items
of several cameras names one camera per item instead, in item order: `camera_ids=<id>|<id>|...`
(`CAMERA_IDS_ATTRIBUTE`, `|`-separated, at most `MAX_CUSTOM_ATTRIBUTES_CHARS` for the whole header,
SageMaker's limit); each `FrameResult` then carries its camera's `threshold` (the field is left out
of results otherwise, so older clients still read the response).

Frame size: the model looks at its own `input_size` (height, width; the artifact's `config.json`), and
resizes whatever it is sent to that. A request may ask for it with the custom attribute
`report_input_size=1` (`INPUT_SIZE_ATTRIBUTE`, next to `camera_id` / `camera_ids`, `,`-separated); the
response's `input_size` then names it, so a client can send frames no larger than the model needs
(left out of responses otherwise: older clients, whose `InferenceResponse` forbids unknown fields,
still read them; a response without it is what an older endpoint answers). A 400 for a window or
layout that does not fit the model names both `temporal_window=T` and `input_size=HxW`.

Response (`Accept: application/json`, or `*/*`, or none): `InferenceResponse`, one `FrameResult` per
item, in request order. Errors are JSON `{"message": ...}` with the HTTP status: 400 undecodable body,
406 unacceptable `Accept`, 413 too large, 415 unsupported content type, 500 anything else.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

SCHEMA_VERSION: Literal["1"] = "1"

CONTENT_TYPE_NPY = "application/x-npy"
CONTENT_TYPE_JPEG = "image/jpeg"
CONTENT_TYPE_PNG = "image/png"
CONTENT_TYPE_JSON = "application/json"
ACCEPTED_CONTENT_TYPES = (CONTENT_TYPE_NPY, CONTENT_TYPE_JPEG, CONTENT_TYPE_PNG, CONTENT_TYPE_JSON)

# SageMaker real-time endpoints refuse payloads over 6 MB; we refuse them first, with a clear 413.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# A small compressed image can decode to gigabytes; frames over this many pixels are a 413.
MAX_FRAME_PIXELS = 4096 * 4096
# Custom attributes naming the cameras of a request (see the module docstring).
CAMERA_ATTRIBUTE = "camera_id"
CAMERA_IDS_ATTRIBUTE = "camera_ids"
CAMERA_IDS_SEPARATOR = "|"
MAX_CUSTOM_ATTRIBUTES_CHARS = 1024  # SageMaker's limit on X-Amzn-SageMaker-Custom-Attributes
CUSTOM_ATTRIBUTES_SEPARATOR = ","
INPUT_SIZE_ATTRIBUTE = "report_input_size"  # `report_input_size=1`: the response names `input_size`


class RequestItem(BaseModel):
    """One item to score: one frame (frame model) or a window of T frames, oldest first (temporal model)."""

    model_config = ConfigDict(extra="forbid")

    frames: list[str] = Field(
        min_length=1, description="Base64-encoded JPEG or PNG images; 1 for a frame model, T for a temporal one."
    )


class InferenceRequest(BaseModel):
    """The `application/json` request body."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = SCHEMA_VERSION
    instances: list[RequestItem] = Field(min_length=1, description="Items to score, answered in this order.")


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
    threshold: float | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Calibrated threshold of this item's camera, when the request named a camera per "
        "item (`camera_ids`); left out of the JSON otherwise.",
    )

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
    temporal_window: int = Field(
        default=1, ge=1, description="Frames per item the model scores (1: single frames; T >= 2: windows)."
    )
    input_size: tuple[PositiveInt, PositiveInt] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="(height, width) the model resizes every frame to, when the request asked for it "
        "(`report_input_size=1`); left out of the JSON otherwise, and absent from older endpoints' answers.",
    )
    results: list[FrameResult]
