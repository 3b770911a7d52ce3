"""The incremental MKV parser: the same events whatever the chunking (down to one byte), frames out
before their fragment ends, end-of-stream rules, and the EBML primitives the writer shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.kvs import ebml
from worker.kvs.mkv_writer import Packet, VideoTrack, get_media_fragment
from worker.kvs.parser import Corruption, FragmentEnd, MkvFrame, MkvStreamParser, parse_all

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
    assert frames == [("1", 0, b"\x01\x00" * 5), ("1", 1, b"\x01\x01" * 5), ("1", 2, b"\x01\x02" * 5),
                      ("2", 0, b"\x02\x00" * 5)]
    ends = [(e.fragment.frame_count, e.fragment.frames_skipped_nonkey) for e in events if isinstance(e, FragmentEnd)]
    assert ends == [(3, 0), (3, 2)]


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
