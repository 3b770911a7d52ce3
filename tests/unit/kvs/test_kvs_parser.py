"""The incremental MKV parser: the same events whatever the chunking (down to one byte), frames out
before their fragment ends, end-of-stream rules, and the EBML primitives the writer shares."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kvs import ebml, mkv_writer
from kvs.mkv_writer import Packet, VideoTrack, get_media_fragment
from kvs.parser import Corruption, FragmentEnd, MkvFrame, MkvStreamParser, parse_all

KVS_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "kvs_getmedia"
TRACK = VideoTrack(codec_private=b"\x01\x64\x00\x1f", width=64, height=48)


def fragment(number: int, n_frames: int = 3, token: bool = True) -> bytes:
    packets = [Packet(pts_ms=100 * i, keyframe=i == 0, data=bytes([number, i]) * 5) for i in range(n_frames)]
    return get_media_fragment(
        TRACK,
        packets,
        fragment_number=str(number),
        producer_timestamp=1000.0 + number,
        continuation_token=str(number) if token else None,
        millis_behind_now=None if not token else 5,
    )


def summary(events: list) -> list[tuple]:
    return [
        (type(e).__name__, e.fragment.fragment_number, e.timecode_ns, e.keyframe, e.data)
        if isinstance(e, MkvFrame)
        else (
            type(e).__name__,
            e.fragment.fragment_number,
            e.fragment.continuation_token,
            e.fragment.frame_count,
        )
        if isinstance(e, FragmentEnd)
        else (type(e).__name__,)
        for e in events
    ]


def test_keyframes_only_passes_on_keyframes_and_counts_the_rest() -> None:
    # GIVEN a parser told mid-stream to pass on keyframes only (as a source does once it decodes no more)
    parser = MkvStreamParser()
    events = parser.feed(fragment(1))
    parser.keyframes_only = True
    # WHEN the next fragment (a keyframe and two other frames) arrives
    events += parser.feed(fragment(2)) + parser.close()
    # THEN the other frames of fragment 2 are counted in its meta, not passed on; indices keep their place
    frames = [(e.fragment.fragment_number, e.index, e.data) for e in events if isinstance(e, MkvFrame)]
    assert frames == [
        ("1", 0, b"\x01\x00" * 5),
        ("1", 1, b"\x01\x01" * 5),
        ("1", 2, b"\x01\x02" * 5),
        ("2", 0, b"\x02\x00" * 5),
    ]
    ends = [
        (e.fragment.frame_count, e.fragment.frames_skipped_nonkey)
        for e in events
        if isinstance(e, FragmentEnd)
    ]
    assert ends == [(3, 0), (3, 2)]


@pytest.mark.parametrize("switch_to", [True, False], ids=["to-keyframes-only", "to-every-frame"])
def test_a_mode_change_within_a_fragment_applies_from_the_next_fragment(switch_to: bool) -> None:
    # GIVEN a parser in one mode that has read fragment 1 up to its keyframe
    parser = MkvStreamParser(keyframes_only=not switch_to)
    data = fragment(1, n_frames=6) + fragment(2, n_frames=6)
    cut = data.index(b"\x01\x00" * 5) + 10  # just past the keyframe's data
    events = parser.feed(data[:cut])
    # WHEN the mode changes there (a source that just learnt its decode mode), and the rest arrives
    parser.keyframes_only = switch_to
    events += parser.feed(data[cut:]) + parser.close()
    # THEN fragment 1 is read whole in its first mode (never some of its P-frames without the
    # others), fragment 2 in the new one
    frames = [(e.fragment.fragment_number, e.index) for e in events if isinstance(e, MkvFrame)]
    every, keyframe = [0, 1, 2, 3, 4, 5], [0]
    first, second = (every, keyframe) if switch_to else (keyframe, every)
    assert frames == [("1", i) for i in first] + [("2", i) for i in second]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_any_chunking_gives_the_same_events(chunk: int) -> None:
    data = fragment(1) + fragment(2)
    assert summary(parse_all(data, chunk)) == [
        ("MkvFrame", "1", 0, True, b"\x01\x00" * 5),
        ("MkvFrame", "1", 100_000_000, False, b"\x01\x01" * 5),
        ("MkvFrame", "1", 200_000_000, False, b"\x01\x02" * 5),
        ("FragmentEnd", "1", "1", 3),
        ("MkvFrame", "2", 0, True, b"\x02\x00" * 5),
        ("MkvFrame", "2", 100_000_000, False, b"\x02\x01" * 5),
        ("MkvFrame", "2", 200_000_000, False, b"\x02\x02" * 5),
        ("FragmentEnd", "2", "2", 3),
    ]


def test_a_frame_comes_out_as_soon_as_its_bytes_are_in() -> None:
    data = fragment(1)
    parser = MkvStreamParser()
    first_block_end = data.find(b"\x01\x00" * 5) + 10
    events = parser.feed(data[:first_block_end])
    assert summary(events) == [("MkvFrame", "1", 0, True, b"\x01\x00" * 5)]
    assert parser.fragment is not None and parser.fragment.fragment_number == "1"


def test_fragment_without_end_tags_completes_at_the_next_fragment_or_a_clean_end() -> None:
    parser = MkvStreamParser()
    events = parser.feed(fragment(1, token=False))
    assert [type(e).__name__ for e in events] == ["MkvFrame"] * 3  # not known complete yet
    events = parser.feed(fragment(2, token=False)[:40])
    assert summary(events)[-1] == ("FragmentEnd", "1", None, 3)
    parser = MkvStreamParser()
    parser.feed(fragment(3, token=False))
    assert summary(parser.close()) == [("FragmentEnd", "3", None, 3)]


def test_a_response_cut_inside_an_element_leaves_the_fragment_incomplete() -> None:
    parser = MkvStreamParser()
    data = fragment(1, token=False)
    parser.feed(data[:-3])
    assert parser.close() == []


def test_garbage_is_skipped_to_the_next_fragment_and_counted() -> None:
    events = parse_all(fragment(1) + b"\x00\x00garbage" + fragment(2), 5)
    assert [e for e in events if isinstance(e, Corruption)] == [
        Corruption("invalid variable-length integer (0x00) at byte 460", None)
    ]
    assert [e.fragment.fragment_number for e in events if isinstance(e, FragmentEnd)] == ["1", "2"]


@pytest.mark.parametrize(
    ("data", "keep", "expected"),
    [
        (b"\x81", False, (1, 1)),
        (b"\x40\x02", False, (2, 2)),
        (b"\x1a\x45\xdf\xa3", True, (ebml.EBML, 4)),
        (b"\x01\xff\xff\xff\xff\xff\xff\xff", False, (ebml.UNKNOWN_SIZE, 8)),
        (b"\x40", False, None),
    ],
)
def test_read_vint(data: bytes, keep: bool, expected: tuple[int, int] | None) -> None:
    assert ebml.read_vint(data, 0, keep_marker=keep) == expected


@pytest.mark.parametrize("size", [0, 1, 126, 127, 16382, 16383, 1 << 30])
def test_encode_size_round_trips(size: int) -> None:
    encoded = ebml.encode_size(size)
    assert ebml.read_vint(encoded, 0, keep_marker=False) == (size, len(encoded))


def test_recorded_response_byte_by_byte() -> None:
    path = KVS_DATA / "test_mixed_tags.mkv"
    if not path.is_file():
        pytest.skip(f"recorded GetMedia response not available: {path}")
    data = path.read_bytes()
    assert summary(parse_all(data, 1)) == summary(parse_all(data, len(data)))


# -- keyframes-only fast path (MkvStreamParser._skip_nonkey_blocks) --------------------------------


class GeneralPathParser(MkvStreamParser):
    """The parser with its fast path for non-key blocks turned off: every block goes through `_step`."""

    def _skip_nonkey_blocks(self) -> None:
        pass


def block(header: bytes, size: int = 12) -> bytes:
    return ebml.element(ebml.SIMPLE_BLOCK, header + bytes(size))


def crafted_fragment(number: int, blocks: list[bytes], *, cluster_size: int | None = None) -> bytes:
    """A GetMedia fragment whose Cluster holds `blocks` as given (of unknown size, or declaring
    `cluster_size` bytes of its body short of / past the real ones); track 2 is audio, 3 undescribed."""
    audio = ebml.element(
        ebml.TRACKS,
        ebml.element(
            ebml.TRACK_ENTRY, ebml.uint_element(ebml.TRACK_NUMBER, 2) + ebml.uint_element(ebml.TRACK_TYPE, 2)
        ),
    )
    body = ebml.uint_element(ebml.TIMECODE, 0) + b"".join(blocks)
    size = ebml.UNKNOWN_SIZE if cluster_size is None else len(body) + cluster_size
    cluster = ebml.encode_id(ebml.CLUSTER) + ebml.encode_size(size) + body
    return (
        mkv_writer.ebml_header()
        + mkv_writer.segment_start()
        + mkv_writer.info()
        + mkv_writer.tracks(TRACK)
        + audio
        + mkv_writer.tags({"AWS_KINESISVIDEO_FRAGMENT_NUMBER": str(number)})
        + cluster
        + mkv_writer.tags({"AWS_KINESISVIDEO_CONTINUATION_TOKEN": str(number)})
    )


KEY, NONKEY = b"\x81\x00\x00\x80", b"\x81\x00\x01\x00"
ODD_FRAGMENTS = [
    # other tracks: audio (2) is passed on, an undescribed track (3) is taken for video
    crafted_fragment(
        11,
        [
            block(KEY),
            block(NONKEY),
            block(b"\x82\x00\x02\x00"),
            block(NONKEY),
            block(b"\x83\x00\x03\x00"),
            block(NONKEY, 0),
        ],
    ),
    # laced (unsupported), 2-byte track vint, track vint 0xFF (reserved: read as unknown), key again
    crafted_fragment(
        12,
        [
            block(KEY),
            block(NONKEY),
            block(b"\x81\x00\x04\x02"),
            block(NONKEY),
            block(b"\x40\x01\x00\x05\x00"),
            block(b"\xff\x00\x06\x00"),
            block(KEY),
            block(NONKEY),
        ],
    ),
    # size vints of 1, 2 and 3 bytes, and one padded to 8 bytes; a Cluster of known size
    crafted_fragment(
        13,
        [
            block(KEY),
            block(NONKEY, 100),
            block(NONKEY, 200),
            block(NONKEY, 20_000),
            ebml.encode_id(ebml.SIMPLE_BLOCK) + ebml.encode_size(10, 8) + NONKEY + bytes(6),
            block(NONKEY),
        ],
        cluster_size=0,
    ),
    # corrupt: a block too short for its header, then a 1-byte size of all ones (unknown size)
    crafted_fragment(14, [block(KEY), block(NONKEY), ebml.element(ebml.SIMPLE_BLOCK, b"\x81\x00")]),
    crafted_fragment(15, [block(KEY), block(NONKEY), ebml.encode_id(ebml.SIMPLE_BLOCK) + b"\xff" + NONKEY]),
    # a non-key block that overruns its Cluster
    crafted_fragment(16, [block(KEY), block(NONKEY), block(NONKEY)], cluster_size=-3),
]


def writer_fragments(count: int, seed: int) -> bytes:
    """Fragments as mkv_writer writes them: 1 keyframe + non-key frames of sizes that take 1-3 size bytes."""
    rng = random.Random(seed)
    out = b""
    for number in range(count):
        packets = [
            Packet(pts_ms=33 * i, keyframe=i == 0, data=rng.randbytes(rng.choice([0, 5, 120, 3000, 20_000])))
            for i in range(rng.randint(1, 30))
        ]
        out += get_media_fragment(
            TRACK,
            packets,
            fragment_number=str(number),
            producer_timestamp=1000.0 + number,
            continuation_token=str(number),
        )
    return out


def parse_chunked(parser: MkvStreamParser, data: bytes, seed: int) -> tuple[list[tuple], list[tuple], dict]:
    """(events, per-fragment counters at its end, stats) of `data` fed in random chunks of 1..5000 bytes."""
    rng = random.Random(seed)
    events, pos = [], 0
    while pos < len(data):
        size = rng.choice([1, rng.randint(1, 64), rng.randint(1, 5000)])
        events += parser.feed(data[pos : pos + size])
        pos += size
    events += parser.close()
    counters = [
        (e.fragment.fragment_number, e.fragment.frame_count, e.fragment.frames_skipped_nonkey)
        for e in events
        if isinstance(e, FragmentEnd)
    ]
    frames = [
        ("MkvFrame", e.fragment.fragment_number, e.index, e.track, e.timecode_ns, e.keyframe, e.data)
        if isinstance(e, MkvFrame)
        else (type(e).__name__, getattr(e, "reason", None))
        for e in events
    ]
    return frames, counters, vars(parser.stats)


@pytest.mark.parametrize("seed", range(6))
def test_keyframes_only_fast_path_matches_the_general_path(seed: int) -> None:
    # GIVEN fragments from mkv_writer and crafted odd ones (other tracks, laced, long vints, corrupt blocks)
    data = writer_fragments(8, seed) + b"".join(ODD_FRAGMENTS) + b"garbage" + writer_fragments(3, seed + 100)
    # WHEN keyframes-only parsers with and without the fast path read it in the same random chunks
    fast = parse_chunked(MkvStreamParser(keyframes_only=True), data, seed)
    general = parse_chunked(GeneralPathParser(keyframes_only=True), data, seed)
    # THEN events (frames, corruptions, fragment ends), per-fragment counters and stats are the same
    assert fast == general
    assert [e[1].split(" at byte")[0] for e in fast[0] if e[0] == "Corruption"] == [
        "truncated block header",
        "element 0xA3 of impossible size",
        "element 0xA3 overruns its parent",
    ]


@pytest.mark.parametrize("seed", range(3))
def test_keyframes_only_is_the_full_parse_filtered(seed: int) -> None:
    # GIVEN mkv_writer fragments (one video track)
    data = writer_fragments(10, seed)
    # WHEN parsed keyframes-only (fast path) and in full, in random chunks
    fast_frames, fast_counters, fast_stats = parse_chunked(MkvStreamParser(keyframes_only=True), data, seed)
    all_frames, all_counters, all_stats = parse_chunked(MkvStreamParser(), data, seed + 1)
    # THEN keyframes-only passes on the keyframes of the full parse and counts the others per fragment
    assert fast_frames == [e for e in all_frames if e[0] != "MkvFrame" or e[5]]
    skipped: dict[str, int] = {}
    for e in all_frames:
        if e[0] == "MkvFrame" and not e[5]:
            skipped[e[1]] = skipped.get(e[1], 0) + 1
    assert fast_counters == [(number, count, skipped.get(number, 0)) for number, count, _ in all_counters]
    assert fast_stats == all_stats


def test_keyframes_only_reads_non_key_blocks_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN fragments of 1 keyframe + 29 non-key frames, and a count of blocks that reach `_block`
    packets = [Packet(pts_ms=33 * i, keyframe=i == 0, data=bytes(1500)) for i in range(30)]
    data = b"".join(
        get_media_fragment(
            TRACK, packets, fragment_number=str(n), producer_timestamp=1000.0 + n, continuation_token=str(n)
        )
        for n in range(3)
    )
    calls = []
    original = MkvStreamParser._block
    monkeypatch.setattr(
        MkvStreamParser,
        "_block",
        lambda self, *args: calls.append(args[3] - args[2]) or original(self, *args),
    )
    # WHEN parsed keyframes-only in one piece
    parser = MkvStreamParser(keyframes_only=True)
    parser.feed(data)
    # THEN only the keyframes (4 + 1500 bytes) went through `_block`; all 90 blocks were counted
    assert (calls, parser.stats.frames) == ([1504] * 3, 90)


class NoReplayParser(MkvStreamParser):
    """The parser that reads every header element of every fragment, repeated or not."""

    def _replay(self, element_id: int, raw: bytes, events: list) -> bool:
        return False


def with_tracks(events: list) -> list[tuple]:
    """Events as tuples, each fragment end with what its headers said (tracks, timecode scale)."""
    return [
        (
            type(e).__name__,
            e.fragment.fragment_number,
            e.fragment.timecode_scale_ns,
            sorted(e.fragment.tracks.items()),
        )
        if isinstance(e, FragmentEnd)
        else (type(e).__name__, e.fragment.fragment_number, e.index, e.track, e.timecode_ns, e.data)
        if isinstance(e, MkvFrame)
        else (type(e).__name__,)
        for e in events
    ]


@pytest.mark.parametrize("seed", range(4))
def test_repeated_headers_are_replayed_with_the_same_events(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a stream whose camera changes resolution and back (new Tracks, then the old ones again),
    # with a corrupt fragment in between, then the recorded KVS responses (SeekHead, Info, Tracks)
    wide = VideoTrack(codec_private=b"\x01\x64\x00\x28", width=1280, height=720)
    packets = [Packet(pts_ms=33 * i, keyframe=i == 0, data=bytes([i]) * 40) for i in range(3)]

    def fragments(track: VideoTrack, first: int, count: int) -> bytes:
        return b"".join(
            get_media_fragment(track, packets, fragment_number=str(n), producer_timestamp=1000.0 + n)
            for n in range(first, first + count)
        )

    data = (
        fragments(TRACK, 0, 3) + fragments(wide, 3, 2) + b"garbage" + fragments(TRACK, 5, 2)
        + (KVS_DATA / "output_get_media.mkv").read_bytes() + (KVS_DATA / "test_mixed_tags.mkv").read_bytes()
    )
    replayed: list[int] = []
    original = MkvStreamParser._replay
    monkeypatch.setattr(
        MkvStreamParser,
        "_replay",
        lambda self, element_id, raw, events: original(self, element_id, raw, events)
        and not replayed.append(element_id),
    )
    # WHEN it is parsed with and without replaying repeated headers, in the same random chunks
    rng_a, rng_b = random.Random(seed), random.Random(seed)

    def parse(parser: MkvStreamParser, rng: random.Random) -> list:
        events, pos = [], 0
        while pos < len(data):
            size = rng.choice([1, rng.randint(1, 64), rng.randint(1, 5000)])
            events += parser.feed(data[pos : pos + size])
            pos += size
        return events + parser.close()

    fast, full = parse(MkvStreamParser(), rng_a), parse(NoReplayParser(), rng_b)
    # THEN the events and what each fragment's headers said are the same, resolution changes included
    assert with_tracks(fast) == with_tracks(full)
    sizes = [
        sorted((t.width, t.height) for t in e.fragment.tracks.values()) for e in fast if isinstance(e, FragmentEnd)
    ]
    assert sizes[:7] == [[(64, 48)]] * 3 + [[(1280, 720)]] * 2 + [[(64, 48)]] * 2
    # and repeated headers were replayed (EBML header and Tracks at least), not parsed again
    assert {ebml.EBML, ebml.TRACKS} <= set(replayed)
