"""The score charts of an alert page: inline SVG drawn on the server (no JavaScript).

- `TraceChart`: the alert's score trace (`contracts.score_trace`): each analysed frame's score from
  the pre-roll to the post-roll, the threshold dashed, the alert start marked, seconds on the x axis.
- `ScoreChart`: the peak score of each alert on the camera within ±30 min, this alert highlighted.

`svg()` returns markup for the template (numbers only, formatted here: nothing to escape)."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from functools import cached_property

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 16, 14, 34


def _duration(offset_s: float) -> str:
    return f"{offset_s:+.0f} s" if abs(offset_s) < 300 else f"{offset_s / 60:+.0f} min"


def fitted_window(offsets_s: list[float], most_s: float, least_s: float = 60.0) -> float:
    """Half-width of the time axis: the farthest point plus a margin, within [least_s, most_s]."""
    farthest = max((abs(offset) for offset in offsets_s), default=0.0)
    return min(most_s, max(least_s, farthest * 1.25))


@dataclass(frozen=True)
class ScorePoint:
    offset_s: float
    score: float
    current: bool = False


@dataclass(frozen=True)
class ScoreChart:
    points: list[ScorePoint]
    threshold: float
    window_s: float

    def _scale(self) -> tuple[float, float]:
        top = max([p.score for p in self.points] + [self.threshold]) * 1.15 or 1.0
        return 0.0, top

    def x(self, offset_s: float) -> float:
        span = 2 * self.window_s
        return PAD_LEFT + (offset_s + self.window_s) / span * (WIDTH - PAD_LEFT - PAD_RIGHT)

    def y(self, score: float) -> float:
        low, high = self._scale()
        return PAD_TOP + (1 - (score - low) / (high - low)) * (HEIGHT - PAD_TOP - PAD_BOTTOM)

    def svg(self) -> str:
        low, high = self._scale()
        parts = [
            (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="Score over time around the event">'),
            (f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{WIDTH - PAD_LEFT - PAD_RIGHT}" '
            f'height="{HEIGHT - PAD_TOP - PAD_BOTTOM}" class="plot"/>'),
        ]
        for fraction in (0.0, 0.5, 1.0):
            value = low + fraction * (high - low)
            parts.append(f'<text x="{PAD_LEFT - 6}" y="{self.y(value) + 4:.1f}" class="axis" '
                         f'text-anchor="end">{value:.2f}</text>')
        ticks = (-self.window_s, -self.window_s / 2, 0.0, self.window_s / 2, self.window_s)
        for number, offset in enumerate(ticks):
            label = "event" if offset == 0 else _duration(offset)
            anchor = "start" if number == 0 else "end" if number == len(ticks) - 1 else "middle"
            parts.append(f'<text x="{self.x(offset):.1f}" y="{HEIGHT - 12}" class="axis" '
                         f'text-anchor="{anchor}">{label}</text>')
        ty = self.y(self.threshold)
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" class="threshold"/>')
        parts.append(f'<text x="{WIDTH - PAD_RIGHT - 4}" y="{ty - 4:.1f}" class="axis" text-anchor="end">'
                     f'threshold {self.threshold:.3f}</text>')
        ordered = sorted(self.points, key=lambda p: p.offset_s)
        if len(ordered) > 1:
            path = " ".join(f"{self.x(p.offset_s):.1f},{self.y(p.score):.1f}" for p in ordered)
            parts.append(f'<polyline points="{path}" class="series"/>')
        for point in ordered:
            css = "point current" if point.current else "point"
            parts.append(f'<circle cx="{self.x(point.offset_s):.1f}" cy="{self.y(point.score):.1f}" '
                         f'r="{6 if point.current else 4}" class="{css}"><title>{point.score:.3f} at '
                         f'{point.offset_s:+.0f} s</title></circle>')
        parts.append("</svg>")
        return "".join(parts)


TRACE_WIDTH, TRACE_HEIGHT = 480, 250
TRACE_PAD_LEFT, TRACE_PAD_RIGHT, TRACE_PAD_TOP, TRACE_PAD_BOTTOM = 46, 22, 22, 48  # right: room for "+10"
GAP_FACTOR = 2.5  # a step longer than this many typical steps is a gap: frames not analysed


def tick_step(span_s: float, most: int = 6) -> float:
    """A round tick step (1, 2, 5 x 10^k s) giving at most `most` intervals over `span_s`."""
    for step in (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0):
        if span_s / step <= most:
            return step
    return span_s / most


def split_at_gaps(points: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Runs of points with no gap: a step over GAP_FACTOR x the median step ends a run."""
    if len(points) < 2:
        return [points] if points else []
    steps = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
    limit = GAP_FACTOR * steps[len(steps) // 2]
    runs = [[points[0]]]
    for before, point in itertools.pairwise(points):
        if point[0] - before[0] > limit:
            runs.append([])
        runs[-1].append(point)
    return runs


@dataclass(frozen=True)
class TraceChart:
    """An alert's score trace: every analysed frame's score from the pre-roll to the post-roll, a line
    broken where frames were not analysed, the threshold dashed, the alert's start marked at 0 s."""

    points: list[tuple[float, float]]
    threshold: float
    start_s: float
    end_s: float

    @classmethod
    def of(cls, points: list[tuple[float, float]], threshold: float, pre_roll_s: float, post_roll_s: float) -> TraceChart:
        ordered = sorted(points)
        start = min([-pre_roll_s] + [t for t, _ in ordered[:1]])
        end = max([post_roll_s] + [t for t, _ in ordered[-1:]])
        return cls(ordered, threshold, start, end if end > start else start + 1.0)

    @cached_property
    def top(self) -> float:
        """The score at the top of the chart (computed once, not per point)."""
        return max([s for _, s in self.points] + [self.threshold]) * 1.15 or 1.0

    def x(self, offset_s: float) -> float:
        width = TRACE_WIDTH - TRACE_PAD_LEFT - TRACE_PAD_RIGHT
        return TRACE_PAD_LEFT + (offset_s - self.start_s) / (self.end_s - self.start_s) * width

    def y(self, score: float) -> float:
        height = TRACE_HEIGHT - TRACE_PAD_TOP - TRACE_PAD_BOTTOM
        return TRACE_PAD_TOP + (1 - score / self.top) * height

    def svg(self) -> str:
        bottom, right = TRACE_HEIGHT - TRACE_PAD_BOTTOM, TRACE_WIDTH - TRACE_PAD_RIGHT
        parts = [
            (f'<svg class="chart trace" id="score-trace" viewBox="0 0 {TRACE_WIDTH} {TRACE_HEIGHT}" role="img" '
             f'aria-label="Score of each analysed frame from {self.start_s:+.0f} s to {self.end_s:+.0f} s around '
             f'the alert start; threshold {self.threshold:.3f}">'),
            (f'<rect x="{TRACE_PAD_LEFT}" y="{TRACE_PAD_TOP}" width="{right - TRACE_PAD_LEFT}" '
             f'height="{bottom - TRACE_PAD_TOP}" class="plot"/>'),
        ]
        for fraction in (0.0, 0.5, 1.0):
            value = fraction * self.top
            parts.append(f'<text x="{TRACE_PAD_LEFT - 5}" y="{self.y(value) + 5:.1f}" class="axis" '
                         f'text-anchor="end">{value:.2f}</text>')
        step = tick_step(self.end_s - self.start_s)
        tick = step * -(-self.start_s // step)  # the first multiple of step at or after start
        while tick <= self.end_s + 1e-9:
            label = "0" if abs(tick) < 1e-9 else f"{tick:+g}"
            parts.append(f'<line x1="{self.x(tick):.1f}" x2="{self.x(tick):.1f}" y1="{bottom}" y2="{bottom + 4}" '
                         f'class="tick"/><text x="{self.x(tick):.1f}" y="{bottom + 19}" class="axis" '
                         f'text-anchor="middle">{label}</text>')
            tick += step
        parts.append(f'<text x="{(TRACE_PAD_LEFT + right) / 2:.1f}" y="{TRACE_HEIGHT - 6}" class="axis" '
                     f'text-anchor="middle">seconds from the alert start</text>')
        x0 = self.x(0.0)
        parts.append(f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{TRACE_PAD_TOP}" y2="{bottom}" class="start"/>')
        parts.append(f'<text x="{x0:.1f}" y="{TRACE_PAD_TOP - 6}" class="axis start-label" '
                     f'text-anchor="middle">alert start</text>')
        ty = self.y(self.threshold)
        parts.append(f'<line x1="{TRACE_PAD_LEFT}" x2="{right}" y1="{ty:.1f}" y2="{ty:.1f}" class="threshold"/>')
        parts.append(f'<text x="{right - 4}" y="{ty - 5:.1f}" class="axis" text-anchor="end">'
                     f'threshold {self.threshold:.3f}</text>')
        for run in split_at_gaps(self.points):
            if len(run) > 1:
                path = " ".join(f"{self.x(t):.1f},{self.y(s):.1f}" for t, s in run)
                parts.append(f'<polyline points="{path}" class="series"/>')
        for t, s in self.points:
            css = "point over" if s >= self.threshold else "point"
            parts.append(f'<circle cx="{self.x(t):.1f}" cy="{self.y(s):.1f}" r="2.5" class="{css}">'
                         f'<title>{s:.3f} at {t:+.1f} s</title></circle>')
        parts.append("</svg>")
        return "".join(parts)
