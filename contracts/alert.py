"""The alert record: produced by `worker/`, put on the Kinesis Data Stream `alerts`, consumed by
`alert_lambda/`. JSON, one record per alert, `schema_version` "2".

Version "2" (issue 17: zones, arming schedules, camera tamper) adds `zone`, `tamper`, `armed` and
`notify`. Readers take both versions: a version "1" record reads with the defaults (no zone, no
tamper, armed, notified) and serialises back as version "1", without the new fields, so a record
stored by an older worker reads and writes the same. A version "1" record that sets one of the new
fields is refused (it cannot be written back as what it says it is).

`notify` false: the event happened outside the camera's arming schedule (`contracts.camera_scene`)
and its zone says to count it only. The record still travels on the stream (the console lists it and
the alert clip is archived); the Lambda records it and publishes nothing to SNS.

The contract refuses what cannot be an alert, on both sides: a score, threshold, region score or media
time that is NaN or infinite; an empty or overlong id; a time before `EARLIEST_ALERT_TIME` or more than
`MAX_FUTURE_SKEW` ahead of the clock reading it (a camera with an unset clock, a year 1 or 9999, an
offset that overflows when converted to UTC); strings, regions and S3 keys beyond bounds that keep
every SNS message built from an alert (four copies of its JSON, an email, an SMS) far inside SNS's
256 KiB limit. Every record valid before these bounds existed and inside them still reads the same.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from contracts.inference import Region

SCHEMA_VERSION: Literal["2"] = "2"
SCHEMA_VERSIONS = ("1", "2")
V2_FIELDS = ("zone", "tamper", "armed", "notify")
"""Fields version "2" added; a version "1" record is written without them."""
TAMPER_EVENT_TYPE = "camera_tamper"
TamperKind = Literal["blank", "defocus", "moved", "no_signal"]

# Fixed namespace: alert ids are uuid5(namespace, camera|event_type|started_at), the same on every
# retry and every restart that sees the same event.
_ALERT_NAMESPACE = uuid.UUID("5b0f2e3c-6d0a-4c55-9a8e-2f0b9b6a7c11")

# Bounds (see the module docstring). With every field at its bound an alert's JSON is about 24 KB,
# its SNS message (4 copies, JSON-escaped, plus email and SMS) under 128 KiB.
EARLIEST_ALERT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(days=1)
MAX_ID_CHARS = 128
MAX_NAME_CHARS = 256
MAX_REGIONS = 100
MAX_S3_KEY_CHARS = 1024
ALERT_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class S3Object(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=MAX_S3_KEY_CHARS)


def utc_iso(value: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a `Z`, e.g. `2026-11-25T14:45:07.123Z`."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_alert_id(camera_id: str, event_type: str, started_at: datetime, subject: str | None = None) -> str:
    """Deterministic id: the same camera, event type, event start (and subject) always give the same id.

    `subject` tells apart events of one type that start together: the zone of a zone alert, the
    tamper kind of a `camera_tamper` alert. Without one (an alert outside every zone) the id is the
    one version "1" gave, so ids of existing alerts do not change."""
    if subject is None:
        return str(uuid.uuid5(_ALERT_NAMESPACE, f"{camera_id}|{event_type}|{utc_iso(started_at)}"))
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{camera_id}|{event_type}|{subject}|{utc_iso(started_at)}"))


class AlertRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1", "2"] = SCHEMA_VERSION
    alert_id: str = Field(
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=ALERT_ID_PATTERN,
        description="make_alert_id(camera_id, event_type, started_at, subject) (subject: zone or tamper kind).",
    )
    camera_id: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    site: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    event_type: str = Field(
        min_length=1, max_length=MAX_ID_CHARS, description="What happened, e.g. 'scene_anomaly'."
    )
    severity: Severity
    score: float = Field(
        allow_inf_nan=False,
        description="Peak frame score of the event so far (a zone's event: its regions' peak; camera_tamper: "
        "the measure that tripped, e.g. the grey-level deviation of a blank view).",
    )
    threshold: float = Field(
        allow_inf_nan=False, description="Threshold the score was compared with (camera_tamper: the limit)."
    )
    started_at: AwareDatetime = Field(description="Capture time of the event's first frame (UTC).")
    frame_at: AwareDatetime = Field(description="Capture time of the frame that raised the alert (UTC).")
    detected_at: AwareDatetime = Field(description="When the worker decided to alert (UTC).")
    media_time_s: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Position of the event start in the source's media timeline, seconds.",
    )
    regions: list[Region] = Field(default_factory=list, max_length=MAX_REGIONS)
    snapshot: S3Object | None = Field(default=None, description="JPEG of the alerting frame in S3.")
    clip: S3Object | None = Field(default=None, description="Archived MP4 clip around the event, once cut.")
    model_version: str = Field(max_length=MAX_NAME_CHARS)
    zone: str | None = Field(
        default=None, min_length=1, max_length=64, description="The camera zone the event is in (version 2)."
    )
    tamper: TamperKind | None = Field(default=None, description="What a camera_tamper alert found (version 2).")
    armed: bool = Field(default=True, description="Whether the camera was armed at frame_at (version 2).")
    notify: bool = Field(
        default=True,
        description="False: counted and archived, not sent to SNS (outside the arming schedule; version 2).",
    )

    @model_validator(mode="after")
    def _version_fields(self) -> AlertRecord:
        if self.schema_version == "1":
            set_v2 = [name for name in V2_FIELDS if getattr(self, name) != type(self).model_fields[name].default]
            if set_v2:
                raise ValueError(f"schema_version 1 has no {', '.join(set_v2)} (schema_version 2 does)")
        if self.tamper is not None and self.event_type != TAMPER_EVENT_TYPE:
            raise ValueError(f"tamper is set only on {TAMPER_EVENT_TYPE} alerts")
        return self

    @model_serializer(mode="wrap")
    def _as_version(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict:
        data = handler(self)
        if self.schema_version == "1":  # written back as it was read
            for name in V2_FIELDS:
                data.pop(name, None)
        return data

    @field_validator("started_at", "frame_at", "detected_at")
    @classmethod
    def _sane_time(cls, value: datetime) -> datetime:
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("time out of range once converted to UTC") from None
        latest = datetime.now(UTC) + MAX_FUTURE_SKEW
        if not EARLIEST_ALERT_TIME <= utc <= latest:
            raise ValueError(
                f"time {utc.isoformat()} outside [{EARLIEST_ALERT_TIME.isoformat()}, now + {MAX_FUTURE_SKEW}]"
            )
        return value

    @field_validator("regions")
    @classmethod
    def _finite_region_scores(cls, value: list[Region]) -> list[Region]:
        if any(not math.isfinite(region.score) for region in value):
            raise ValueError("a region score is NaN or infinite")
        return value

    @field_serializer("started_at", "frame_at", "detected_at")
    def _iso(self, value: datetime) -> str:
        return utc_iso(value)
