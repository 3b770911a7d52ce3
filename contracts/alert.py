"""The alert record: produced by `worker/`, put on the Kinesis Data Stream `alerts`, consumed by
`alert_lambda/`. JSON, one record per alert, `schema_version` "1"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

from contracts.inference import Region

SCHEMA_VERSION: Literal["1"] = "1"

# Fixed namespace: alert ids are uuid5(namespace, camera|event_type|started_at), the same on every
# retry and every restart that sees the same event.
_ALERT_NAMESPACE = uuid.UUID("5b0f2e3c-6d0a-4c55-9a8e-2f0b9b6a7c11")


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class S3Object(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    key: str


def utc_iso(value: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a `Z`, e.g. `2026-11-25T14:45:07.123Z`."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_alert_id(camera_id: str, event_type: str, started_at: datetime) -> str:
    """Deterministic id: the same camera, event type and event start always give the same id."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{camera_id}|{event_type}|{utc_iso(started_at)}"))


class AlertRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = SCHEMA_VERSION
    alert_id: str = Field(description="make_alert_id(camera_id, event_type, started_at).")
    camera_id: str = Field(min_length=1)
    site: str = Field(min_length=1)
    event_type: str = Field(min_length=1, description="What happened, e.g. 'scene_anomaly'.")
    severity: Severity
    score: float = Field(description="Peak frame score of the event so far.")
    threshold: float = Field(description="Threshold the score was compared with.")
    started_at: AwareDatetime = Field(description="Capture time of the event's first frame (UTC).")
    frame_at: AwareDatetime = Field(description="Capture time of the frame that raised the alert (UTC).")
    detected_at: AwareDatetime = Field(description="When the worker decided to alert (UTC).")
    media_time_s: float | None = Field(
        default=None, description="Position of the event start in the source's media timeline, seconds."
    )
    regions: list[Region] = Field(default_factory=list)
    snapshot: S3Object | None = Field(default=None, description="JPEG of the alerting frame in S3.")
    clip: S3Object | None = Field(default=None, description="Archived MP4 clip around the event, once cut.")
    model_version: str

    @field_serializer("started_at", "frame_at", "detected_at")
    def _iso(self, value: datetime) -> str:
        return utc_iso(value)
