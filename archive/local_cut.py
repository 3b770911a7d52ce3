"""The local cut: PyAV remuxes a file's (or live URL's) H.264 packets between two keyframes into an
MP4, with no re-encoding; and `probe_clip`, which reads a clip's frame times without decoding."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av

from archive.errors import ArchiveError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CutClip:
    path: Path
    first_pts_s: float  # media time of the clip's first frame (a keyframe)
    end_pts_s: float  # media time just after the clip's last frame
    frames: int


def is_live(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def cut_clip(source: str, start_s: float, end_s: float, out_path: Path) -> CutClip:
    """Remux [keyframe <= start_s, first keyframe >= end_s) of `source` into `out_path` (MP4).

    No re-encoding: the clip starts on a keyframe, so it decodes on its own, and its timestamps are
    rebased to start at 0."""
    if end_s <= start_s:
        raise ArchiveError(f"empty clip range {start_s}..{end_s} s of {source}")
    if not is_live(source) and not Path(source).is_file():
        raise ArchiveError(f"video source not found: {source}")
    try:
        inp = av.open(source, timeout=10.0 if is_live(source) else None)
    except (av.FFmpegError, OSError) as exc:
        raise ArchiveError(f"cannot open video source {source}: {exc}") from exc
    with inp:
        if not inp.streams.video:
            raise ArchiveError(f"no video stream in {source}")
        in_stream = inp.streams.video[0]
        time_base = in_stream.time_base
        # Seeking lands on the keyframe at or before start_s: take it (up to one GOP of pre-roll).
        # A live source cannot seek: wait for the first keyframe at or after start_s instead.
        first_allowed_s = start_s
        if start_s > 0 and not is_live(source):
            inp.seek(int(start_s / time_base), stream=in_stream, backward=True, any_frame=False)
            first_allowed_s = float("-inf")
        offset: int | None = None
        frames = 0
        last_end = 0
        with av.open(str(out_path), mode="w", format="mp4") as out:
            out_stream = out.add_stream_from_template(in_stream)
            for packet in inp.demux(in_stream):
                if packet.pts is None or packet.dts is None:
                    continue  # flush packet at the end of the stream
                pts_s = float(packet.pts * time_base)
                if offset is None:
                    if not packet.is_keyframe or pts_s + 1e-6 < first_allowed_s:
                        continue
                    offset = packet.pts
                elif packet.is_keyframe and pts_s + 1e-6 >= end_s:
                    break
                last_end = max(last_end, packet.pts + (packet.duration or 0))
                packet.pts -= offset
                packet.dts -= offset
                packet.stream = out_stream
                out.mux(packet)
                frames += 1
        if offset is None or frames == 0:
            raise ArchiveError(f"no frames of {source} in {start_s}..{end_s} s")
    return CutClip(out_path, float(offset * time_base), float(last_end * time_base), frames)


@dataclass(frozen=True)
class ClipProbe:
    """What a clip holds: frame presentation times (seconds from its first frame, sorted) and its
    duration (first frame to the end of the last)."""

    frame_times_s: tuple[float, ...]
    duration_s: float
    first_is_keyframe: bool

    @property
    def frames(self) -> int:
        return len(self.frame_times_s)


def probe_clip(path: Path, what: str | None = None) -> ClipProbe:
    """Demux (no decoding) an MP4 and list its video frames; `ArchiveError` if it is not a playable
    video with at least one frame. `what` names the clip in the message (default: the path)."""
    what = what or str(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ArchiveError(f"{what} has no video stream")
            stream = container.streams.video[0]
            times: list[tuple[float, float, bool]] = []
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                start = float(packet.pts * stream.time_base)
                times.append((start, float((packet.duration or 0) * stream.time_base), bool(packet.is_keyframe)))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{what} is not a playable MP4: {exc}") from exc
    if not times:
        raise ArchiveError(f"{what} holds no video frames")
    times.sort()
    origin = times[0][0]
    end = max(start + duration for start, duration, _ in times)
    return ClipProbe(tuple(round(t - origin, 6) for t, _, _ in times), round(end - origin, 6), times[0][2])
