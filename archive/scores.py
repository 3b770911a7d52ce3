"""One camera's recent frame scores, and the score trace of each alert once its post-roll is in.

    history = ScoreHistory(pre_roll_s=5, post_roll_s=10)
    history.watch(alert)                         # when the alert is raised (its clip key is set)
    for key, trace in history.add(pts_s, score): # every analysed frame, in media-time order
        runner.submit_trace(key, trace)          # written next to the clip (ClipArchiveRunner)
    history.flush()                              # at stop: the traces of alerts still in their post-roll

Times are media times (`Frame.pts_s`): the timeline the alert clip is cut on (a file's position, or
the producer's capture time in epoch seconds on KVS). Only analysed frames are added, so frames the
motion gate skipped leave gaps. The history keeps `pre_roll_s + post_roll_s` of media time: when a
frame past an alert's post-roll arrives, everything its trace needs is still there. Pure: no I/O,
used from the analyser thread only."""

from __future__ import annotations

import logging
from collections import deque

from contracts.alert import AlertRecord
from contracts.score_trace import ScoreTrace, score_trace_key

logger = logging.getLogger(__name__)

MAX_POINTS = 10_000  # a cap on memory whatever the timestamps do (30 fps for 300 s is 9,000)
_EPSILON_S = 1e-6


class ScoreHistory:
    def __init__(self, pre_roll_s: float, post_roll_s: float) -> None:
        self.pre_roll_s = pre_roll_s
        self.post_roll_s = post_roll_s
        self._points: deque[tuple[float, float]] = deque(maxlen=MAX_POINTS)
        self._pending: list[AlertRecord] = []

    def __len__(self) -> int:
        return len(self._points)

    def watch(self, alert: AlertRecord) -> None:
        """Build `alert`'s trace once its post-roll has been analysed (or at `flush`). An alert with
        no clip key or no media time has nowhere to go and no timeline: ignored."""
        if alert.clip is None or alert.media_time_s is None:
            return
        self._pending.append(alert)

    def add(self, pts_s: float, score: float) -> list[tuple[str, ScoreTrace]]:
        """Record an analysed frame; (key, trace) of each watched alert whose post-roll it ends."""
        self._points.append((pts_s, score))
        horizon = pts_s - self.pre_roll_s - self.post_roll_s - _EPSILON_S
        while self._points and self._points[0][0] < horizon:
            self._points.popleft()
        done = [a for a in self._pending if pts_s >= a.media_time_s + self.post_roll_s - _EPSILON_S]  # type: ignore[operator]
        if not done:
            return []
        self._pending = [a for a in self._pending if a not in done]
        return [self._trace(alert) for alert in done]

    def flush(self) -> list[tuple[str, ScoreTrace]]:
        """The traces of every watched alert, with the frames analysed so far (the source ended)."""
        done, self._pending = self._pending, []
        return [self._trace(alert) for alert in done]

    def _trace(self, alert: AlertRecord) -> tuple[str, ScoreTrace]:
        assert alert.clip is not None and alert.media_time_s is not None
        start = alert.media_time_s
        points = [
            (round(pts - start, 3), round(score, 6))
            for pts, score in self._points
            if -self.pre_roll_s - _EPSILON_S <= pts - start <= self.post_roll_s + _EPSILON_S
        ]
        trace = ScoreTrace(
            alert_id=alert.alert_id, camera_id=alert.camera_id, threshold=alert.threshold,
            model_version=alert.model_version, pre_roll_s=self.pre_roll_s, post_roll_s=self.post_roll_s,
            points=sorted(points),
        )
        return score_trace_key(alert.clip.key), trace
