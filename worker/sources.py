"""Frame sources: where the worker's frames come from.

`FrameSource` is the seam: it yields sampled `Frame`s (the decoded picture, converted to RGB or
greyscale only as far as each stage needs: `worker.picture`) with their media time and capture time.
`AvSource` reads a video file, an RTSP or an HTTP URL with PyAV (FFmpeg); it is the local default.
A `KvsSource` (Kinesis Video Streams GetMedia, MKV fragments) plugs in at the same seam later.

Decoding is the expensive stage, so `AvSource` decodes as little as the sampling allows: once it has
seen two keyframes, if the keyframe interval is no longer than the sampling interval it asks the
decoder for keyframes only (`skip_frame = "NONKEY"`); otherwise it decodes every frame and keeps only
those the `FrameSampler` samples."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import numpy as np

from contracts.camera_scene import CameraScene
from worker.picture import Picture
from worker.sampler import FrameSampler

logger = logging.getLogger(__name__)

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
# Network sources: (open timeout, read timeout) in seconds, and RTSP over TCP (no lost UDP packets).
LIVE_TIMEOUTS_S = (10.0, 10.0)
LIVE_OPTIONS = {"rtsp_transport": "tcp"}
_EPSILON_S = 1e-3


class SourceError(RuntimeError):
    """The source cannot be opened or read; the message is one line naming it."""


class SourceUnreachableError(SourceError):
    """A camera URL could not be reached, or the camera refused us: a network or access problem,
    not a video that cannot be decoded."""


# FFmpeg's errors for a network source that never answered (EIO: the host name did not resolve, or
# the connection failed before any byte of video).
_NETWORK_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH,
    errno.ETIMEDOUT, errno.EIO,
})


def unreachable_reason(exc: BaseException) -> str | None:
    """Why a live source could not be reached, with what to check, or None when `exc` is not a
    network or access error (a stream that answered with something undecodable)."""
    reason = _reason(exc)
    if isinstance(exc, av.error.HTTPClientError):  # 401, 403, 404...: the camera answered and refused
        return f"the camera refused the request ({reason}): check the user, password and path in the URL"
    code = getattr(exc, "errno", None)
    if isinstance(exc, TimeoutError) or code == errno.ETIMEDOUT:
        return (f"no answer ({reason}): check the address and port, and that this machine reaches the "
                f"camera's network")
    if isinstance(exc, ConnectionError) or code in _NETWORK_ERRNOS:
        return (f"{reason}: check the address (host name or IP) and port (RTSP: 554), that the camera is on, "
                f"and that this machine reaches its network")
    return None


@dataclass(frozen=True)
class Frame:
    picture: Picture = field(repr=False)
    """The decoded picture: the motion gate and the detector take the small images they need from it."""
    pts_s: float
    """Media time: position in the source's timeline, seconds."""
    captured_at: datetime
    """When the camera captured the frame (UTC); for files played live, when it would have."""
    index: int
    """Frame number in the source: round(pts_s x nominal frame rate), else a decode counter."""
    keyframe: bool
    fragment_number: str | None = None
    """KVS fragment the frame came from (checkpoints advance by fragment); None for other sources."""
    preroll: bool = False
    """Read again before the checkpoint after a restart: it rebuilds the model's history and the motion
    gate's reference, and is never analysed a second time."""
    scene: CameraScene | None = field(default=None, repr=False)
    """The camera scene the reader masked the frame with; the analyser places its regions with the same."""

    @property
    def image(self) -> np.ndarray:
        """Full-resolution RGB, uint8, H x W x 3 (snapshots): converted on first use, then kept."""
        return self.picture.rgb()


@dataclass
class SourceStats:
    frames_decoded: int = 0
    frames_sampled: int = 0
    decode_errors: int = 0
    keyframes_only: bool = False
    keyframe_interval_s: float | None = None


def is_live(source: str) -> bool:
    return source.lower().startswith(LIVE_SCHEMES)


class FrameSource(ABC):
    """Yields the sampled frames of one camera; `open()` fails fast with `SourceError`."""

    stats: SourceStats

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Sampled frames in media-time order until the source ends, `end_s`, or the stop event."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AvSource(FrameSource):
    """A video file, RTSP or HTTP source decoded with PyAV.

    File sources are played as a live camera would send them: paced to real time divided by `speed`,
    with `captured_at = start wall-clock + (pts_s - start_s) / speed`. With `speed == 0` (as fast as
    possible) and for live URLs, `captured_at` is the time the frame was decoded."""

    def __init__(
        self,
        source: str,
        *,
        sample_fps: float,
        camera_id: str = "-",
        speed: float = 1.0,
        start_s: float | None = None,
        end_s: float | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.source = source
        self.camera_id = camera_id
        self.live = is_live(source)
        self.speed = speed
        self.start_s = start_s
        self.end_s = end_s
        self.stop_event = stop_event or threading.Event()
        self.sampler = FrameSampler(sample_fps)
        self.stats = SourceStats()
        self._container: av.container.InputContainer | None = None
        self._stream: av.VideoStream | None = None

    # -- opening ---------------------------------------------------------------------------------

    def open(self) -> None:
        if not self.live:
            path = Path(self.source)
            if not path.is_file():
                raise SourceError(f"video source not found: {self.source}")
            if not os.access(path, os.R_OK):
                raise SourceError(f"video source not readable: {self.source}")
        try:
            if self.live:
                container = av.open(self.source, options=LIVE_OPTIONS, timeout=LIVE_TIMEOUTS_S)
            else:
                container = av.open(self.source)
        except (av.FFmpegError, OSError) as exc:
            why = unreachable_reason(exc) if self.live else None
            if why is not None:
                raise SourceUnreachableError(f"camera unreachable: {self.source}: {why}") from None
            raise SourceError(f"cannot open video source {self.source}: {_reason(exc)}") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"video source has no video stream: {self.source}")
        self._container, self._stream = container, container.streams.video[0]
        self._stream.thread_type = "AUTO"
        logger.info(
            "source opened camera=%s source=%s codec=%s size=%dx%d rate=%s live=%s",
            self.camera_id,
            self.source,
            self._stream.codec_context.name,
            self._stream.codec_context.width,
            self._stream.codec_context.height,
            self._stream.average_rate,
            self.live,
        )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    # -- decoding --------------------------------------------------------------------------------

    def frames(self) -> Iterator[Frame]:
        if self._container is None or self._stream is None:
            self.open()
        assert self._container is not None and self._stream is not None
        container, stream = self._container, self._stream
        if self.start_s:
            self._seek(container, stream, self.start_s)
        rate = float(stream.average_rate) if stream.average_rate else None
        pacer = _Pacer(self.speed if not self.live else 0.0, self.start_s, self.stop_event)
        last_keyframe_s: float | None = None
        for packet in self._packets(container, stream):
            if packet.is_keyframe and packet.pts is not None and packet.time_base is not None:
                keyframe_s = float(packet.pts * packet.time_base)
                if last_keyframe_s is not None and keyframe_s > last_keyframe_s:
                    self._choose_decode_mode(stream, keyframe_s - last_keyframe_s)
                last_keyframe_s = keyframe_s
            if packet.is_corrupt:
                self._decode_error(f"corrupt packet at pts {packet.pts}")
                continue
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                self._decode_error(_reason(exc))
                continue
            for video_frame in decoded:
                self.stats.frames_decoded += 1
                pts_s = video_frame.time
                if pts_s is None:  # no timestamp: count on from the frame rate
                    pts_s = self.stats.frames_decoded / rate if rate else 0.0
                if self.start_s is not None and pts_s < self.start_s - _EPSILON_S:
                    continue
                if self.end_s is not None and pts_s >= self.end_s - _EPSILON_S:
                    return
                if not self.sampler.accept(pts_s):
                    continue
                captured_at = pacer.wait_until(pts_s)
                if captured_at is None:  # stopped while waiting
                    return
                self.stats.frames_sampled += 1
                index = round(pts_s * rate) if rate else self.stats.frames_decoded - 1
                yield Frame(
                    picture=Picture(video_frame),
                    pts_s=pts_s,
                    captured_at=captured_at,
                    index=index,
                    keyframe=video_frame.key_frame,
                )
            if self.stop_event.is_set():
                return

    def _packets(self, container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.Packet]:
        """Demuxed packets of the video stream (and the final flush packet); a demux error ends
        the stream (counted), as the rest of the file cannot be found without an index."""
        packets = container.demux(stream)
        while not self.stop_event.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                self._decode_error(f"demux: {_reason(exc)}")
                return
            yield packet

    def _seek(self, container: av.container.InputContainer, stream: av.VideoStream, start_s: float) -> None:
        if self.live:
            logger.info("live source camera=%s: start_s skips frames, no seek", self.camera_id)
            return
        try:
            assert stream.time_base is not None
            container.seek(int(start_s / stream.time_base), stream=stream, backward=True, any_frame=False)
        except (av.FFmpegError, OSError) as exc:
            logger.warning(
                "seek failed camera=%s start_s=%s: %s; decoding from the start", self.camera_id, start_s, exc
            )
        self.sampler.reset()

    def _choose_decode_mode(self, stream: av.VideoStream, keyframe_interval_s: float) -> None:
        keyframes_only = keyframe_interval_s <= self.sampler.interval_s + _EPSILON_S
        self.stats.keyframe_interval_s = keyframe_interval_s
        if keyframes_only != self.stats.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY" if keyframes_only else "DEFAULT"
            self.stats.keyframes_only = keyframes_only
            logger.info(
                "decode mode camera=%s keyframes_only=%s keyframe_interval_s=%.3f sample_interval_s=%.3f",
                self.camera_id,
                keyframes_only,
                keyframe_interval_s,
                self.sampler.interval_s,
            )

    def _decode_error(self, reason: str) -> None:
        self.stats.decode_errors += 1
        logger.warning(
            "decode error camera=%s source=%s (%d so far): %s",
            self.camera_id,
            self.source,
            self.stats.decode_errors,
            reason,
        )


class _Pacer:
    """Plays media time as wall-clock time divided by `speed`, and says when each frame was captured."""

    def __init__(self, speed: float, start_s: float | None, stop_event: threading.Event) -> None:
        self.speed = speed
        self.origin_pts_s = start_s
        self.stop_event = stop_event
        self._origin_monotonic: float | None = None
        self._origin_utc = datetime.now(UTC)

    def wait_until(self, pts_s: float) -> datetime | None:
        """Sleep until the frame at `pts_s` is due; its capture time, or None if stopped meanwhile."""
        if self.speed <= 0:
            return datetime.now(UTC)
        if self.origin_pts_s is None:
            self.origin_pts_s = pts_s
        if self._origin_monotonic is None:
            self._origin_monotonic, self._origin_utc = time.monotonic(), datetime.now(UTC)
        offset_s = max(0.0, pts_s - self.origin_pts_s) / self.speed
        delay_s = self._origin_monotonic + offset_s - time.monotonic()
        if delay_s > 0 and self.stop_event.wait(delay_s):
            return None
        return self._origin_utc + timedelta(seconds=offset_s)


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without PyAV's errno prefix, on one line."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())
