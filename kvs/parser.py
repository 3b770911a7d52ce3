"""Incremental parser of a KVS GetMedia response: a chain of MKV segments, one per fragment.

Feed it bytes as they arrive (`feed`), in chunks of any size cut at any byte; it returns events
as soon as they can be known, and never re-parses what it has consumed (bytes are read once,
the buffer holds at most one unfinished element):

- `MkvFrame`: one SimpleBlock of the fragment, emitted as soon as its bytes are in (`keyframes_only`:
  only the keyframes of video tracks);
- `FragmentEnd`: the fragment is complete (its trailing Tags with the continuation token arrived,
  or the next fragment began, or the response ended cleanly): every frame of it has been emitted;
- `KvsError`: the stream carried `AWS_KINESISVIDEO_ERROR_CODE` / `_ERROR_ID`;
- `Corruption`: bytes that are not valid MKV; the parser drops the fragment in hand and resumes
  at the next EBML header (the next fragment), counting the bytes it skipped.

What KVS sends per fragment: EBML header, Segment (unknown size) { SeekHead, Info, Tracks,
Tags (AWS_KINESISVIDEO_FRAGMENT_NUMBER, _SERVER_TIMESTAMP, _PRODUCER_TIMESTAMP),
Cluster { Timecode, SimpleBlock... }, Tags (_MILLIS_BEHIND_NOW, _CONTINUATION_TOKEN) }."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kvs import ebml

logger = logging.getLogger(__name__)

TAG_FRAGMENT_NUMBER = "AWS_KINESISVIDEO_FRAGMENT_NUMBER"
TAG_SERVER_TIMESTAMP = "AWS_KINESISVIDEO_SERVER_TIMESTAMP"
TAG_PRODUCER_TIMESTAMP = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"
TAG_MILLIS_BEHIND_NOW = "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"
TAG_CONTINUATION_TOKEN = "AWS_KINESISVIDEO_CONTINUATION_TOKEN"
TAG_ERROR_CODE = "AWS_KINESISVIDEO_ERROR_CODE"
TAG_ERROR_ID = "AWS_KINESISVIDEO_ERROR_ID"
END_OF_FRAGMENT_TAGS = frozenset({TAG_MILLIS_BEHIND_NOW, TAG_CONTINUATION_TOKEN})

MAX_ELEMENT_BYTES = 64 * 1024 * 1024
"""A leaf larger than this is corruption (KVS limits fragments to 50 MB)."""
COMPACT_BYTES = 1 << 16
DEFAULT_TIMECODE_SCALE_NS = 1_000_000
EBML_MAGIC = ebml.encode_id(ebml.EBML)
VIDEO_TRACK_TYPE = 1

_LEAVES_READ = frozenset(
    {
        ebml.TIMECODE_SCALE,
        ebml.TRACK_NUMBER,
        ebml.TRACK_TYPE,
        ebml.CODEC_ID,
        ebml.CODEC_PRIVATE,
        ebml.DEFAULT_DURATION,
        ebml.PIXEL_WIDTH,
        ebml.PIXEL_HEIGHT,
        ebml.TIMECODE,
        ebml.SIMPLE_BLOCK,
        ebml.BLOCK,
        ebml.TAG_NAME,
        ebml.TAG_STRING,
        ebml.TAG_BINARY,
    }
)


@dataclass(frozen=True)
class TrackInfo:
    number: int
    codec_id: str = ""
    codec_private: bytes = field(default=b"", repr=False)
    width: int = 0
    height: int = 0
    track_type: int = 0
    default_duration_ns: int | None = None


@dataclass
class FragmentMeta:
    """What the fragment's tags and headers said; the end-of-fragment fields fill in last."""

    sequence: int
    """Position of the fragment in this parser's stream (0-based)."""
    fragment_number: str | None = None
    server_timestamp: float | None = None
    """Seconds since the epoch."""
    producer_timestamp: float | None = None
    """Seconds since the epoch: when the producer (camera) captured the fragment's first frame."""
    millis_behind_now: int | None = None
    continuation_token: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    """Every SimpleTag of the fragment (AWS and custom), name -> string value."""
    tracks: dict[int, TrackInfo] = field(default_factory=dict)
    timecode_scale_ns: int = DEFAULT_TIMECODE_SCALE_NS
    frame_count: int = 0
    """Blocks in the fragment so far, passed on or not."""
    first_timecode_ns: int | None = None
    frames_skipped_nonkey: int = 0
    """Video blocks that are not keyframes, not passed on (`MkvStreamParser.keyframes_only`)."""
    keyframes_only: bool = False
    """The parser's mode for this fragment, fixed when the fragment began: either every block of the
    fragment is passed on, or only its keyframes (never a P-frame whose reference was left out)."""


@dataclass(frozen=True)
class MkvFrame:
    fragment: FragmentMeta = field(repr=False)
    track: int
    timecode_ns: int
    """Cluster timecode + block offset, in nanoseconds (the producer's timeline)."""
    keyframe: bool
    data: bytes = field(repr=False)
    index: int
    """Position of the frame in its fragment (0-based)."""

    @property
    def producer_time_s(self) -> float | None:
        """When the producer captured this frame (epoch seconds), from the fragment's tag."""
        meta = self.fragment
        if meta.producer_timestamp is None:
            return None
        first = meta.first_timecode_ns if meta.first_timecode_ns is not None else self.timecode_ns
        return meta.producer_timestamp + (self.timecode_ns - first) / 1e9


@dataclass(frozen=True)
class FragmentEnd:
    fragment: FragmentMeta


@dataclass(frozen=True)
class KvsError:
    code: str
    error_id: str | None
    fragment_number: str | None


@dataclass(frozen=True)
class Corruption:
    reason: str
    fragment_number: str | None
    """The fragment dropped because of it (None: between fragments or before its tags)."""


Event = MkvFrame | FragmentEnd | KvsError | Corruption


@dataclass
class _Open:
    element_id: int
    end: int | None
    """Absolute offset where the element ends; None for unknown size."""
    values: dict[int, bytes] = field(default_factory=dict)
    raw: bytes | None = None
    """The whole element (a header master, `_REPEATED_HEADERS`), kept to recognise its repeats."""


@dataclass(frozen=True)
class _Header:
    """A header master as last parsed (its bytes) and what it set: replayed when it repeats."""

    raw: bytes
    timecode_scale_ns: int | None = None


_REPEATED_HEADERS = frozenset({ebml.EBML, ebml.SEEK_HEAD, ebml.INFO, ebml.TRACKS})
"""Masters that every fragment repeats, byte for byte while the camera's settings stay the same:
~30 of the ~50-90 elements of a KVS fragment. One that matches its last copy is not parsed again
(its effect is replayed: the Info's timecode scale; the Tracks it describes are the parser's
current ones already, as every fragment inherits them); any change (a new resolution's Tracks) is
parsed in full."""


@dataclass
class ParserStats:
    bytes_in: int = 0
    fragments: int = 0
    frames: int = 0
    corruptions: int = 0
    bytes_skipped: int = 0
    blocks_unsupported: int = 0


class MkvStreamParser:
    def __init__(self, *, keyframes_only: bool = False) -> None:
        self.keyframes_only = keyframes_only
        """Pass on only the video blocks that are keyframes (a reader that decodes nothing else):
        the others are counted in their fragment's `frames_skipped_nonkey`, never copied, and keep
        their place (`MkvFrame.index`). May change at any time; it applies from the next fragment
        on (`FragmentMeta.keyframes_only`), so a fragment never loses only some of its P-frames."""
        self.stats = ParserStats()
        self._buf = bytearray()
        self._pos = 0
        """Read position in `_buf`."""
        self._base = 0
        """Absolute stream offset of `_buf[0]`."""
        self._skip = 0
        """Bytes of an ignored leaf still to drop."""
        self._stack: list[_Open] = []
        self._fragment: FragmentMeta | None = None
        self._fragment_done = False
        self._tracks: dict[int, TrackInfo] = {}
        self._cluster_timecode = 0
        self._resyncing = False
        self._sequence = 0
        self._headers: dict[int, _Header] = {}

    @property
    def fragment(self) -> FragmentMeta | None:
        """The fragment being read (None between fragments)."""
        return None if self._fragment_done else self._fragment

    # -- input -----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        self.stats.bytes_in += len(data)
        self._buf += data
        events: list[Event] = []
        if (
            self._fragment is not None
            and self._fragment.keyframes_only
            and not self._skip
            and self._stack
            and self._stack[-1].element_id == ebml.CLUSTER
        ):
            self._skip_nonkey_blocks()  # the run the last chunk cut
        while True:
            try:
                if not self._step(events):
                    break
            except ebml.EbmlError as exc:
                self._corrupt(str(exc), events)
        self._compact()
        return events

    def close(self) -> list[Event]:
        """The response ended cleanly: a fragment whose every element is in is complete; an element
        cut off (or a fragment left in resync) is not."""
        events: list[Event] = []
        pending = len(self._buf) - self._pos + self._skip
        if self._fragment is not None and not self._fragment_done:
            cut = (
                pending > 0
                or self._resyncing
                or any(entry.end is not None and entry.end > self._abs() for entry in self._stack)
            )
            if cut:
                logger.info(
                    "fragment cut off fragment=%s frames=%d",
                    self._fragment.fragment_number,
                    self._fragment.frame_count,
                )
            else:
                self._end_fragment(events)
        self._stack.clear()
        return events

    # -- the state machine -------------------------------------------------------------------------

    def _abs(self) -> int:
        return self._base + self._pos

    def _step(self, events: list[Event]) -> bool:
        """Consume one element header or leaf; False when more bytes are needed."""
        if self._skip:
            take = min(self._skip, len(self._buf) - self._pos)
            self._pos += take
            self._skip -= take
            if self._skip:
                return False
        if self._resyncing and not self._find_next_fragment():
            return False
        while self._stack and self._stack[-1].end is not None and self._abs() >= self._stack[-1].end:
            self._close_element(self._stack.pop(), events)
        buf, pos = self._buf, self._pos
        try:
            got_id = ebml.read_vint(buf, pos, keep_marker=True)
            if got_id is None:
                return False
            element_id, id_len = got_id
            if id_len > ebml.MAX_ID_LENGTH:
                raise ebml.EbmlError("element id longer than 4 bytes")
            got_size = ebml.read_vint(buf, pos + id_len, keep_marker=False)
        except ebml.EbmlError as exc:
            raise ebml.EbmlError(f"{exc} at byte {self._abs()}") from None
        if got_size is None:
            return False
        size, size_len = got_size
        header_len = id_len + size_len
        self._place(element_id, events)
        start = self._abs()
        end = None if size == ebml.UNKNOWN_SIZE else start + header_len + size
        parent = self._stack[-1] if self._stack else None
        if end is not None and parent is not None and parent.end is not None and end > parent.end:
            raise ebml.EbmlError(f"element 0x{element_id:X} overruns its parent at byte {start}")
        if element_id in ebml.MASTER_IDS:
            raw = None
            if element_id in _REPEATED_HEADERS and end is not None and len(buf) - pos >= header_len + size:
                raw = bytes(buf[pos : pos + header_len + size])
                if self._replay(element_id, raw, events):
                    self._pos += header_len + size
                    return True
            self._pos += header_len
            self._stack.append(_Open(element_id, end, raw=raw))
            self._open_element(element_id, events)
            return True
        if size == ebml.UNKNOWN_SIZE or size > MAX_ELEMENT_BYTES:
            raise ebml.EbmlError(f"element 0x{element_id:X} of impossible size at byte {start}")
        if element_id not in _LEAVES_READ:
            self._pos += header_len
            self._skip = size
            return True
        if len(buf) - pos < header_len + size:
            return False
        self._pos += header_len + size
        if element_id == ebml.SIMPLE_BLOCK or element_id == ebml.BLOCK:
            self._block(element_id, buf, pos + header_len, pos + header_len + size, events)
        else:
            self._leaf(element_id, bytes(buf[pos + header_len : pos + header_len + size]), events)
        return True

    def _place(self, element_id: int, events: list[Event]) -> None:
        """Close the unknown-size masters that cannot hold `element_id`; reject strays."""
        parents = ebml.PARENTS.get(element_id)
        if parents is None:
            top = self._stack[-1].element_id if self._stack else None
            if element_id not in ebml.GLOBAL_IDS and top in ebml.STRICT_PARENTS:
                raise ebml.EbmlError(f"unexpected element 0x{element_id:X} at byte {self._abs()}")
            return
        while self._stack and self._stack[-1].element_id not in parents:
            top = self._stack[-1]
            if top.end is not None:
                raise ebml.EbmlError(
                    f"element 0x{element_id:X} inside 0x{top.element_id:X} at byte {self._abs()}"
                )
            self._close_element(self._stack.pop(), events)
        if not self._stack and None not in parents:
            raise ebml.EbmlError(f"element 0x{element_id:X} outside a segment at byte {self._abs()}")

    def _replay(self, element_id: int, raw: bytes, events: list[Event]) -> bool:
        """A header master identical to its last copy: its effect without parsing it again."""
        header = self._headers.get(element_id)
        if header is None or header.raw != raw:
            return False
        self._open_element(element_id, events)
        if header.timecode_scale_ns is not None and self._fragment is not None:
            self._fragment.timecode_scale_ns = header.timecode_scale_ns
        return True

    def _open_element(self, element_id: int, events: list[Event]) -> None:
        if element_id == ebml.EBML or element_id == ebml.SEGMENT:
            if self._fragment is not None and not self._fragment_done and element_id == ebml.EBML:
                self._end_fragment(events)  # the next fragment began: the last one is complete
            if element_id == ebml.SEGMENT:
                self._fragment = FragmentMeta(
                    sequence=self._sequence, tracks=dict(self._tracks), keyframes_only=self.keyframes_only
                )
                self._fragment_done = False
                self._sequence += 1
        elif element_id == ebml.CLUSTER:
            self._cluster_timecode = 0

    def _leaf(self, element_id: int, data: bytes, events: list[Event]) -> None:
        if element_id == ebml.TIMECODE:
            self._cluster_timecode = ebml.read_uint(data)
        elif element_id == ebml.TIMECODE_SCALE and self._fragment is not None:
            self._fragment.timecode_scale_ns = ebml.read_uint(data) or DEFAULT_TIMECODE_SCALE_NS
        elif self._stack:
            self._stack[-1].values[element_id] = data

    def _close_element(self, entry: _Open, events: list[Event]) -> None:
        element_id, values = entry.element_id, entry.values
        if entry.raw is not None:
            self._remember(entry)
        if element_id == ebml.SIMPLE_TAG:
            name = values.get(ebml.TAG_NAME, b"").decode("utf-8", "replace")
            value = values.get(ebml.TAG_STRING, values.get(ebml.TAG_BINARY, b"")).decode("utf-8", "replace")
            if name and self._fragment is not None:
                self._fragment.tags[name] = value.strip("\x00")
        elif element_id == ebml.VIDEO and self._stack:
            self._stack[-1].values.update(values)
        elif element_id == ebml.TRACK_ENTRY:
            self._add_track(values)
        elif element_id == ebml.TAGS:
            self._tags_done(events)
        elif element_id == ebml.SEGMENT and self._fragment is not None and not self._fragment_done:
            self._end_fragment(events)

    def _remember(self, entry: _Open) -> None:
        assert entry.raw is not None
        scale = None
        if entry.element_id == ebml.INFO and self._fragment is not None:
            scale = self._fragment.timecode_scale_ns
        self._headers[entry.element_id] = _Header(entry.raw, scale)

    def _add_track(self, values: dict[int, bytes]) -> None:
        number = ebml.read_uint(values.get(ebml.TRACK_NUMBER, b"\x01"))
        duration = values.get(ebml.DEFAULT_DURATION)
        track = TrackInfo(
            number=number,
            codec_id=values.get(ebml.CODEC_ID, b"").decode("ascii", "replace").strip("\x00"),
            codec_private=values.get(ebml.CODEC_PRIVATE, b""),
            width=ebml.read_uint(values.get(ebml.PIXEL_WIDTH, b"")),
            height=ebml.read_uint(values.get(ebml.PIXEL_HEIGHT, b"")),
            track_type=ebml.read_uint(values.get(ebml.TRACK_TYPE, b"")),
            default_duration_ns=ebml.read_uint(duration) if duration else None,
        )
        self._tracks[number] = track
        if self._fragment is not None:
            self._fragment.tracks[number] = track

    def _tags_done(self, events: list[Event]) -> None:
        fragment = self._fragment
        if fragment is None or self._fragment_done:
            return
        tags = fragment.tags
        fragment.fragment_number = tags.get(TAG_FRAGMENT_NUMBER, fragment.fragment_number)
        fragment.server_timestamp = _seconds(tags.get(TAG_SERVER_TIMESTAMP), fragment.server_timestamp)
        fragment.producer_timestamp = _seconds(tags.get(TAG_PRODUCER_TIMESTAMP), fragment.producer_timestamp)
        if TAG_ERROR_CODE in tags:
            events.append(KvsError(tags[TAG_ERROR_CODE], tags.get(TAG_ERROR_ID), fragment.fragment_number))
            del tags[TAG_ERROR_CODE]
        if END_OF_FRAGMENT_TAGS & tags.keys():
            millis = tags.get(TAG_MILLIS_BEHIND_NOW)
            fragment.millis_behind_now = int(millis) if millis and millis.isdigit() else None
            fragment.continuation_token = tags.get(TAG_CONTINUATION_TOKEN)
            self._end_fragment(events)

    def _block(self, element_id: int, buf: bytearray, start: int, end: int, events: list[Event]) -> None:
        """The (Simple)Block in `buf[start:end]`: its header read in place, its frame copied once."""
        fragment = self._fragment
        if fragment is None or self._fragment_done:
            raise ebml.EbmlError(f"block outside a fragment at byte {self._abs()}")
        got = ebml.read_vint(buf, start, keep_marker=False)
        if got is None or end - start < got[1] + 3:
            raise ebml.EbmlError(f"truncated block header at byte {self._abs()}")
        track, n = got
        relative = int.from_bytes(buf[start + n : start + n + 2], "big", signed=True)
        flags = buf[start + n + 2]
        if flags & 0x06:  # laced blocks: KVS does not send them
            self.stats.blocks_unsupported += 1
            return
        keyframe = bool(flags & 0x80) if element_id == ebml.SIMPLE_BLOCK else False
        timecode_ns = (self._cluster_timecode + relative) * fragment.timecode_scale_ns
        if fragment.first_timecode_ns is None:
            fragment.first_timecode_ns = timecode_ns
        if fragment.keyframes_only and not keyframe and is_video_track(fragment.tracks.get(track)):
            fragment.frames_skipped_nonkey += 1
        else:
            events.append(
                MkvFrame(
                    fragment=fragment,
                    track=track,
                    timecode_ns=timecode_ns,
                    keyframe=keyframe,
                    data=_copy(buf, start + n + 3, end),
                    index=fragment.frame_count,
                )
            )
        fragment.frame_count += 1
        self.stats.frames += 1
        if fragment.keyframes_only and element_id == ebml.SIMPLE_BLOCK:
            self._skip_nonkey_blocks()

    def _skip_nonkey_blocks(self) -> None:
        """Count and step over the run of non-key video SimpleBlocks that follows a block.

        Why: in keyframes-only mode 29 of a fragment's 30 blocks are only counted, yet each one
        cost ~33K instructions through `_step` and `_block`; ~12K with this loop, buffer copies
        included (callgrind, 300 fragments of 1 keyframe + 29 others of 1.5 KB, 16 KiB chunks:
        parsing them went from 624M to 451M instructions; the rest is the ~54 other elements per
        fragment).
        This loop reads the same bytes with int arithmetic (id 0xA3, size vint, 1-byte track vint,
        flags) and leaves to `_step` anything that is not plainly such a block, fully in the
        buffer and inside the Cluster (a keyframe, a laced block, another track or element, odd
        sizes, a block cut by the chunk), so that events, counters and errors stay those of the
        general path. Called after a block and when a chunk arrives inside a Cluster, never per
        element, so elements that are not blocks pay nothing for it."""
        fragment = self._fragment
        if fragment is None or self._fragment_done or fragment.first_timecode_ns is None:
            return  # `_step` reads the first block of a fragment (it sets first_timecode_ns)
        buf, pos = self._buf, self._pos
        limit = len(buf)
        cluster_end = self._stack[-1].end
        if cluster_end is not None:
            limit = min(limit, cluster_end - self._base)
        tracks = fragment.tracks
        video_track = -1
        count = 0
        while pos + 2 <= limit and buf[pos] == 0xA3:  # SimpleBlock id, then its size vint
            first = buf[pos + 1]
            if not first:
                break
            size_len = 9 - first.bit_length()
            body = pos + 1 + size_len
            if body > limit:
                break
            all_ones = (1 << (7 * size_len)) - 1
            size = int.from_bytes(buf[pos + 1 : body], "big") & all_ones
            end = body + size
            if size == all_ones or size < 4 or size > MAX_ELEMENT_BYTES or end > limit:
                break
            track = buf[body] - 0x80  # a 1-byte track vint is 0x80 | number, 0xFF reserved
            if not 0 <= track < 0x7F or buf[body + 3] & 0x86:  # keyframe or laced
                break
            if track != video_track:
                if not is_video_track(tracks.get(track)):
                    break
                video_track = track
            count += 1
            pos = end
        self._pos = pos
        fragment.frames_skipped_nonkey += count
        fragment.frame_count += count
        self.stats.frames += count

    def _end_fragment(self, events: list[Event]) -> None:
        assert self._fragment is not None
        self._fragment_done = True
        self.stats.fragments += 1
        events.append(FragmentEnd(self._fragment))

    # -- corruption --------------------------------------------------------------------------------

    def _corrupt(self, reason: str, events: list[Event]) -> None:
        fragment = self.fragment
        number = fragment.fragment_number if fragment is not None else None
        self.stats.corruptions += 1
        logger.warning("corrupt MKV fragment=%s: %s; skipping to the next fragment", number, reason)
        events.append(Corruption(reason, number))
        self._headers.clear()  # a header cut by the corruption may have set part of its effect
        self._stack.clear()
        self._skip = 0
        if fragment is not None:
            self._fragment_done = True  # dropped: never reported complete
        self._pos += 1
        self._resyncing = True

    def _find_next_fragment(self) -> bool:
        """Drop bytes up to the next EBML header; False when it is not in the buffer yet."""
        found = self._buf.find(EBML_MAGIC, self._pos)
        if found < 0:
            keep_from = max(self._pos, len(self._buf) - len(EBML_MAGIC) + 1)
            self.stats.bytes_skipped += keep_from - self._pos
            self._pos = keep_from
            return False
        self.stats.bytes_skipped += found - self._pos
        self._pos = found
        self._resyncing = False
        return True

    def _compact(self) -> None:
        if self._pos >= COMPACT_BYTES or self._pos == len(self._buf):
            del self._buf[: self._pos]
            self._base += self._pos
            self._pos = 0


def is_video_track(track: TrackInfo | None) -> bool:
    """A video track, or one the fragment does not describe (its blocks are taken for video)."""
    return track is None or track.track_type in (0, VIDEO_TRACK_TYPE)


def _copy(buf: bytearray, start: int, end: int) -> bytes:
    """`bytes(buf[start:end])` with one copy, not two (a frame is up to ~100 KB at 720p)."""
    with memoryview(buf) as view:
        return view[start:end].tobytes()


def _seconds(text: str | None, default: float | None) -> float | None:
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        logger.warning("timestamp tag is not a number: %r", text)
        return default


def parse_all(data: bytes, chunk_size: int = 1 << 16) -> list[Event]:
    """Every event of a whole response, fed in `chunk_size` pieces (tests, tools)."""
    parser = MkvStreamParser()
    events: list[Event] = []
    for start in range(0, len(data), chunk_size):
        events += parser.feed(data[start : start + chunk_size])
    return events + parser.close()
