"""Camera tamper: a covered or blank view, a defocused lens, a camera turned away, no signal.

Run by the reader on every sampled frame (gated or not: a covered camera is still, and the gate
stops sending still frames), on a small greyscale image (`TAMPER_WIDTH` wide, privacy masks black
and left out of every statistic). Cheap: a mean and deviation, a Laplacian, and once a reference is
learnt a phase correlation and a correlation at 32 px, about 0.2 ms per frame.

- blank: grey-level standard deviation under `blank_texture` (a lens cap, a sprayed lens, a black
  or grey frame from a broken encoder). Checked first: a blank frame is neither moved nor defocused.
- moved: against the reference view, `cv2.phaseCorrelate` finds a shift over `moved_fraction` of the
  frame, or the two views hardly correlate (under `MIN_VIEW_CORRELATION` at 32 px: the camera looks
  somewhere else). Both views are compared after the same blur (`PHASE_BLUR_SIGMA`), so a defocused
  view does not read as moved.
- defocus: the variance of the Laplacian (sharpness) under `defocus_ratio` x the reference's.
- no signal: the KVS reader's `silent` state (no media for its `silent_after_s`), checked by the
  analyser between batches, on the worker's clock; file and RTSP sources have no such state.

The reference (mean view and median sharpness) is learnt from the non-blank frames of the first
`reference_after_s` of media time, and learnt again when the frame size or the masks change; it is
not checkpointed, so a restarted worker learns it again (a camera already turned away is its new
normal). A condition alerts once it has lasted `min_duration_s` (media time; wall time for no
signal), once per episode (it must clear before it can alert again), and not within `cooldown_s` of
the last alert of the same kind. Tamper alerts (`camera_tamper`, `tamper` naming the kind) have
nothing to do with the anomaly policy's events: neither holds up or suppresses the other. They are
always notified, armed or not: a camera covered at night is news whatever the schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np

from contracts.alert import TAMPER_EVENT_TYPE, AlertRecord, Severity, TamperKind, make_alert_id
from contracts.camera_scene import CameraScene, TamperConfig
from worker.picture import Image, grey_at
from worker.policy import plausible_time, utc_now

logger = logging.getLogger(__name__)

TAMPER_WIDTH = 128
CORRELATION_WIDTH = 32
MIN_VIEW_CORRELATION = 0.3
PHASE_BLUR_SIGMA = 1.0
"""Both views are blurred alike before the phase correlation: phase correlation whitens the spectrum,
so a defocused view (its fine detail gone, noise left) would otherwise find a shift in the noise."""
TAMPER_MODEL_VERSION = "worker.tamper"
"""`model_version` of tamper alerts: the check that raised them, not the endpoint's model."""
_EPSILON_S = 1e-6


def tamper_size(height: int, width: int) -> tuple[int, int]:
    small_width = min(TAMPER_WIDTH, width)
    return max(8, round(height * small_width / width)), small_width


@dataclass(frozen=True)
class Reading:
    """What one frame shows: the condition found (None: none), its measure and the limit it crossed."""

    kind: TamperKind | None
    measure: float = 0.0
    limit: float = 0.0


@dataclass
class Reference:
    """The view and sharpness that normal footage has, learnt over `reference_after_s`."""

    size: tuple[int, int]
    keep: np.ndarray | None
    started_pts_s: float
    total: np.ndarray
    sharpness: list[float]
    view: np.ndarray | None = None
    sharp: float = 0.0
    texture: float = 0.0

    @property
    def ready(self) -> bool:
        return self.view is not None


def _kept(keep: np.ndarray | None, grey: np.ndarray) -> np.ndarray:
    return np.full(grey.shape, 255, np.uint8) if keep is None else keep


def texture(grey: np.ndarray, keep: np.ndarray | None) -> float:
    """Grey-level standard deviation over the unmasked pixels."""
    return float(cv2.meanStdDev(grey, mask=_kept(keep, grey))[1][0, 0])


def sharpness(grey: np.ndarray, keep: np.ndarray | None) -> float:
    """Variance of the Laplacian over the unmasked pixels (away from the masks' edges)."""
    laplacian = cv2.Laplacian(grey, cv2.CV_32F)
    inner = cv2.erode(_kept(keep, grey), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return float(cv2.meanStdDev(laplacian, mask=inner)[1][0, 0]) ** 2


def _filled(grey: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """Float copy with the masked pixels set to the mean of the rest (a mask's edge is no feature)."""
    image = grey.astype(np.float32)
    if keep is not None:
        image[keep == 0] = cv2.mean(grey, mask=keep)[0]
    return image


def view_shift(reference: np.ndarray, image: np.ndarray) -> tuple[float, float]:
    """(largest shift as a fraction of the frame side, correlation at 32 px) of `image` against `reference`."""
    height, width = image.shape
    window = cv2.createHanningWindow((width, height), cv2.CV_32F)
    blurred = [cv2.GaussianBlur(view, (0, 0), PHASE_BLUR_SIGMA) for view in (reference, image)]
    (dx, dy), _response = cv2.phaseCorrelate(blurred[0], blurred[1], window)
    small = (CORRELATION_WIDTH, max(2, round(height * CORRELATION_WIDTH / width)))
    a = cv2.resize(reference, small, interpolation=cv2.INTER_AREA).ravel()
    b = cv2.resize(image, small, interpolation=cv2.INTER_AREA).ravel()
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    correlation = float((a * b).sum()) / denominator if denominator > 0 else 1.0
    return max(abs(dx) / width, abs(dy) / height), correlation


def read_frame(
    grey: np.ndarray, keep: np.ndarray | None, reference: Reference | None, config: TamperConfig
) -> Reading:
    """The condition `grey` (small, masks black) shows against `reference` (if learnt); pure."""
    deviation = texture(grey, keep)
    if deviation < config.blank_texture:
        return Reading("blank", deviation, config.blank_texture)
    if reference is None or not reference.ready:
        return Reading(None)
    if reference.texture >= config.blank_texture:  # a featureless reference cannot tell a move
        shift, correlation = view_shift(reference.view, _filled(grey, keep))  # type: ignore[arg-type]
        if shift > config.moved_fraction:
            return Reading("moved", shift, config.moved_fraction)
        if correlation < MIN_VIEW_CORRELATION:
            return Reading("moved", correlation, MIN_VIEW_CORRELATION)
    sharp = sharpness(grey, keep)
    if reference.sharp > 0 and sharp < config.defocus_ratio * reference.sharp:
        return Reading("defocus", sharp / reference.sharp, config.defocus_ratio)
    return Reading(None)


@dataclass
class _Episode:
    started_pts_s: float
    started_at: datetime
    alerted: bool = False


class TamperMonitor:
    """One camera's tamper checks and their alerts (the reader's thread calls `check`, the
    analyser's `check_signal`)."""

    def __init__(self, camera_id: str, site: str, clock: Callable[[], datetime] = utc_now) -> None:
        self.camera_id = camera_id
        self.site = site
        self.clock = clock
        self.reference: Reference | None = None
        self._episodes: dict[TamperKind, _Episode] = {}
        self._last_alert: dict[TamperKind, float] = {}
        self._silent_since: datetime | None = None
        self._silent_alerted = False
        self._last_silent_alert: datetime | None = None
        self.alerts = 0

    # -- frames ----------------------------------------------------------------------------------

    def check(
        self,
        image: Image,
        keep: Callable[[tuple[int, int]], np.ndarray | None],
        *,
        pts_s: float,
        captured_at: datetime,
        scene: CameraScene,
    ) -> AlertRecord | None:
        """Look at one sampled frame (masks applied); the `camera_tamper` alert it raises, if any."""
        config = scene.tamper
        if not config.enabled:
            return None
        size = tamper_size(*image.shape[:2])
        grey, mask = grey_at(image, size), keep(size)
        reading = read_frame(grey, mask, self.reference, config)
        if reading.kind != "blank":
            self._learn(grey, mask, pts_s, config)
        return self._track(reading, pts_s, captured_at, config)

    def _learn(self, grey: np.ndarray, keep: np.ndarray | None, pts_s: float, config: TamperConfig) -> None:
        reference = self.reference
        if reference is None or reference.size != grey.shape or reference.keep is not keep:
            if reference is not None:
                logger.info(
                    "tamper reference camera=%s: learnt again (frame size or masks changed)", self.camera_id
                )
            reference = self.reference = Reference(
                grey.shape, keep, pts_s, np.zeros(grey.shape, np.float64), []
            )
        if reference.ready:
            return
        reference.total += _filled(grey, keep)
        reference.sharpness.append(sharpness(grey, keep))
        if pts_s - reference.started_pts_s >= config.reference_after_s - _EPSILON_S:
            view = (reference.total / len(reference.sharpness)).astype(np.float32)
            reference.view = view
            reference.sharp = float(np.median(reference.sharpness))
            reference.texture = float(view.std())
            logger.info(
                "tamper reference camera=%s: %d frames, sharpness %.1f, texture %.1f",
                self.camera_id, len(reference.sharpness), reference.sharp, reference.texture,
            )  # fmt: skip

    def _track(
        self, reading: Reading, pts_s: float, captured_at: datetime, config: TamperConfig
    ) -> AlertRecord | None:
        for kind in [kind for kind in self._episodes if kind != reading.kind]:
            episode = self._episodes.pop(kind)
            logger.info(
                "tamper cleared camera=%s tamper=%s after %.1f s",
                self.camera_id,
                kind,
                pts_s - episode.started_pts_s,
            )
        if reading.kind is None:
            return None
        episode = self._episodes.setdefault(reading.kind, _Episode(pts_s, captured_at))
        if episode.alerted or pts_s - episode.started_pts_s < config.min_duration_s - _EPSILON_S:
            return None
        episode.alerted = True
        last = self._last_alert.get(reading.kind)
        if last is not None and 0 <= pts_s - last < config.cooldown_s - _EPSILON_S:
            logger.info(
                "tamper suppressed camera=%s tamper=%s (%.1f s after the last, cooldown %.1f s)",
                self.camera_id, reading.kind, pts_s - last, config.cooldown_s,
            )  # fmt: skip
            return None
        self._last_alert[reading.kind] = pts_s
        return self._alert(reading, episode.started_at, captured_at, episode.started_pts_s)

    # -- no signal -------------------------------------------------------------------------------

    def check_signal(self, silent: bool, scene: CameraScene) -> AlertRecord | None:
        """The source is (not) silent now; the `no_signal` alert due, if any (worker's clock)."""
        config = scene.tamper
        if not silent or not config.enabled:
            self._silent_since, self._silent_alerted = None, False
            return None
        now = self.clock()
        if self._silent_since is None:
            self._silent_since = now
        if self._silent_alerted or (now - self._silent_since).total_seconds() < config.min_duration_s:
            return None
        self._silent_alerted = True
        last = self._last_silent_alert
        if last is not None and (now - last).total_seconds() < config.cooldown_s:
            logger.info(
                "tamper suppressed camera=%s tamper=no_signal (cooldown %.1f s)",
                self.camera_id,
                config.cooldown_s,
            )
            return None
        self._last_silent_alert = now
        silent_s = (now - self._silent_since).total_seconds()
        return self._alert(
            Reading("no_signal", silent_s, config.min_duration_s), self._silent_since, now, None
        )

    # -- alerts ----------------------------------------------------------------------------------

    def _alert(
        self, reading: Reading, started_at: datetime, frame_at: datetime, media_time_s: float | None
    ) -> AlertRecord:
        detected_at = self.clock()
        started_at = plausible_time(started_at, detected_at, self.camera_id)
        frame_at = plausible_time(frame_at, detected_at, self.camera_id)
        self.alerts += 1
        logger.warning(
            "camera tamper camera=%s tamper=%s measure=%.3f limit=%.3f since %s",
            self.camera_id, reading.kind, reading.measure, reading.limit, started_at.isoformat(),
        )  # fmt: skip
        return AlertRecord(
            alert_id=make_alert_id(self.camera_id, TAMPER_EVENT_TYPE, started_at, reading.kind),
            camera_id=self.camera_id,
            site=self.site,
            event_type=TAMPER_EVENT_TYPE,
            severity=Severity.HIGH,
            score=reading.measure,
            threshold=reading.limit,
            started_at=started_at,
            frame_at=frame_at,
            detected_at=detected_at,
            media_time_s=media_time_s,
            model_version=TAMPER_MODEL_VERSION,
            tamper=reading.kind,
        )
