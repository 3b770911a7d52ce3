"""Motion gate: send a frame to the endpoint only when the scene changed since the last frame sent.

Frames are compared at low resolution in greyscale (made straight from the decoded picture:
`worker.picture.grey_at`) after a Gaussian blur (compression noise and sensor grain stay below
`pixel_delta`); the fraction of pixels that changed by more than `pixel_delta` is the motion.
Comparing with the last frame *sent* (not the previous frame) lets a slow change add up until it is
sent, and a heartbeat frame every `heartbeat_s` of media time goes out regardless, so a person
standing still is still seen."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from worker.config import MotionConfig
from worker.picture import Image, grey_at

logger = logging.getLogger(__name__)

# The worker runs its cameras in parallel, each on small images; OpenCV's own pool would split
# every blur across threads that then spin-wait for the next call (0.12 CPU s per 300 frames,
# `make bench-worker`), taking cores from the decoders.
cv2.setNumThreads(1)

_EPSILON_S = 1e-6  # media times are float sums: 8.2 - 6.2 must count as 2.0 s


class GateReason(StrEnum):
    FIRST = "first"
    MOTION = "motion"
    HEARTBEAT = "heartbeat"
    STILL = "still"


@dataclass(frozen=True)
class GateDecision:
    send: bool
    reason: GateReason
    changed: float
    """Fraction of low-res pixels that changed since the last frame sent (0 for the first)."""


class MotionGate:
    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._reference: np.ndarray | None = None
        self._reference_pts_s = 0.0

    def _small_grey(self, image: Image) -> np.ndarray:
        height, width = image.shape[:2]
        small_width = min(self.config.width, width)
        small_height = max(1, round(height * small_width / width))
        small = grey_at(image, (small_height, small_width))
        if self.config.blur > 1:
            small = cv2.GaussianBlur(small, (self.config.blur, self.config.blur), 0)
        return small

    def check(self, image: Image, pts_s: float) -> GateDecision:
        """Decide for one frame (RGB array or decoded `Picture`) at media time `pts_s`; a frame that is
        sent becomes the reference."""
        small = self._small_grey(image)
        if self._reference is None or self._reference.shape != small.shape:
            decision = GateDecision(True, GateReason.FIRST, 0.0)  # first frame, or the resolution changed
        else:
            changed = float(np.count_nonzero(cv2.absdiff(small, self._reference) > self.config.pixel_delta))
            changed /= small.size
            if changed >= self.config.threshold:
                decision = GateDecision(True, GateReason.MOTION, changed)
            elif (
                pts_s - self._reference_pts_s >= self.config.heartbeat_s - _EPSILON_S
                or pts_s < self._reference_pts_s
            ):
                decision = GateDecision(True, GateReason.HEARTBEAT, changed)  # (or time went backwards)
            else:
                decision = GateDecision(False, GateReason.STILL, changed)
        if decision.send:
            self._reference, self._reference_pts_s = small, pts_s
        return decision
