"""Alert policy: turns per-frame scores into events, and events into alerts. Pure logic, no I/O.

- An event opens when `min_frames` consecutive analysed frames score at or over the threshold.
- It raises exactly one alert, at opening, unless the previous alert is less than `cooldown_s`
  (media time) before it: then the event is suppressed (counted, no alert), flapping included.
- It closes once frames have scored below the threshold for `clear_after_s` of media time; a new
  event after that is a new alert.
- The alert id is `make_alert_id(camera_id, event_type, started_at)`, with `started_at` the capture
  time of the event's first over-threshold frame: a restart that sees the same event gets the same id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.alert import EARLIEST_ALERT_TIME, MAX_FUTURE_SKEW, AlertRecord, Severity, make_alert_id
from contracts.inference import Region
from worker.config import PolicyConfig

logger = logging.getLogger(__name__)

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


class AlertPolicy:
    def __init__(
        self, camera_id: str, site: str, config: PolicyConfig, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.camera_id = camera_id
        self.site = site
        self.config = config
        self.clock = clock
        self.stats = PolicyStats()
        self._run: _Run | None = None  # over-threshold frames not (yet) an event
        self._event: _Run | None = None  # the open event
        self._last_alert_pts_s: float | None = None

    @property
    def event_open(self) -> bool:
        return self._event is not None

    def snapshot(self) -> dict[str, Any]:
        """What the policy remembers, as JSON-ready data: the candidate run, the open event and the
        last alert's media time. Stored with the checkpoint, so that a restarted worker continues an
        event (and its `alert_id`) instead of seeing a new one, however long the event lasts."""
        return {
            "run": _run_state(self._run),
            "event": _run_state(self._event),
            "last_alert_pts_s": self._last_alert_pts_s,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take up a `snapshot()` (from the checkpoint the worker resumes after)."""
        self._run = _run_from(state.get("run"))
        self._event = _run_from(state.get("event"))
        self._last_alert_pts_s = state.get("last_alert_pts_s")
        if self._event is not None or self._run is not None:
            logger.info(
                "policy restored camera=%s event_open=%s candidate_frames=%s",
                self.camera_id,
                self._event is not None,
                self._run.frames if self._run is not None else 0,
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
    ) -> AlertRecord | None:
        """Feed one analysed frame (in media-time order); the alert it raises, if any."""
        over = score >= threshold
        if self._event is not None:
            self._continue_event(self._event, pts_s, score, over)
            return None
        if not over:
            self._run = None
            return None
        run = self._run or _Run(start_pts_s=pts_s, started_at=captured_at)
        run.frames += 1
        run.peak = max(run.peak, score)
        if run.frames < self.config.min_frames:
            self._run = run
            return None
        self._run, self._event = None, run
        self.stats.events += 1
        if (
            self._last_alert_pts_s is not None
            and pts_s - self._last_alert_pts_s < self.config.cooldown_s - _EPSILON_S
        ):
            run.suppressed = True
            self.stats.suppressed += 1
            logger.info(
                "event suppressed camera=%s media_time_s=%.3f (%.1f s after the last alert, cooldown %.1f s)",
                self.camera_id,
                run.start_pts_s,
                pts_s - self._last_alert_pts_s,
                self.config.cooldown_s,
            )
            return None
        self._last_alert_pts_s = pts_s
        self.stats.alerts += 1
        detected_at = self.clock()
        started_at, captured_at = self._plausible(run.started_at, detected_at), self._plausible(captured_at, detected_at)
        return AlertRecord(
            alert_id=make_alert_id(self.camera_id, self.config.event_type, started_at),
            camera_id=self.camera_id,
            site=self.site,
            event_type=self.config.event_type,
            severity=severity_for(run.peak, threshold),
            score=run.peak,
            threshold=threshold,
            started_at=started_at,
            frame_at=captured_at,
            detected_at=detected_at,
            media_time_s=run.start_pts_s,
            regions=regions,
            model_version=model_version,
        )

    def _plausible(self, at: datetime, now: datetime) -> datetime:
        """A capture time the alert contract accepts: a camera whose clock is unset (1970) or far ahead
        would make the alert invalid and lose it, so it is stamped with the worker's clock instead, and
        said so (its id is then not reproducible after a restart)."""
        if EARLIEST_ALERT_TIME <= at <= now + MAX_FUTURE_SKEW:
            return at
        logger.warning(
            "camera clock out of range camera=%s captured_at=%s: the alert is stamped with the worker's clock %s",
            self.camera_id,
            at.isoformat(),
            now.isoformat(),
        )
        return now

    def _continue_event(self, event: _Run, pts_s: float, score: float, over: bool) -> None:
        if over:
            event.peak = max(event.peak, score)
            event.below_since_s = None
            return
        if event.below_since_s is None:
            event.below_since_s = pts_s
        if pts_s - event.below_since_s >= self.config.clear_after_s - _EPSILON_S:
            self._event = None
            logger.info(
                "event closed camera=%s started media_time_s=%.3f closed media_time_s=%.3f peak=%.3f",
                self.camera_id,
                event.start_pts_s,
                pts_s,
                event.peak,
            )
