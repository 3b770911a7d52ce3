"""A small MKV (EBML) writer for H.264: what a KVS producer sends with PutMedia (one Segment of
unknown size, one Cluster per fragment) and what KVS answers to GetMedia (one Segment per
fragment, with the AWS tags). Used by `make camera-sim`, the local KVS twin and the tests.

`h264_packets(path)` turns a video file into avcC CodecPrivate + length-prefixed packets (PyAV;
anything that is not H.264 in MP4/MKV is re-encoded with libx264)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from kvs import ebml
from kvs.ebml import UNKNOWN_SIZE, element, encode_id, encode_size, string_element, uint_element
from kvs.parser import (
    TAG_CONTINUATION_TOKEN,
    TAG_FRAGMENT_NUMBER,
    TAG_MILLIS_BEHIND_NOW,
    TAG_PRODUCER_TIMESTAMP,
    TAG_SERVER_TIMESTAMP,
)

logger = logging.getLogger(__name__)

H264_CODEC_ID = "V_MPEG4/ISO/AVC"
TIMECODE_SCALE_NS = 1_000_000  # timecodes in milliseconds


@dataclass(frozen=True)
class Packet:
    pts_ms: int
    keyframe: bool
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class VideoTrack:
    codec_private: bytes = field(repr=False)
    width: int
    height: int
    codec_id: str = H264_CODEC_ID
    frame_duration_ns: int | None = None


def ebml_header() -> bytes:
    return element(
        ebml.EBML,
        uint_element(ebml.EBML_VERSION, 1)
        + uint_element(ebml.EBML_READ_VERSION, 1)
        + uint_element(ebml.EBML_MAX_ID_LENGTH, 4)
        + uint_element(ebml.EBML_MAX_SIZE_LENGTH, 8)
        + string_element(ebml.DOC_TYPE, "matroska")
        + uint_element(ebml.DOC_TYPE_VERSION, 4)
        + uint_element(ebml.DOC_TYPE_READ_VERSION, 2),
    )


def segment_start() -> bytes:
    return encode_id(ebml.SEGMENT) + encode_size(UNKNOWN_SIZE)


def info() -> bytes:
    return element(
        ebml.INFO,
        uint_element(ebml.TIMECODE_SCALE, TIMECODE_SCALE_NS)
        + string_element(ebml.MUXING_APP, "vigil")
        + string_element(ebml.WRITING_APP, "vigil camera-sim"),
    )


def tracks(track: VideoTrack) -> bytes:
    entry = (
        uint_element(ebml.TRACK_NUMBER, 1)
        + uint_element(ebml.TRACK_UID, 1)
        + uint_element(ebml.TRACK_TYPE, 1)
        + string_element(ebml.CODEC_ID, track.codec_id)
        + element(ebml.CODEC_PRIVATE, track.codec_private)
        + element(
            ebml.VIDEO,
            uint_element(ebml.PIXEL_WIDTH, track.width) + uint_element(ebml.PIXEL_HEIGHT, track.height),
        )
    )
    if track.frame_duration_ns:
        entry += uint_element(ebml.DEFAULT_DURATION, track.frame_duration_ns)
    return element(ebml.TRACKS, element(ebml.TRACK_ENTRY, entry))


def tags(values: dict[str, str]) -> bytes:
    simple = b"".join(
        element(ebml.SIMPLE_TAG, string_element(ebml.TAG_NAME, name) + string_element(ebml.TAG_STRING, value))
        for name, value in values.items()
    )
    return element(ebml.TAGS, element(ebml.TAG, element(ebml.TARGETS, b"") + simple))


def simple_block(relative_ms: int, keyframe: bool, data: bytes) -> bytes:
    if not -32768 <= relative_ms <= 32767:
        raise ValueError(f"block offset {relative_ms} ms does not fit a cluster (fragments <= 32 s)")
    header = b"\x81" + relative_ms.to_bytes(2, "big", signed=True) + (b"\x80" if keyframe else b"\x00")
    return element(ebml.SIMPLE_BLOCK, header + data)


def cluster(timecode_ms: int, packets: Iterable[Packet], *, known_size: bool = True) -> bytes:
    body = uint_element(ebml.TIMECODE, timecode_ms) + b"".join(
        simple_block(p.pts_ms - timecode_ms, p.keyframe, p.data) for p in packets
    )
    if known_size:
        return element(ebml.CLUSTER, body)
    return encode_id(ebml.CLUSTER) + encode_size(UNKNOWN_SIZE) + body


def producer_header(track: VideoTrack) -> bytes:
    """Start of a PutMedia body: EBML header, Segment (unknown size), Info, Tracks."""
    return ebml_header() + segment_start() + info() + tracks(track)


def get_media_fragment(
    track: VideoTrack,
    packets: list[Packet],
    *,
    fragment_number: str,
    producer_timestamp: float,
    server_timestamp: float | None = None,
    continuation_token: str | None = None,
    millis_behind_now: int | None = 0,
    extra_tags: dict[str, str] | None = None,
) -> bytes:
    """One fragment as GetMedia sends it: EBML header, Segment { Info, Tracks, Tags (fragment
    number, server and producer timestamps), Cluster (unknown size), Tags (millis behind now,
    continuation token) }. The trailing Tags are left out when both are None."""
    head_tags = {
        **(extra_tags or {}),
        TAG_FRAGMENT_NUMBER: fragment_number,
        TAG_SERVER_TIMESTAMP: f"{server_timestamp if server_timestamp is not None else producer_timestamp:.3f}",
        TAG_PRODUCER_TIMESTAMP: f"{producer_timestamp:.3f}",
    }
    tail: dict[str, str] = {}
    if millis_behind_now is not None:
        tail[TAG_MILLIS_BEHIND_NOW] = str(millis_behind_now)
    if continuation_token is not None:
        tail[TAG_CONTINUATION_TOKEN] = continuation_token
    timecode = packets[0].pts_ms if packets else 0
    return (
        ebml_header()
        + segment_start()
        + info()
        + tracks(track)
        + tags(head_tags)
        + cluster(timecode, packets, known_size=False)
        + (tags(tail) if tail else b"")
    )


def fragments_by_keyframe(packets: Iterable[Packet]) -> Iterator[list[Packet]]:
    """Packets grouped into fragments, each starting at a keyframe (as KVS fragments do)."""
    current: list[Packet] = []
    for packet in packets:
        if packet.keyframe and current:
            yield current
            current = []
        current.append(packet)
    if current:
        yield current


# -- H.264 from video ----------------------------------------------------------------------------


def encode_h264(
    frames: Iterable[np.ndarray], *, fps: int = 30, gop: int = 30, crf: int = 28, preset: str = "ultrafast"
) -> tuple[VideoTrack, list[Packet]]:
    """RGB frames -> H.264 (libx264) as MKV wants it: avcC CodecPrivate, length-prefixed packets."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": "0",
            "crf": str(crf),
            "preset": preset,
        }
        for i, array in enumerate(frames):
            if i == 0:
                stream.height, stream.width = array.shape[:2]
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    buffer.seek(0)
    return h264_packets(buffer)


def h264_packets(source: str | Path | io.BytesIO) -> tuple[VideoTrack, list[Packet]]:
    """The H.264 track of a video file as avcC + packets; re-encoded when it is not H.264 with an
    avcC header (e.g. MPEG-4 part 2, or Annex B elementary streams)."""
    with av.open(source if isinstance(source, io.BytesIO) else str(source)) as container:
        if not container.streams.video:
            raise ValueError(f"no video stream in {source}")
        stream = container.streams.video[0]
        context = stream.codec_context
        extradata = bytes(context.extradata or b"")
        if context.name == "h264" and extradata[:1] == b"\x01":
            time_base = stream.time_base or Fraction(1, 1000)
            rate = stream.average_rate or Fraction(30)
            track = VideoTrack(
                codec_private=extradata,
                width=context.width,
                height=context.height,
                frame_duration_ns=int(1e9 / rate),
            )
            packets = [
                Packet(pts_ms=int(p.pts * time_base * 1000), keyframe=p.is_keyframe, data=bytes(p))
                for p in container.demux(stream)
                if p.size and p.pts is not None
            ]
            packets.sort(key=lambda p: p.pts_ms)  # no B-frames from our encoder; files may have them
            return track, packets
        fps = round(float(stream.average_rate or 30))
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    logger.info("re-encoding %s (%s) to H.264", source, context.name)
    return encode_h264(frames, fps=fps, gop=fps)
