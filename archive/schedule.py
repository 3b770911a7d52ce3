"""Which clips to archive, and when: pure functions of the camera, the time and the alerts.

- Normal footage: `duration_s` every `every_s` (default 30 s every 15 min), around the clock, so
  night and day are both covered. Each camera's slots are shifted by an offset derived from its
  id, so a site's cameras do not all call KVS at the same instant.
- Alert clips: `pre_roll_s` before the event start to `post_roll_s` after (default 5 s / 10 s), at
  the key `keys.alert_clip_key` gives in advance.
- A range is due once it ended `settle_s` ago (KVS needs a moment to ingest the last fragments).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from archive.keys import (
    DEFAULT_POST_ROLL_S,
    DEFAULT_PRE_ROLL_S,
    ClipKind,
    alert_clip_range,
    clip_key,
)
from contracts.alert import AlertRecord

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScheduleConfig(BaseModel):
    """One camera's archive schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every_s: float = Field(default=900.0, gt=0, le=86400, description="A normal clip starts this often (s).")
    duration_s: float = Field(default=30.0, gt=0, le=3600, description="Length of a normal clip (s).")
    offset_s: float | None = Field(
        default=None, ge=0, description="Shift of the slots within `every_s`; default: derived from the camera id."
    )
    pre_roll_s: float = Field(default=DEFAULT_PRE_ROLL_S, ge=0, le=300, description="Alert clip: seconds before the event.")
    post_roll_s: float = Field(default=DEFAULT_POST_ROLL_S, gt=0, le=300, description="Alert clip: seconds after the event start.")
    settle_s: float = Field(default=30.0, ge=0, le=3600, description="Wait this long after a range ends before archiving it.")
    normal: bool = Field(default=True, description="Archive normal footage (false: alert clips only).")

    @model_validator(mode="after")
    def _fits(self) -> ScheduleConfig:
        if self.duration_s > self.every_s:
            raise ValueError(f"duration_s ({self.duration_s}) must not exceed every_s ({self.every_s})")
        return self


class ClipRequest(BaseModel):
    """One clip to archive: the range asked for and where it goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: str
    kind: ClipKind
    start: AwareDatetime
    end: AwareDatetime
    alert_id: str | None = None
    event_at: AwareDatetime | None = Field(default=None, description="Alert clips: the event start.")
    media_epoch: AwareDatetime | None = Field(
        default=None, description="Local sources: wall-clock time of the source's media time 0."
    )

    @property
    def key(self) -> str:
        return clip_key(self.camera_id, self.start, self.end, self.kind)


def camera_offset_s(camera_id: str, every_s: float) -> float:
    """A stable offset in [0, every_s), whole seconds, from the camera id."""
    digest = int.from_bytes(hashlib.sha256(camera_id.encode()).digest()[:8], "big")
    return float(digest % max(1, int(every_s)))


def normal_requests(camera_id: str, since: datetime, until: datetime, config: ScheduleConfig) -> list[ClipRequest]:
    """The normal-footage slots of a camera that start in [since, until)."""
    if not config.normal or until <= since:
        return []
    offset = config.offset_s if config.offset_s is not None else camera_offset_s(camera_id, config.every_s)
    first = math.ceil(((since - _EPOCH).total_seconds() - offset) / config.every_s)
    requests = []
    k = first
    while True:
        start = _EPOCH + timedelta(seconds=k * config.every_s + offset)
        if start >= until:
            return requests
        requests.append(ClipRequest(camera_id=camera_id, kind="normal", start=start,
                                    end=start + timedelta(seconds=config.duration_s)))
        k += 1


def alert_request(alert: AlertRecord, config: ScheduleConfig) -> ClipRequest:
    """The alert clip of `alert` (its key is `keys.alert_clip_key(camera, started_at, pre, post)`)."""
    start, end = alert_clip_range(alert.started_at, config.pre_roll_s, config.post_roll_s)
    epoch = None
    if alert.media_time_s is not None:
        epoch = alert.started_at - timedelta(seconds=alert.media_time_s)
    return ClipRequest(camera_id=alert.camera_id, kind="alert", start=start, end=end, alert_id=alert.alert_id,
                       event_at=alert.started_at, media_epoch=epoch)


def plan_clips(
    camera_id: str,
    since: datetime,
    until: datetime,
    config: ScheduleConfig | None = None,
    alerts: Iterable[AlertRecord] = (),
) -> list[ClipRequest]:
    """Every clip of `camera_id` starting in [since, until): the normal slots and the clip of each of
    its alerts whose event started in the window; sorted by start."""
    config = config or ScheduleConfig()
    planned = normal_requests(camera_id, since, until, config)
    planned += [alert_request(a, config) for a in alerts if a.camera_id == camera_id and since <= a.started_at < until]
    return sorted(planned, key=lambda r: (r.start, r.kind, r.alert_id or ""))


class ArchiveScheduler:
    """What is due now: normal slots since each camera's watermark, and pending alert clips.

    Thread-safe; holds no I/O. `due(now)` hands each request out once."""

    def __init__(self, default: ScheduleConfig | None = None, per_camera: dict[str, ScheduleConfig] | None = None) -> None:
        self.default = default or ScheduleConfig()
        self.per_camera = dict(per_camera or {})
        self._watermarks: dict[str, datetime] = {}
        self._alerts: list[ClipRequest] = []
        self._lock = threading.Lock()

    def config_for(self, camera_id: str) -> ScheduleConfig:
        return self.per_camera.get(camera_id, self.default)

    def add_camera(self, camera_id: str, since: datetime) -> None:
        """Archive the camera's normal footage from `since` on."""
        with self._lock:
            self._watermarks.setdefault(camera_id, since)

    def add_alert(self, alert: AlertRecord) -> ClipRequest:
        request = alert_request(alert, self.config_for(alert.camera_id))
        with self._lock:
            if request not in self._alerts:
                self._alerts.append(request)
        return request

    def due(self, now: datetime) -> list[ClipRequest]:
        """Requests whose range ended at least `settle_s` before `now`, oldest first."""
        ready: list[ClipRequest] = []
        with self._lock:
            for camera_id, mark in self._watermarks.items():
                config = self.config_for(camera_id)
                horizon = now - timedelta(seconds=config.settle_s + config.duration_s)
                if horizon > mark:
                    ready += normal_requests(camera_id, mark, horizon, config)
                    self._watermarks[camera_id] = horizon
            waiting = []
            for request in self._alerts:
                settle = timedelta(seconds=self.config_for(request.camera_id).settle_s)
                (ready if request.end + settle <= now else waiting).append(request)
            self._alerts = waiting
        return sorted(ready, key=lambda r: (r.start, r.kind, r.alert_id or ""))

    def take_pending_alerts(self) -> list[ClipRequest]:
        """Every alert clip not handed out yet, settled or not (at shutdown, for a complete file)."""
        with self._lock:
            pending, self._alerts = self._alerts, []
        return sorted(pending, key=lambda r: (r.start, r.alert_id or ""))
