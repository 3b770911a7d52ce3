"""A camera's scene configuration: zones, privacy masks, an arming schedule and camera-tamper
settings. Written by operators (the console, or Terraform's seed), read by `worker/` every heartbeat.

It lives as one item per camera in the worker's state table (`VIGIL_STATE_TABLE`, key `id`):

    {"id": "camera-scene#<camera_id>", "schema_version": "1", "scene": "<CameraScene JSON>",
     "updated_at": "<ISO Z>", "updated_by": "<operator or 'terraform'>"}

Coordinates are normalised to the frame (0..1, origin top-left), so a scene survives a change of
resolution. A region of the model's answer is *in* a zone when the bottom centre of its box (where a
person or vehicle touches the ground, as Frigate does it) lies inside the zone's polygon.

Event types a zone may raise:
- `intrusion`: an anomalous region in the zone while the camera is armed;
- `loitering`: an anomalous region that stays in the zone for at least the zone's `dwell_s`;
- `scene_anomaly`: an anomalous region in the zone (a zone that only names the place).
Regions outside every zone raise `scene_anomaly`, or nothing when `outside_zones` is "ignore".
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.alert import Severity

SCHEMA_VERSION: Literal["1"] = "1"
SCENE_PREFIX = "camera-scene#"
MAX_POLYGON_POINTS = 64
MAX_ZONES = 32
MAX_MASKS = 32

ZoneEventType = Literal["intrusion", "loitering", "scene_anomaly"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"


def scene_id(camera_id: str) -> str:
    return f"{SCENE_PREFIX}{camera_id}"


def _unit(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"coordinate {value} outside 0..1 (coordinates are fractions of the frame)")
    return value


Point = tuple[Annotated[float, AfterValidator(_unit)], Annotated[float, AfterValidator(_unit)]]


def _polygon(points: list[Point]) -> list[Point]:
    if len(points) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(points)}")
    if len(points) > MAX_POLYGON_POINTS:
        raise ValueError(f"a polygon has at most {MAX_POLYGON_POINTS} points, got {len(points)}")
    if abs(polygon_area(points)) < 1e-6:
        raise ValueError("the polygon has no area (its points are on one line)")
    return points


Polygon = Annotated[list[Point], AfterValidator(_polygon)]


def polygon_area(points: list[Point]) -> float:
    """Signed area (shoelace), in fractions of the frame."""
    return 0.5 * sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True)
    )


def point_in_polygon(x: float, y: float, points: list[Point]) -> bool:
    """Even-odd rule (ray casting to the right)."""
    inside = False
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


class Zone(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Shown on alerts and in SNS's `zone` attribute.")
    polygon: Polygon = Field(description="Points [x, y], fractions of the frame width and height.")
    event_type: ZoneEventType = Field(default="intrusion", description="What an anomaly in the zone raises.")
    severity: Severity | None = Field(
        default=None, description="Severity of the zone's alerts; by default from the score, as elsewhere."
    )
    dwell_s: float = Field(
        default=0.0,
        ge=0.0,
        le=3600.0,
        description="Media seconds an anomalous region must stay in the zone before it alerts "
        "(loitering needs more than 0).",
    )
    when_disarmed: Literal["count", "low"] = Field(
        default="count",
        description="Outside the arming schedule: 'count' archives and counts the event without "
        "notifying; 'low' notifies at severity low.",
    )

    @model_validator(mode="after")
    def _loitering_dwells(self) -> Zone:
        if self.event_type == "loitering" and self.dwell_s <= 0:
            raise ValueError(f"zone {self.name!r}: a loitering zone needs dwell_s > 0")
        return self


class PrivacyMask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Names the mask in the console.")
    polygon: Polygon = Field(
        description="Excluded from the motion gate and from scoring, black in snapshots (clips keep "
        "the original footage as evidence)."
    )


def _hhmm(value: str) -> str:
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"time {value!r} is not HH:MM") from None
    return value


class ArmingWindow(BaseModel):
    """Armed from `start` to `end` (local wall clock) on each of `days`; `end` <= `start` runs past
    midnight into the next day. `end` "24:00" is not accepted: use "00:00"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: Annotated[str, AfterValidator(_hhmm)] = Field(description="HH:MM, local time.")
    end: Annotated[str, AfterValidator(_hhmm)] = Field(description="HH:MM, local time.")

    def covers(self, local: datetime) -> bool:
        start, end, now = time.fromisoformat(self.start), time.fromisoformat(self.end), local.time()
        today = WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        if start < end:
            return today in self.days and start <= now < end
        return (today in self.days and now >= start) or (yesterday in self.days and now < end)


class ArmingException(BaseModel):
    """A whole local date armed or disarmed, whatever the weekly windows say (holidays, events)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: date
    armed: bool


class ArmingSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field(description="IANA time zone of the site, e.g. 'Europe/Berlin'.")
    windows: list[ArmingWindow] = Field(
        default_factory=list, max_length=64, description="Weekly windows during which the camera is armed."
    )
    exceptions: list[ArmingException] = Field(
        default_factory=list, max_length=366, description="Whole local dates armed or disarmed whatever the windows say."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as 'Europe/Berlin')") from None
        return value

    def armed_at(self, when: datetime) -> bool:
        """Whether the camera is armed at `when` (an aware datetime), on the site's wall clock."""
        local = when.astimezone(ZoneInfo(self.timezone))
        for exception in self.exceptions:
            if exception.date == local.date():
                return exception.armed
        return any(window.covers(local) for window in self.windows)


class TamperConfig(BaseModel):
    """Camera tamper: covered or blank, defocused, moved. The silent camera is the KVS reader's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=False,
        description="Check the camera for tamper (opt-in: a camera that is dark at night would otherwise "
        "alert as blank the day this ships).",
    )
    min_duration_s: float = Field(
        default=3.0, ge=0.0, le=600.0, description="Media seconds a tamper condition must last to alert."
    )
    cooldown_s: float = Field(default=300.0, ge=0.0, le=86400.0, description="Between two tamper alerts.")
    blank_texture: float = Field(
        default=4.0, ge=0.0, description="Grey-level standard deviation under which a frame is blank."
    )
    defocus_ratio: float = Field(
        default=0.35, gt=0.0, lt=1.0, description="Sharpness under this fraction of the reference is defocus."
    )
    moved_fraction: float = Field(
        default=0.08,
        gt=0.0,
        lt=1.0,
        description="A view shifted by more than this fraction of the frame has moved.",
    )
    reference_after_s: float = Field(
        default=10.0,
        ge=0.0,
        description="Media seconds of footage the reference frame and sharpness are learnt from.",
    )


class CameraScene(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal["1"] = Field(default=SCHEMA_VERSION, description="Version of the scene's shape.")
    zones: list[Zone] = Field(
        default_factory=list,
        max_length=MAX_ZONES,
        description="Named polygons and the event each raises; a region is in the first zone holding the "
        "bottom centre of its box.",
    )
    privacy_masks: list[PrivacyMask] = Field(
        default_factory=list,
        max_length=MAX_MASKS,
        description="Polygons blacked out before the motion gate and the endpoint, and in snapshots.",
    )
    outside_zones: Literal["scene_anomaly", "ignore"] = Field(
        default="scene_anomaly", description="What an anomaly outside every zone raises."
    )
    schedule: ArmingSchedule | None = Field(default=None, description="None: always armed.")
    tamper: TamperConfig = Field(
        default_factory=TamperConfig, description="Camera tamper: covered or blank, defocused, moved, no signal."
    )

    @field_validator("zones", "privacy_masks")
    @classmethod
    def _unique_names(cls, value: list[Zone] | list[PrivacyMask]) -> list[Zone] | list[PrivacyMask]:
        names = [item.name for item in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"names must be unique, repeated: {', '.join(duplicates)}")
        return value

    def armed_at(self, when: datetime) -> bool:
        return self.schedule is None or self.schedule.armed_at(when)

    def zone_of(self, x: float, y: float) -> Zone | None:
        """The first zone (in list order) that holds the point, or None."""
        return next((zone for zone in self.zones if point_in_polygon(x, y, zone.polygon)), None)


__all__ = [
    "ArmingException",
    "ArmingSchedule",
    "ArmingWindow",
    "CameraScene",
    "PrivacyMask",
    "TamperConfig",
    "Zone",
    "point_in_polygon",
    "polygon_area",
    "scene_id",
]
