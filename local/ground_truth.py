"""Ground truth for a demo video: the media-time stretches when nobody is in view.

A video `X.mp4` may have a sidecar `X.empty.json` (`{"empty_ranges_s": [[a, b], ...], "tolerance_s": t}`,
`b` null = until the end). An alert whose event starts inside an empty stretch (shrunk by the
tolerance at both ends, since the stretches are measured to about a second) is a false alarm."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmptyStretches:
    ranges_s: list[tuple[float, float]]
    tolerance_s: float

    @classmethod
    def for_video(cls, video: str) -> EmptyStretches | None:
        sidecar = Path(video).with_suffix(".empty.json")
        if "://" in video or not sidecar.is_file():
            return None
        data = json.loads(sidecar.read_text())
        ranges = [(float(a), float("inf") if b is None else float(b)) for a, b in data["empty_ranges_s"]]
        return cls(ranges, float(data.get("tolerance_s", 1.0)))

    def is_empty_at(self, media_time_s: float) -> bool:
        """True when `media_time_s` is surely inside an empty stretch (tolerance applied)."""
        t = self.tolerance_s
        return any(a + t < media_time_s < b - t for a, b in self.ranges_s)

    def is_occupied_at(self, media_time_s: float) -> bool:
        """True when someone is (or, within the tolerance, may be) in view at `media_time_s`.

        An event starts when someone enters, i.e. right at the end of an empty stretch: within the
        measurement's tolerance that counts as "in view", not as a false alarm."""
        return not self.is_empty_at(media_time_s)
