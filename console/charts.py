"""The score chart of an alert page: an inline SVG drawn on the server (no JavaScript).

Points are (seconds from the event start, score); the threshold is a dashed line and the alert's own
point is highlighted. `ScoreChart.svg()` returns markup for the template (already escaped numbers)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
