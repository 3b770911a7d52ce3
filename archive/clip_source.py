"""Where clips come from: the `ClipSource` seam. `LocalClipSource` cuts a file or live URL with
PyAV; `archive.kvs.KvsClipSource` fetches them from Kinesis Video Streams with `GetClip`."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from archive.errors import ArchiveError
from archive.local_cut import ClipProbe, cut_clip, probe_clip

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedClip:
    """One continuous MP4 on local disk and the wall-clock span of its footage."""

    path: Path
    start: datetime  # capture time of its first frame (a keyframe; may precede the asked start)
    end: datetime  # capture time just after its last frame
    probe: ClipProbe


class ClipSource(ABC):
    """Footage of one camera, by wall-clock range."""

    name: str

    @abstractmethod
    def fetch(self, start: datetime, end: datetime, workdir: Path) -> list[FetchedClip]:
        """The footage of [start, end) as one MP4 per continuous stretch (a gap in the stream splits
        the range; it is never padded), in time order. Raises `ArchiveError` if there is none."""


class LocalClipSource(ClipSource):
    """A video file or live URL; `media_epoch` is the wall-clock time of its media time 0."""

    def __init__(self, source: str, media_epoch: datetime) -> None:
        self.name = source
        self.source = source
        self.media_epoch = media_epoch

    def fetch(self, start: datetime, end: datetime, workdir: Path) -> list[FetchedClip]:
        start_s = max(0.0, (start - self.media_epoch).total_seconds())
        end_s = (end - self.media_epoch).total_seconds()
        if end_s <= 0:
            raise ArchiveError(f"range {start.isoformat()}..{end.isoformat()} is before the start of {self.source}")
        path = workdir / f"local-{start_s:.3f}.mp4"
        cut = cut_clip(self.source, start_s, end_s, path)
        return [
            FetchedClip(
                path=path,
                start=self.media_epoch + timedelta(seconds=cut.first_pts_s),
                end=self.media_epoch + timedelta(seconds=cut.end_pts_s),
                probe=probe_clip(path),
            )
        ]
