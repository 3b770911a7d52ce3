"""Frame sampling by media time: keep about `sample_fps` frames per second of video, whatever the
source's frame rate (constant, variable, or keyframes only).

The source asks the sampler before it hands a frame on, so frames that are not kept cost only their
decode (or not even that: `worker.kvs_source`)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# Timestamps are floats computed from integer pts: a frame 1 ms early still counts as on time.
_TOLERANCE_S = 1e-3


class FrameSampler:
    """Keeps the first frame at or after each due time; due times are `1 / sample_fps` apart.

    A gap in the stream (a jump forward of more than one interval) restarts the schedule at the
    frame after the gap instead of keeping a burst of frames to catch up."""

    def __init__(self, sample_fps: float) -> None:
        if sample_fps <= 0:
            raise ValueError(f"sample_fps must be > 0, got {sample_fps}")
        self.interval_s = 1.0 / sample_fps
        self._next_due_s: float | None = None

    def due(self, pts_s: float) -> bool:
        """Whether `accept(pts_s)` would keep the frame (the schedule does not move)."""
        return self._next_due_s is None or pts_s >= self._next_due_s - _TOLERANCE_S

    def accept(self, pts_s: float) -> bool:
        """True when the frame at media time `pts_s` is to be kept."""
        if not self.due(pts_s):
            return False
        if self._next_due_s is None or pts_s - self._next_due_s >= self.interval_s:
            self._next_due_s = pts_s + self.interval_s
        else:
            self._next_due_s += self.interval_s
        return True

    @property
    def next_due_s(self) -> float | None:
        """The schedule: the media time the next kept frame is due at (None: the next frame)."""
        return self._next_due_s

    @next_due_s.setter
    def next_due_s(self, value: float | None) -> None:
        self._next_due_s = value

    def reset(self) -> None:
        """Forget the schedule (after a seek or a reconnect)."""
        self._next_due_s = None
