"""EBML (the binary format of Matroska/MKV) primitives: variable-length integers, element ids, and
which master element may hold which child. Shared by the stream parser and the writer."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# Element ids (with their length marker, as written on the wire).
EBML = 0x1A45DFA3
SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_UID = 0x73C5
TRACK_TYPE = 0x83
CODEC_ID = 0x86
CODEC_PRIVATE = 0x63A2
DEFAULT_DURATION = 0x23E383
VIDEO = 0xE0
PIXEL_WIDTH = 0xB0
PIXEL_HEIGHT = 0xBA
CLUSTER = 0x1F43B675
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
CUES = 0x1C53BB6B
CHAPTERS = 0x1043A770
ATTACHMENTS = 0x1941A469
TAGS = 0x1254C367
TAG = 0x7373
TARGETS = 0x63C0
SIMPLE_TAG = 0x67C8
TAG_NAME = 0x45A3
TAG_STRING = 0x4487
TAG_BINARY = 0x4485
VOID = 0xEC
CRC32 = 0xBF
# EBML header children
EBML_VERSION = 0x4286
EBML_READ_VERSION = 0x42F7
EBML_MAX_ID_LENGTH = 0x42F2
EBML_MAX_SIZE_LENGTH = 0x42F3
DOC_TYPE = 0x4282
DOC_TYPE_VERSION = 0x4287
DOC_TYPE_READ_VERSION = 0x4285
SEGMENT_UID = 0x73A4
MUXING_APP = 0x4D80
WRITING_APP = 0x5741

MASTER_IDS = frozenset(
    {
        EBML,
        SEGMENT,
        SEEK_HEAD,
        INFO,
        TRACKS,
        TRACK_ENTRY,
        VIDEO,
        CLUSTER,
        BLOCK_GROUP,
        TAGS,
        TAG,
        TARGETS,
        SIMPLE_TAG,
    }
)
GLOBAL_IDS = frozenset({VOID, CRC32})
"""Elements allowed anywhere."""

# Where the elements that matter may appear: an unknown-size master (KVS sends Segments and
# Clusters of unknown size) ends at the first element it cannot hold.
PARENTS: dict[int, frozenset[int | None]] = {
    EBML: frozenset({None}),
    SEGMENT: frozenset({None}),
    SEEK_HEAD: frozenset({SEGMENT}),
    INFO: frozenset({SEGMENT}),
    TRACKS: frozenset({SEGMENT}),
    CLUSTER: frozenset({SEGMENT}),
    CUES: frozenset({SEGMENT}),
    CHAPTERS: frozenset({SEGMENT}),
    ATTACHMENTS: frozenset({SEGMENT}),
    TAGS: frozenset({SEGMENT}),
    TIMECODE: frozenset({CLUSTER}),
    SIMPLE_BLOCK: frozenset({CLUSTER}),
    BLOCK_GROUP: frozenset({CLUSTER}),
    0xA7: frozenset({CLUSTER}),  # Position
    0xAB: frozenset({CLUSTER}),  # PrevSize
    TAG: frozenset({TAGS}),
    TARGETS: frozenset({TAG}),
    SIMPLE_TAG: frozenset({TAG, SIMPLE_TAG}),
    TAG_NAME: frozenset({SIMPLE_TAG}),
    TAG_STRING: frozenset({SIMPLE_TAG}),
    TAG_BINARY: frozenset({SIMPLE_TAG}),
    0x447A: frozenset({SIMPLE_TAG}),  # TagLanguage
    0x4484: frozenset({SIMPLE_TAG}),  # TagDefault
}
STRICT_PARENTS = frozenset({SEGMENT, CLUSTER, TAGS, TAG, SIMPLE_TAG, None})
"""Masters whose children must be known elements: anything else inside them is corruption."""

UNKNOWN_SIZE = -1
MAX_ID_LENGTH = 4
MAX_SIZE_LENGTH = 8


class EbmlError(ValueError):
    """Bytes that are not valid EBML."""


def read_vint(buf: bytes | bytearray | memoryview, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """(value, length) of the variable-length integer at `pos`, or None if `buf` ends before it
    does. Ids keep their length marker; sizes drop it, and all ones means unknown (UNKNOWN_SIZE)."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first == 0:
        raise EbmlError("invalid variable-length integer (0x00)")
    length = 8 - first.bit_length() + 1
    if pos + length > len(buf):
        return None
    value = first if length == 1 else int.from_bytes(buf[pos : pos + length], "big")
    if keep_marker:
        return value, length
    value_bits = (1 << (7 * length)) - 1  # the bits after the length marker
    value &= value_bits
    return (UNKNOWN_SIZE if value == value_bits else value), length


def encode_id(element_id: int) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def encode_size(size: int, length: int | None = None) -> bytes:
    """The size as a vint (shortest, or `length` bytes); UNKNOWN_SIZE is all ones on 8 bytes."""
    if size == UNKNOWN_SIZE:
        return b"\x01\xff\xff\xff\xff\xff\xff\xff"
    if length is None:
        length = 1
        while size >= (1 << (7 * length)) - 1:
            length += 1
    return ((1 << (7 * length)) | size).to_bytes(length, "big")


def element(element_id: int, payload: bytes) -> bytes:
    return encode_id(element_id) + encode_size(len(payload)) + payload


def uint_element(element_id: int, value: int) -> bytes:
    return element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def string_element(element_id: int, value: str) -> bytes:
    return element(element_id, value.encode("utf-8"))


def read_uint(data: bytes) -> int:
    return int.from_bytes(data, "big")
