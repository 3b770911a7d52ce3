"""The KVS reader on real bytes through real HTTP: recorded GetMedia responses (AWS's own test
resources, in ../shared) and fragments built here from real H.264, served by the local KVS twin in
chunks cut at random bytes; boto3's `kinesisvideo` + `kinesis-video-media` clients do the calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from synthetic_video import render_scene

from kvs import ebml
from kvs.ebml import uint_element
from kvs.local_media import EBML_MAGIC, LocalKvsMedia, split_fragments, twin_process
from kvs.mkv_writer import (
    Packet,
    VideoTrack,
    encode_h264,
    fragments_by_keyframe,
    get_media_fragment,
    simple_block,
)
from kvs.parser import Corruption, FragmentEnd, FragmentMeta, MkvFrame
from kvs.reader import (
    NOW_SKEW_S,
    EndpointCache,
    FragmentSkipped,
    GetMediaReader,
    StartSelector,
    StartSelectorType,
)
from worker.checkpoints import Checkpoint, FragmentProgress
from worker.kvs_source import KvsSource, checkpoint_callbacks
from worker.sources import Frame, SourceError

KVS_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "kvs_getmedia"
EARLIEST = StartSelector(StartSelectorType.EARLIEST)
BASE_NUMBER = 91343852333181432392682062607743920146159100000
T0 = 1_764_000_000.0


def recorded(name: str) -> bytes:
    path = KVS_DATA / name
    if not path.is_file():
        pytest.skip(f"recorded GetMedia response not available: {path} (shared data folder absent)")
    return path.read_bytes()


@pytest.fixture
def kvs(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalKvsMedia]:
    with LocalKvsMedia(seed=7) as media:
        for key, value in media.env().items():
            monkeypatch.setenv(key, value)
        yield media


def built_stream(
    n_fragments: int,
    *,
    size: tuple[int, int] = (144, 256),
    first: int = 0,
    seed: int = 0,
    server_timestamp: float | None = None,
):
    """(track, fragments as GetMedia bytes, packets per fragment): 10 fps, one fragment per second;
    `server_timestamp`: when KVS took in the first (default: its producer timestamp)."""
    frames = render_scene(
        10 * n_fragments, height=size[0], width=size[1], intruder=(3, 10 * n_fragments - 3), seed=seed
    )
    track, packets = encode_h264(frames, fps=10, gop=10)
    groups = list(fragments_by_keyframe(packets))
    fragments = []
    for i, group in enumerate(groups):
        number = str(BASE_NUMBER + first + i)
        fragments.append(
            get_media_fragment(
                track,
                [Packet(p.pts_ms + 1000 * first, p.keyframe, p.data) for p in group],
                fragment_number=number,
                producer_timestamp=T0 + first + i,
                server_timestamp=None if server_timestamp is None else server_timestamp + i,
                continuation_token=number,
            )
        )
    return track, fragments, groups


def read_all(reader: GetMediaReader, stop_after_fragments: int) -> tuple[list[MkvFrame], list[FragmentMeta]]:
    frames, ends = [], []
    for event in reader.events():
        if isinstance(event, MkvFrame):
            frames.append(event)
        elif isinstance(event, FragmentEnd):
            ends.append(event.fragment)
            if len(ends) == stop_after_fragments:
                reader.stop_event.set()
    return frames, ends


def make_reader(stream: str, **kwargs: object) -> GetMediaReader:
    kwargs.setdefault("start", EARLIEST)
    return GetMediaReader(stream, endpoints=EndpointCache(), backoff_base_s=0.01, **kwargs)  # type: ignore[arg-type]


def read_source(
    kvs: LocalKvsMedia, stream: str, fragments: list[bytes], *, fragments_read: int, **source_kwargs: object
) -> tuple[KvsSource, list[Frame], list[FragmentMeta]]:
    """`fragments` served as `stream` and read by a `KvsSource` (from EARLIEST unless `start` is given)
    until `fragments_read` fragments are complete: the source, its frames, and the fragments' metas
    in the order `on_fragment` saw them."""
    for fragment in fragments:
        kvs.stream(stream).add_fragment(fragment)
    stop = threading.Event()
    metas: list[FragmentMeta] = []
    source_kwargs.setdefault("start", EARLIEST)
    source = KvsSource(
        stream,
        stop_event=stop,
        endpoints=EndpointCache(),
        on_fragment=lambda meta: (metas.append(meta), len(metas) == fragments_read and stop.set()),
        **source_kwargs,  # type: ignore[arg-type]
    )
    with source:
        frames = list(source.frames())
    return source, frames, metas


# -- recorded responses --------------------------------------------------------------------------

OUTPUT_GET_MEDIA = [
    ("91343852333181432392682062607743920146159169392", 1511852108.513, 60),
    ("91343852333181432397633822764885441725874549018", 1511852110.513, 60),
    ("91343852333181432402585582922026963247510532162", 1511852112.513, 60),
    ("91343852333181432407537343079168484595829378270", 1511852114.513, 60),
    ("91343852333181432412489103236310005892133364608", 1511852116.513, 60),
]


def test_recorded_response_read_in_random_chunks_gives_the_fragment_table(kvs: LocalKvsMedia) -> None:
    # GIVEN the recorded 5-fragment response served in chunks of 1..3000 bytes cut at any byte
    stream = kvs.stream("recorded")
    stream.chunk_range = (1, 3000)
    for fragment in split_fragments(recorded("output_get_media.mkv")):
        stream.add_fragment(fragment)
    # WHEN the reader reads it from EARLIEST
    frames, ends = read_all(make_reader("recorded"), 5)
    # THEN the fragments, producer timestamps, tokens and frame counts are those of the README table
    assert [(m.fragment_number, m.producer_timestamp, m.frame_count) for m in ends] == OUTPUT_GET_MEDIA
    assert [m.continuation_token for m in ends] == [number for number, _, _ in OUTPUT_GET_MEDIA]
    assert [m.fragment_number for m in ends] == [f.number for f in stream.fragments]  # the stub's own reading
    assert len(frames) == 300
    assert sum(frame.keyframe for frame in frames) == 5
    assert {(t.codec_id, t.width, t.height) for m in ends for t in m.tracks.values()} == {
        ("V_MPEG4/ISO/AVC", 640, 360)
    }
    assert stream.requests == [{"StartSelectorType": "EARLIEST"}]
    assert kvs.endpoint_calls == 1


def test_recorded_h264_decodes_keyframes_only_when_sampling_allows(kvs: LocalKvsMedia) -> None:
    # GIVEN the recorded stream (one keyframe per 2 s fragment) and a camera analysed at 0.5 fps
    recording = split_fragments(recorded("output_get_media.mkv"))
    # WHEN its frames are read
    source, frames, metas = read_source(kvs, "recorded", recording, fragments_read=5, sample_fps=0.5)
    read = [meta.fragment_number for meta in metas]
    # THEN one frame per fragment, decoded from the keyframe alone once the interval is known
    assert [(f.fragment_number, f.captured_at.timestamp(), f.image.shape, f.keyframe) for f in frames] == [
        (number, producer, (360, 640, 3), True) for number, producer, _ in OUTPUT_GET_MEDIA
    ]
    assert read == [number for number, _, _ in OUTPUT_GET_MEDIA]
    assert source.stats.keyframes_only is True
    # from the second keyframe on, P-frames are never handed to the decoder; before it (interval not
    # known yet) they waited for one of them to be due, none was, and none was decoded either
    assert (source.stats.frames_skipped_nonkey, source.stats.frames_skipped_unsampled) == (4 * 59, 59)
    assert source.stats.frames_decoded == 5


def test_mjpeg_fragments_with_invalid_packets_are_counted_not_fatal(kvs: LocalKvsMedia) -> None:
    # GIVEN the recorded MJPEG stream with custom tags whose packets FFmpeg rejects
    recording = split_fragments(recorded("test_mixed_tags.mkv"))
    # WHEN it is read
    source, frames, metas = read_source(
        kvs, "mixed", recording, fragments_read=10, sample_fps=5.0, keyframes_only=False
    )
    # THEN every fragment is read, every bad packet counted, no frame comes out, nothing raises
    assert frames == []
    assert len(metas) == 10
    assert [m.frame_count for m in metas] == [10] * 10
    assert source.stats.decode_errors == 100
    assert metas[0].tags["testTag_0"] == "testTag_0_Value"
    assert [m.producer_timestamp for m in metas] == [5.0 * i for i in range(10)]


def test_fragment_with_tags_and_no_frames_is_read_and_checkpointable(kvs: LocalKvsMedia) -> None:
    # GIVEN the recorded response of one fragment with tags and no frames
    kvs.stream("empty").add_fragment(recorded("empty-mkv-with-tags.mkv"))
    # WHEN it is read
    frames, ends = read_all(make_reader("empty"), 1)
    # THEN it is one complete fragment of no frames, with its number and timestamps
    assert frames == []
    assert [(m.fragment_number, m.producer_timestamp, m.server_timestamp, m.frame_count) for m in ends] == [
        ("91343852338378294813695855977007281634605393997", 1515865326.543, 1516124526.822, 0)
    ]


# -- built fragments of real H.264 ----------------------------------------------------------------


def test_disconnect_mid_fragment_resumes_with_the_continuation_token(kvs: LocalKvsMedia) -> None:
    # GIVEN 4 fragments, and connections that break in the middle of the 2nd and of the 4th
    _, fragments, groups = built_stream(4)
    stream = kvs.stream("cam-1")
    for fragment in fragments:
        stream.add_fragment(fragment)
    sizes = [len(f) for f in fragments]
    stream.break_after = [sizes[0] + sizes[1] * 9 // 10, sizes[1] + sizes[2] + sizes[3] * 9 // 10]
    # WHEN the reader reads through both breaks
    reader = make_reader("cam-1")
    frames, ends = read_all(reader, 4)
    # THEN every frame arrives exactly once, in order, and the reconnects used the token
    assert [f.timecode_ns // 1_000_000 for f in frames] == [p.pts_ms for group in groups for p in group]
    assert [m.fragment_number for m in ends] == [str(BASE_NUMBER + i) for i in range(4)]
    assert stream.requests == [
        {"StartSelectorType": "EARLIEST"},
        {"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": str(BASE_NUMBER)},
        {"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": str(BASE_NUMBER + 2)},
    ]
    assert reader.stats.frames_replayed_skipped > 0
    assert reader.stats.connection_errors == 2


def test_throttled_get_media_backs_off_and_reads_everything(kvs: LocalKvsMedia) -> None:
    # GIVEN a stream whose next two GetMedia calls are refused with ClientLimitExceededException
    _, fragments, _ = built_stream(2)
    stream = kvs.stream("cam-1")
    for fragment in fragments:
        stream.add_fragment(fragment)
    stream.throttle_next = 2
    # WHEN it is read
    reader = make_reader("cam-1")
    frames, ends = read_all(reader, 2)
    # THEN the reader waited twice and lost nothing; GetDataEndpoint was asked once
    assert (reader.stats.throttled, len(frames), len(ends), kvs.endpoint_calls) == (2, 20, 2, 1)


def test_corrupt_cluster_is_skipped_and_counted(kvs: LocalKvsMedia) -> None:
    # GIVEN 3 fragments, the middle one's cluster broken in its 4th block header
    _, fragments, groups = built_stream(3)
    middle = bytearray(fragments[1])
    cluster_at = middle.find(b"\x1f\x43\xb6\x75")
    group = groups[1]
    fourth_block = (
        cluster_at
        + 12
        + len(uint_element(ebml.TIMECODE, group[0].pts_ms))
        + sum(len(simple_block(p.pts_ms - group[0].pts_ms, p.keyframe, p.data)) for p in group[:3])
    )
    assert middle[fourth_block] == ebml.SIMPLE_BLOCK
    middle[fourth_block : fourth_block + 2] = b"\x00\x00"  # not a valid element id
    # WHEN it is read (until the last fragment)
    source, frames, metas = read_source(
        kvs, "cam-1", [fragments[0], bytes(middle), fragments[2]], fragments_read=2, sample_fps=10.0
    )
    read = [meta.fragment_number for meta in metas]
    # THEN the corrupt fragment is dropped (counted), the others are read whole
    assert read == [str(BASE_NUMBER), str(BASE_NUMBER + 2)]
    assert source.stats.fragments_corrupt == 1
    by_fragment = {
        n: [f for f in frames if f.fragment_number == n] for n in {f.fragment_number for f in frames}
    }
    assert len(by_fragment[str(BASE_NUMBER)]) == len(by_fragment[str(BASE_NUMBER + 2)]) == 10


def test_full_decoding_stops_at_each_gops_last_sampled_frame(kvs: LocalKvsMedia) -> None:
    # GIVEN 3 one-second fragments at 10 fps, sampled at 2 fps with every block decodable
    track, fragments, groups = built_stream(3)
    # WHEN it is read
    source, frames, _ = read_source(kvs, "cam-1", fragments, fragments_read=3, sample_fps=2.0, keyframes_only=False)
    # THEN frames 0 and 5 of each GOP come out, pixel for pixel as a decoder fed every block gives
    # them, and the blocks after frame 5 were never decoded
    context = av.CodecContext.create("h264", "r")
    context.extradata = track.codec_private
    reference = [p.to_ndarray(format="rgb24") for g in groups for k in g for p in context.decode(av.Packet(k.data))]
    reference += [p.to_ndarray(format="rgb24") for p in context.decode(None)]
    assert [round(f.pts_s - T0, 3) for f in frames] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert all(np.array_equal(f.image, reference[i]) for f, i in zip(frames, [0, 5, 10, 15, 20, 25], strict=True))
    assert (source.stats.frames_decoded, source.stats.frames_skipped_unsampled) == (3 * 6, 3 * 4)


def test_resolution_change_mid_stream_reopens_the_decoder(kvs: LocalKvsMedia) -> None:
    # GIVEN 2 fragments at 256x144, then 2 at 320x176 (a new CodecPrivate)
    _, small, _ = built_stream(2)
    _, large, _ = built_stream(2, size=(176, 320), first=2, seed=1)
    # WHEN it is read
    source, frames, _ = read_source(kvs, "cam-1", small + large, fragments_read=4, sample_fps=2.0)
    shapes = [(f.fragment_number[-1], f.image.shape) for f in frames]
    # THEN frames come out at each resolution in turn, nothing lost to the switch
    assert (
        shapes
        == [("0", (144, 256, 3))] * 2
        + [("1", (144, 256, 3))] * 2
        + [("2", (176, 320, 3))] * 2
        + [("3", (176, 320, 3))] * 2
    )
    assert source.decoder.reopened == 2
    assert source.stats.decode_errors == 0


@pytest.mark.timeout(60)
def test_silent_camera_is_reported_not_fatal_and_its_first_fragment_is_not_missed(kvs: LocalKvsMedia) -> None:
    # GIVEN a stream that exists but sends nothing (each session ends empty), read from NOW
    stream = kvs.stream("quiet")
    stream.follow_s = 0.05
    stop = threading.Event()
    began = time.time()
    reader = make_reader(
        "quiet", start=StartSelector(), stop_event=stop, silent_after_s=0.2, backoff_cap_s=0.3,
        wall_clock=lambda: began,
    )

    def camera_returns() -> None:
        # The silent period is counted once; wait on the counter (a busy machine must not turn
        # this into a hang). Then the camera sends one fragment, stamped by KVS as it arrives:
        # most likely while the reader waits between two polls, when no session is open.
        while not stop.wait(0.02) and reader.stats.silent_periods < 1:
            pass
        _, fragments, _ = built_stream(1, server_timestamp=time.time())
        stream.add_fragment(fragments[0])

    watcher = threading.Thread(target=camera_returns)
    watcher.start()
    # WHEN the reader waits, and the camera then sends its fragment
    frames, ends = read_all(reader, 1)
    stop.set()
    watcher.join()
    # THEN it was reported silent, kept polling, and read that one fragment: after its first NOW
    # session every reconnect asked for what arrived since that session began (not NOW again)
    assert reader.stats.silent_periods >= 1
    assert (len(frames), len(ends)) == (10, 1)
    assert stream.requests[0] == {"StartSelectorType": "NOW"}
    since = began - NOW_SKEW_S
    assert len(stream.requests) > 1
    assert all(
        r["StartSelectorType"] == "SERVER_TIMESTAMP" and float(r["StartTimestamp"]) == pytest.approx(since)
        for r in stream.requests[1:]
    )


def test_unknown_stream_fails_fast_with_one_line(kvs: LocalKvsMedia) -> None:
    source = KvsSource("nope", sample_fps=1.0, endpoints=EndpointCache())
    with pytest.raises(
        SourceError, match=r"^cannot open KVS stream nope: ResourceNotFoundException: stream nope not found$"
    ):
        source.open()


def test_frames_carry_producer_time_and_fragment(kvs: LocalKvsMedia) -> None:
    # GIVEN 2 built fragments with producer timestamps T0, T0 + 1
    _, fragments, _ = built_stream(2)
    second = StartSelector(StartSelectorType.PRODUCER_TIMESTAMP, timestamp=np.datetime64(int(T0 + 1), "s").item())
    # WHEN read from the second fragment's producer timestamp
    _, frames, _ = read_source(kvs, "cam-1", fragments, fragments_read=1, sample_fps=5.0, start=second)
    # THEN 5 frames of fragment 2, 0.2 s apart from its producer timestamp
    assert [(f.fragment_number, round(f.pts_s - T0, 3)) for f in frames] == [
        (str(BASE_NUMBER + 1), round(1 + 0.2 * i, 3)) for i in range(5)
    ]
    assert isinstance(frames[0], object) and VideoTrack  # the writer's types are public


# -- the twin in a process of its own (as the worker benchmark runs it) ---------------------------


def test_twin_process_serves_a_recording_and_ends_with_its_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 3 built fragments and a 4th whose frame holds the EBML id (as video data can: long
    # recordings have it), recorded one after another
    track, fragments, _ = built_stream(3)
    number = str(BASE_NUMBER + 3)
    frame = Packet(pts_ms=3000, keyframe=True, data=b"\x00" + EBML_MAGIC + b"\x00")
    fragments.append(
        get_media_fragment(
            track, [frame], fragment_number=number, producer_timestamp=T0 + 3, continuation_token=number
        )
    )
    recording = tmp_path / "get_media.mkv"
    recording.write_bytes(b"".join(fragments))
    assert [len(f) for f in split_fragments(recording.read_bytes())] == [len(f) for f in fragments]
    # WHEN `python -m kvs.local_media` serves it and the reader reads from EARLIEST
    with twin_process({"cam-1": recording}, "--chunk-bytes", "1", "999") as twin:
        line, url = twin.announced, twin.url
        monkeypatch.setenv("AWS_ENDPOINT_URL_KINESIS_VIDEO", url)
        frames, ends = read_all(make_reader("cam-1"), 4)
    returncode = twin.process.returncode  # THEN the twin ended when its stdin closed
    assert line == f"serving {url} (cam-1: 4 fragments)\n"
    assert [m.fragment_number for m in ends] == [str(BASE_NUMBER + i) for i in range(4)]
    assert len(frames) == 31 and frames[-1].data == frame.data
    assert returncode == 0


# -- a last fragment that stays corrupt or cut short (issue 20) -----------------------------------

FOR_S = 2.0
BACKOFF_BASE_S = 0.1


def block_offset(fragment: bytes, block: int) -> int:
    """Byte offset of the header of the fragment's `block`-th SimpleBlock (0-based)."""
    at = fragment.find(ebml.encode_id(ebml.CLUSTER))
    got = ebml.read_vint(fragment, at + 4, keep_marker=False)
    assert got is not None
    pos, seen = at + 4 + got[1], 0
    while True:
        element, id_len = ebml.read_vint(fragment, pos, keep_marker=True) or (0, 0)
        size, size_len = ebml.read_vint(fragment, pos + id_len, keep_marker=False) or (0, 0)
        if element == ebml.SIMPLE_BLOCK:
            if seen == block:
                return pos
            seen += 1
        pos += id_len + size_len + size


def most_connections(seconds: float, base_s: float) -> int:
    """GetMedia calls a reader can make in `seconds` when only the first session brought something
    new: 2 at once, then one after each backoff (attempt n waits at least base * 2**n / 2)."""
    backoffs, waited = 0, base_s / 2
    while waited <= seconds:
        backoffs += 1
        waited += base_s * 2**backoffs / 2
    return 2 + backoffs


def recorded_events(reader: GetMediaReader) -> list[object]:
    """Every event the reader passes on, recorded as its consumer takes it."""
    seen: list[object] = []
    events = reader.events

    def recording() -> Iterator[object]:
        for event in events():
            seen.append(event)
            yield event

    reader.events = recording  # type: ignore[method-assign]
    return seen


def test_persistently_corrupt_last_fragment_backs_off_and_is_given_up_once(kvs: LocalKvsMedia) -> None:
    # GIVEN the recorded 5-fragment response, 932 bytes zeroed inside the last fragment's cluster
    # (from its 37th block header on: 36 frames of it are whole), nothing after it
    recording = split_fragments(recorded("output_get_media.mkv"))
    last = bytearray(recording[-1])
    at = block_offset(recording[-1], 36)
    last[at : at + 932] = bytes(932)
    stream = kvs.stream("corrupt")
    for fragment in [*recording[:-1], bytes(last)]:
        stream.add_fragment(fragment)
    number = OUTPUT_GET_MEDIA[-1][0]
    # WHEN a reader reads it for 2 s
    stop = threading.Event()
    reader = make_reader("corrupt", stop_event=stop)
    reader.backoff_base_s = BACKOFF_BASE_S
    threading.Timer(FOR_S, stop.set).start()
    events = list(reader.events())
    # THEN every frame is passed on exactly once: all of the first 4 fragments, 36 of the last
    frames = [(e.fragment.fragment_number, e.index) for e in events if isinstance(e, MkvFrame)]
    assert frames == [(n, i) for n, _, count in OUTPUT_GET_MEDIA[:4] for i in range(count)] + [
        (number, i) for i in range(36)
    ]
    # the corruption is reported once, and the fragment given up on after 3 reads, once
    others = [e for e in events if not isinstance(e, MkvFrame)]
    assert [
        (type(e).__name__, e.fragment.fragment_number if isinstance(e, FragmentEnd) else e.fragment_number)
        for e in others
    ] == [
        *[("FragmentEnd", n) for n, _, _ in OUTPUT_GET_MEDIA[:4]],
        ("Corruption", number),
        ("FragmentSkipped", number),
    ]
    skipped = others[-1]
    assert (skipped.frames_passed, skipped.reads, skipped.fragment.frame_count) == (36, 3, 36)
    assert (reader.stats.corruptions, reader.stats.fragments_given_up, reader.last_fragment) == (1, 1, number)
    # and GetMedia was called as the backoff allows, not ~300 times a second; after giving up the
    # reader asks for what follows the fragment, not for it again
    assert 4 <= len(stream.requests) <= most_connections(FOR_S, BACKOFF_BASE_S)
    assert stream.requests[:4] == [
        {"StartSelectorType": "EARLIEST"},
        {"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": OUTPUT_GET_MEDIA[3][0]},
        {"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": OUTPUT_GET_MEDIA[3][0]},
        {"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": number},
    ]


def test_corrupt_last_fragment_is_counted_once_and_the_checkpoint_passes_it(kvs: LocalKvsMedia) -> None:
    # GIVEN the same corrupt last fragment, read by a KvsSource whose checkpoint advances as the
    # worker's does (each frame analysed as it comes)
    recording = split_fragments(recorded("output_get_media.mkv"))
    last = bytearray(recording[-1])
    at = block_offset(recording[-1], 36)
    last[at : at + 932] = bytes(932)
    for fragment in [*recording[:-1], bytes(last)]:
        kvs.stream("corrupt").add_fragment(fragment)
    stop = threading.Event()
    progress = FragmentProgress("cam-1")
    reader = make_reader("corrupt", stop_event=stop)
    reader.backoff_base_s = BACKOFF_BASE_S
    source = KvsSource(
        "corrupt", sample_fps=30.0, stop_event=stop, reader=reader, keyframes_only=False,
        **checkpoint_callbacks(progress),
    )
    # WHEN it reads for 2 s
    threading.Timer(FOR_S, stop.set).start()
    for frame in source.frames():
        progress.frame_queued(frame.fragment_number)
        progress.frame_done(frame.fragment_number)
    # THEN the fragment is counted corrupt once and skipped once, and the checkpoint passed it:
    # a restart starts after it (its 36 good frames were analysed, the rest is reported lost)
    assert (source.stats.fragments_read, source.stats.fragments_corrupt, source.stats.fragments_skipped_corrupt) == (
        4, 1, 1
    )
    assert progress.checkpoint == Checkpoint(
        camera_id="cam-1",
        fragment_number=OUTPUT_GET_MEDIA[-1][0],
        continuation_token=None,
        producer_timestamp=OUTPUT_GET_MEDIA[-1][1],
    )


def test_cut_short_last_fragment_is_passed_on_once_and_the_checkpoint_stays_before_it(
    kvs: LocalKvsMedia,
) -> None:
    # GIVEN 2 recorded fragments, the second cut short in its 21st block (its cluster declares
    # more bytes than ever arrive), nothing after it
    first, second = split_fragments(recorded("output_get_media.mkv"))[:2]
    stream = kvs.stream("cut")
    stream.add_fragment(first)
    stream.add_fragment(second[: block_offset(second, 20) + 100])
    stop = threading.Event()
    progress = FragmentProgress("cam-1")
    reader = make_reader("cut", stop_event=stop)
    reader.backoff_base_s = BACKOFF_BASE_S
    events = recorded_events(reader)
    source = KvsSource(
        "cut", sample_fps=30.0, stop_event=stop, reader=reader, keyframes_only=False,
        **checkpoint_callbacks(progress),
    )
    # WHEN a KvsSource reads it for 2 s, each frame analysed as it comes
    threading.Timer(FOR_S, stop.set).start()
    for frame in source.frames():
        progress.frame_queued(frame.fragment_number)
        progress.frame_done(frame.fragment_number)
    # THEN the 20 whole frames of the cut fragment were passed on once, however often it was read
    # again; it never ended, so the checkpoint stays on the first fragment (a restart reads the cut
    # one again from its start)
    (number_1, producer_1, count_1), (number_2, _, _) = OUTPUT_GET_MEDIA[:2]
    assert [(e.fragment.fragment_number, e.index) for e in events if isinstance(e, MkvFrame)] == [
        (number_1, i) for i in range(count_1)
    ] + [(number_2, i) for i in range(20)]
    assert [e.fragment.fragment_number for e in events if not isinstance(e, MkvFrame)] == [number_1]
    assert reader.stats.frames_replayed_skipped >= 20
    assert progress.checkpoint == Checkpoint(
        camera_id="cam-1", fragment_number=number_1, continuation_token=number_1, producer_timestamp=producer_1
    )
    assert (source.stats.fragments_read, source.stats.fragments_corrupt) == (1, 0)
    assert 3 <= len(stream.requests) <= most_connections(FOR_S, BACKOFF_BASE_S)


def test_fragment_corrupt_once_then_read_whole_passes_the_rest_on_and_is_not_given_up(kvs: LocalKvsMedia) -> None:
    # GIVEN the recorded response whose last fragment is corrupt (from its 37th block) on the first
    # read only: the twin has it whole from then on (a corruption made on the way)
    recording = split_fragments(recorded("output_get_media.mkv"))
    last = bytearray(recording[-1])
    at = block_offset(recording[-1], 36)
    last[at : at + 932] = bytes(932)
    stream = kvs.stream("once")
    for fragment in [*recording[:-1], bytes(last)]:
        stream.add_fragment(fragment)
    reader = make_reader("once")
    # WHEN it is read until the 5th fragment ends, the fragment mended as the corruption comes out
    events = []
    for event in reader.events():
        events.append(event)
        if isinstance(event, Corruption):
            stream.fragments[-1].data = recording[-1]
        if isinstance(event, FragmentEnd) and event.fragment.fragment_number == OUTPUT_GET_MEDIA[-1][0]:
            reader.stop_event.set()
    # THEN every frame is passed on once, the rest of the fragment on the re-read; it is complete
    # and never given up
    frames = [(e.fragment.fragment_number, e.index) for e in events if isinstance(e, MkvFrame)]
    assert frames == [(n, i) for n, _, count in OUTPUT_GET_MEDIA for i in range(count)]
    assert [e.fragment.fragment_number for e in events if isinstance(e, FragmentEnd)] == [
        n for n, _, _ in OUTPUT_GET_MEDIA
    ]
    assert [e for e in events if isinstance(e, FragmentSkipped)] == []
    assert (reader.stats.corruptions, reader.stats.fragments_given_up, reader.stats.frames_replayed_skipped) == (
        1, 0, 36
    )
