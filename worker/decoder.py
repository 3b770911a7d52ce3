"""Decoding of MKV blocks (from KVS fragments) with PyAV: one codec context per track
configuration, opened from the track's CodecPrivate (avcC for H.264) and opened again when the
configuration changes (a new resolution arrives with a new CodecPrivate).

Packets the decoder rejects are counted and skipped: a bad frame never ends the stream."""

from __future__ import annotations

import logging
from fractions import Fraction

import av

from kvs.parser import MkvFrame, TrackInfo

logger = logging.getLogger(__name__)

CODEC_BY_ID = {
    "V_MPEG4/ISO/AVC": "h264",
    "V_MPEGH/ISO/HEVC": "hevc",
    "V_MJPEG": "mjpeg",
}
# V_MS/VFW/FOURCC tracks carry a BITMAPINFOHEADER: the codec is its FourCC (bytes 16..20).
CODEC_BY_FOURCC = {b"MJPG": "mjpeg", b"H264": "h264", b"AVC1": "h264", b"avc1": "h264", b"HEVC": "hevc"}
MILLISECOND = Fraction(1, 1000)
_NS_PER_MS = 1_000_000


def codec_name(track: TrackInfo) -> str | None:
    if track.codec_id == "V_MS/VFW/FOURCC":
        return CODEC_BY_FOURCC.get(track.codec_private[16:20])
    return CODEC_BY_ID.get(track.codec_id)


class FrameDecoder:
    """Decodes the blocks of one video track; `decode` returns PyAV frames whose `pts` is the
    block's timecode in milliseconds."""

    def __init__(self, camera_id: str = "-") -> None:
        self.camera_id = camera_id
        self.frames_decoded = 0
        self.decode_errors = 0
        self.frames_unsupported = 0
        self.reopened = 0
        self._context: av.codec.context.CodecContext | None = None
        self._config: tuple[str, bytes] | None = None
        self._unsupported_logged: set[str] = set()

    def decode(self, frame: MkvFrame, *, alone: bool = False) -> list[av.VideoFrame]:
        """Decode one block. `alone`: an intra frame decoded by itself (keyframes-only mode): the
        decoder is drained so that the picture comes out now, not one frame later."""
        track = frame.fragment.tracks.get(frame.track)
        context = self._context_for(track)
        if context is None:
            self.frames_unsupported += 1
            return []
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = frame.timecode_ns // _NS_PER_MS
        packet.time_base = MILLISECOND
        try:
            pictures = list(context.decode(packet))
            if alone and not pictures:
                pictures = self.flush()
        except av.FFmpegError as exc:
            self._error(frame, exc)
            return []
        self.frames_decoded += len(pictures)
        return pictures

    def flush(self) -> list[av.VideoFrame]:
        """The pictures the decoder still holds (end of a fragment); the decoder stays usable."""
        if self._context is None:
            return []
        try:
            pictures = list(self._context.decode(None))
        except av.FFmpegError as exc:
            logger.debug("flush failed camera=%s: %s", self.camera_id, exc)
            pictures = []
        self._context.flush_buffers()
        return pictures

    def _context_for(self, track: TrackInfo | None) -> av.codec.context.CodecContext | None:
        if track is None:
            return None
        config = (track.codec_id, track.codec_private)
        if config == self._config:
            return self._context
        self._config = config
        self._context = None
        name = codec_name(track)
        if name is None:
            if track.codec_id not in self._unsupported_logged:
                self._unsupported_logged.add(track.codec_id)
                logger.warning(
                    "unsupported codec camera=%s codec_id=%s: frames skipped", self.camera_id, track.codec_id
                )
            return None
        context = av.CodecContext.create(name, "r")
        if track.codec_private and track.codec_id != "V_MS/VFW/FOURCC":
            context.extradata = track.codec_private
        context.thread_type = "SLICE"  # frame threads would hold pictures back by one per thread
        self._context = context
        self.reopened += 1
        logger.info(
            "decoder opened camera=%s codec=%s size=%dx%d", self.camera_id, name, track.width, track.height
        )
        return context

    def _error(self, frame: MkvFrame, exc: av.FFmpegError) -> None:
        self.decode_errors += 1
        if self.decode_errors <= 3 or self.decode_errors % 100 == 0:
            logger.warning(
                "decode error camera=%s fragment=%s frame=%d (%d so far): %s",
                self.camera_id,
                frame.fragment.fragment_number,
                frame.index,
                self.decode_errors,
                " ".join(str(getattr(exc, "strerror", None) or exc).split()),
            )
