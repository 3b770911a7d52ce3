"""Alert policy: turns per-frame scores into events, and events into alerts. Pure logic, no I/O.

Events are tracked per key (event type, zone): an anomalous frame's regions are placed in the
camera scene's zones (`worker.zones`), each zone raising its own event type (`intrusion`,
`loitering`, `scene_anomaly`), and regions outside every zone raise `policy.event_type` (or nothing,
`outside_zones: "ignore"`). Two zones give two events, two alerts. With no scene (or an empty one)
there is one key, `(policy.event_type, None)`, over whenever the frame is: the policy as it was.
Per key:

- An event opens when `min_frames` consecutive analysed frames score at or over the threshold
  (for a zone: over-threshold frames with a region in the zone) and, for a zone with `dwell_s`
  (loitering), once the first of them is `dwell_s` of media time old; a dwell survives gaps shorter
  than `clear_after_s` (a region that stays is not boxed on every frame).
- It raises exactly one alert, at opening, unless the previous alert is less than `cooldown_s`
  (media time) before it: then the event is suppressed (counted, no alert), flapping included.
- It closes once frames have scored below the threshold for `clear_after_s` of media time; a new
  event after that is a new alert.
- The alert id is `make_alert_id(camera_id, event_type, started_at, zone)`, with `started_at` the
  capture time of the event's first over-threshold frame: a restart that sees the same event gets the
  same id. An alert outside every zone has no zone in its id (the ids of version "1").
- Arming (`CameraScene.schedule`), decided on the capture time of the frame that raises the alert:
  armed, the alert is notified; disarmed, it is still raised (counted, its clip archived, listed in
  the console) with `armed: false` and, unless its zone says `when_disarmed: "low"` (then it is
  notified at severity low), `notify: false`, which the Lambda does not send to SNS.

`snapshot()` / `restore()` carry the state through checkpoints: version 2 lists the tracked keys;
`restore` also reads version 1 (`{"run", "event", "last_alert_pts_s"}`, one event), as the key
`(policy.event_type, None)`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.alert import EARLIEST_ALERT_TIME, MAX_FUTURE_SKEW, AlertRecord, Severity, make_alert_id
from contracts.camera_scene import CameraScene, Zone
from contracts.inference import Region
from worker.config import PolicyConfig
from worker.zones import EventKey, Placed, place_regions

logger = logging.getLogger(__name__)

STATE_VERSION = 2
EMPTY_SCENE = CameraScene()

_EPSILON_S = 1e-6  # media times are float sums: 8.2 - 6.2 must count as 2.0 s

# Severity by score / threshold: below each bound, that severity; at or over the last, CRITICAL.
SEVERITY_BOUNDS: tuple[tuple[float, Severity], ...] = (
    (1.5, Severity.LOW),
    (2.5, Severity.MEDIUM),
    (4.0, Severity.HIGH),
)


def severity_for(score: float, threshold: float) -> Severity:
    ratio = score / threshold if threshold > 0 else float("inf")
    for bound, severity in SEVERITY_BOUNDS:
        if ratio < bound:
            return severity
    return Severity.CRITICAL


def utc_now() -> datetime:
    return datetime.now(UTC)


def plausible_time(at: datetime, now: datetime, camera_id: str) -> datetime:
    """A capture time the alert contract accepts: a camera whose clock is unset (1970) or far ahead
    would make the alert invalid and lose it, so it is stamped with the worker's clock instead, and
    said so (its id is then not reproducible after a restart)."""
    if EARLIEST_ALERT_TIME <= at <= now + MAX_FUTURE_SKEW:
        return at
    logger.warning(
        "camera clock out of range camera=%s captured_at=%s: the alert is stamped with the worker's clock %s",
        camera_id,
        at.isoformat(),
        now.isoformat(),
    )
    return now


@dataclass
class _Run:
    """Consecutive over-threshold frames: a candidate event, then the open event."""

    start_pts_s: float
    started_at: datetime
    frames: int = 0
    peak: float = float("-inf")
    below_since_s: float | None = None
    suppressed: bool = False


def _run_state(run: _Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "start_pts_s": run.start_pts_s,
        "started_at": run.started_at.isoformat(),
        "frames": run.frames,
        "peak": run.peak if math.isfinite(run.peak) else None,
        "below_since_s": run.below_since_s,
        "suppressed": run.suppressed,
    }


def _run_from(state: dict[str, Any] | None) -> _Run | None:
    if not state:
        return None
    peak = state.get("peak")
    return _Run(
        start_pts_s=float(state["start_pts_s"]),
        started_at=datetime.fromisoformat(state["started_at"]),
        frames=int(state["frames"]),
        peak=float(peak) if peak is not None else float("-inf"),
        below_since_s=state.get("below_since_s"),
        suppressed=bool(state.get("suppressed", False)),
    )


@dataclass
class PolicyStats:
    events: int = 0
    alerts: int = 0
    suppressed: int = 0
    not_notified: int = 0
    """Alerts raised outside the arming schedule with `notify: false` (counted and archived only)."""


@dataclass
class _Track:
    """One event key's state: its candidate run, its open event, its last alert's media time."""

    run: _Run | None = None
    event: _Run | None = None
    last_alert_pts_s: float | None = None

    def idle(self) -> bool:
        return self.run is None and self.event is None and self.last_alert_pts_s is None


def _track_state(key: EventKey, track: _Track) -> dict[str, Any]:
    return {
        "event_type": key[0],
        "zone": key[1],
        "run": _run_state(track.run),
        "event": _run_state(track.event),
        "last_alert_pts_s": track.last_alert_pts_s,
    }


def _track_from(state: dict[str, Any]) -> _Track:
    return _Track(_run_from(state.get("run")), _run_from(state.get("event")), state.get("last_alert_pts_s"))


class AlertPolicy:
    def __init__(
        self, camera_id: str, site: str, config: PolicyConfig, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.camera_id = camera_id
        self.site = site
        self.config = config
        self.clock = clock
        self.stats = PolicyStats()
        self._tracks: dict[EventKey, _Track] = {}

    @property
    def default_key(self) -> EventKey:
        return (self.config.event_type, None)

    @property
    def event_open(self) -> bool:
        return any(track.event is not None for track in self._tracks.values())

    def snapshot(self) -> dict[str, Any]:
        """What the policy remembers, as JSON-ready data: per event key, the candidate run, the open
        event and the last alert's media time. Stored with the checkpoint, so that a restarted worker
        continues an event (and its `alert_id`) instead of seeing a new one, however long it lasts."""
        return {
            "version": STATE_VERSION,
            "tracks": [_track_state(key, track) for key, track in sorted(self._tracks.items(), key=_order)],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take up a `snapshot()` (from the checkpoint the worker resumes after): version 2, or
        version 1 (no `version`: the one event of a policy without zones)."""
        if "tracks" in state:
            self._tracks = {
                (str(item["event_type"]), item.get("zone")): _track_from(item) for item in state["tracks"]
            }
        else:
            self._tracks = {self.default_key: _track_from(state)}
        self._tracks = {key: track for key, track in self._tracks.items() if not track.idle()}
        if self._tracks:
            logger.info(
                "policy restored camera=%s events_open=%d candidates=%d",
                self.camera_id,
                sum(track.event is not None for track in self._tracks.values()),
                sum(track.run is not None for track in self._tracks.values()),
            )

    def observe(
        self,
        *,
        pts_s: float,
        captured_at: datetime,
        score: float,
        threshold: float,
        regions: list[Region],
        model_version: str,
        scene: CameraScene | None = None,
    ) -> list[AlertRecord]:
        """Feed one analysed frame (in media-time order) and the camera's scene; the alerts it
        raises (one per event key that opens an alerting event; usually none)."""
        scene = scene or EMPTY_SCENE
        over = score >= threshold
        if not over:
            hits: dict[EventKey, Placed] = {}
        elif not scene.zones and not scene.privacy_masks and scene.outside_zones != "ignore":
            hits = {self.default_key: Placed(None, regions)}  # no scene: the whole frame, as before
        else:
            hits = place_regions(scene, regions, self.config.event_type)
        alerts = []
        for key in sorted(set(self._tracks) | set(hits), key=_order):
            track = self._tracks.setdefault(key, _Track())
            hit = hits.get(key)
            zone = hit.zone if hit is not None else _zone_named(scene, key[1])
            peak = score if hit is None or hit.zone is None else max((r.score for r in hit.regions), default=score)
            alert = self._observe_key(
                key, track, zone, pts_s=pts_s, captured_at=captured_at, score=peak, over=hit is not None,
                threshold=threshold, regions=hit.regions if hit is not None else [], model_version=model_version,
                scene=scene,
            )  # fmt: skip
            if alert is not None:
                alerts.append(alert)
            if track.idle():
                del self._tracks[key]
        return alerts

    def _observe_key(
        self,
        key: EventKey,
        track: _Track,
        zone: Zone | None,
        *,
        pts_s: float,
        captured_at: datetime,
        score: float,
        over: bool,
        threshold: float,
        regions: list[Region],
        model_version: str,
        scene: CameraScene,
    ) -> AlertRecord | None:
        if track.event is not None:
            self._continue_event(key, track, pts_s, score, over)
            return None
        dwell_s = zone.dwell_s if zone is not None else 0.0
        if not over:
            if track.run is not None and dwell_s > 0:  # a dwell survives short gaps
                if track.run.below_since_s is None:
                    track.run.below_since_s = pts_s
                if pts_s - track.run.below_since_s < self.config.clear_after_s - _EPSILON_S:
                    return None
            track.run = None
            return None
        run = track.run or _Run(start_pts_s=pts_s, started_at=captured_at)
        run.frames += 1
        run.peak = max(run.peak, score)
        run.below_since_s = None
        if run.frames < self.config.min_frames or pts_s - run.start_pts_s < dwell_s - _EPSILON_S:
            track.run = run
            return None
        track.run, track.event = None, run
        self.stats.events += 1
        if (
            track.last_alert_pts_s is not None
            and pts_s - track.last_alert_pts_s < self.config.cooldown_s - _EPSILON_S
        ):
            run.suppressed = True
            self.stats.suppressed += 1
            logger.info(
                "event suppressed camera=%s event_type=%s zone=%s media_time_s=%.3f "
                "(%.1f s after the last alert, cooldown %.1f s)",
                self.camera_id,
                key[0],
                key[1],
                run.start_pts_s,
                pts_s - track.last_alert_pts_s,
                self.config.cooldown_s,
            )
            return None
        track.last_alert_pts_s = pts_s
        self.stats.alerts += 1
        detected_at = self.clock()
        started_at, captured_at = self._plausible(run.started_at, detected_at), self._plausible(captured_at, detected_at)
        armed = scene.armed_at(captured_at)
        severity = zone.severity if zone is not None and zone.severity is not None else severity_for(run.peak, threshold)
        notify = True
        if not armed:
            if zone is not None and zone.when_disarmed == "low":
                severity = Severity.LOW
            else:
                notify = False
                self.stats.not_notified += 1
        event_type, zone_name = key
        return AlertRecord(
            alert_id=make_alert_id(self.camera_id, event_type, started_at, zone_name),
            camera_id=self.camera_id,
            site=self.site,
            event_type=event_type,
            severity=severity,
            score=run.peak,
            threshold=threshold,
            started_at=started_at,
            frame_at=captured_at,
            detected_at=detected_at,
            media_time_s=run.start_pts_s,
            regions=regions,
            model_version=model_version,
            zone=zone_name,
            armed=armed,
            notify=notify,
        )

    def _plausible(self, at: datetime, now: datetime) -> datetime:
        return plausible_time(at, now, self.camera_id)

    def _continue_event(self, key: EventKey, track: _Track, pts_s: float, score: float, over: bool) -> None:
        event = track.event
        assert event is not None
        if over:
            event.peak = max(event.peak, score)
            event.below_since_s = None
            return
        if event.below_since_s is None:
            event.below_since_s = pts_s
        if pts_s - event.below_since_s >= self.config.clear_after_s - _EPSILON_S:
            track.event = None
            logger.info(
                "event closed camera=%s event_type=%s zone=%s started media_time_s=%.3f closed media_time_s=%.3f "
                "peak=%.3f",
                self.camera_id,
                key[0],
                key[1],
                event.start_pts_s,
                pts_s,
                event.peak,
            )


def _order(item: EventKey | tuple[EventKey, Any]) -> tuple[str, str]:
    key = item if isinstance(item[0], str) else item[0]
    return key[0], key[1] or ""


def _zone_named(scene: CameraScene, name: str | None) -> Zone | None:
    if name is None:
        return None
    return next((zone for zone in scene.zones if zone.name == name), None)
