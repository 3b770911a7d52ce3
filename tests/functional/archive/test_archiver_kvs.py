"""The AWS path: clips from Kinesis Video Streams archived media. The control plane
(`CreateStream`, `GetDataEndpoint`) is the moto server; the data plane (`ListFragments`, `GetClip`)
is a local HTTP server speaking the real wire protocol, which cuts real MP4 bytes (PyAV) out of a
real H.264 stream split into 1 s fragments, as KVS does. moto's own `GetClip` returns placeholder
bytes, which the archiver must refuse."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import boto3
import pytest
from moto import mock_aws

from archive.archiver import Archiver
from archive.errors import ArchiveError
from archive.kvs import KvsArchivedMedia, KvsClipSource
from archive.local_cut import probe_clip
from archive.schedule import ClipRequest
from contracts.manifest import ManifestLine

EPOCH = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
STREAM = "vigil-cam-1"


@dataclass
class StubFragment:
    number: str
    start_s: float
    duration_s: float
    packets: list[av.Packet]

    @property
    def size(self) -> int:
        return sum(p.size for p in self.packets)


@dataclass
class KvsDataPlane:
    """`ListFragments` and `GetClip` over HTTP for one stream made from an H.264 file."""

    video: Path
    missing: set[int] = field(default_factory=set)  # fragment indexes the camera never sent
    hidden_first_lists: int = 0  # the last 2 fragments are missing from the first N ListFragments
    not_found_first_clips: int = 0  # the first N GetClip calls fail: fragments not indexed yet
    calls: list[tuple[str, dict]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._container = av.open(str(self.video))
        stream = self._container.streams.video[0]
        self.time_base = stream.time_base
        self.fragments: list[StubFragment] = []
        for packet in self._container.demux(stream):
            if packet.pts is None:
                continue
            if packet.is_keyframe:
                self.fragments.append(StubFragment(str(91343852333181432392682062 + len(self.fragments)),
                                                   float(packet.pts * self.time_base), 0.0, []))
            self.fragments[-1].packets.append(packet)
        for fragment in self.fragments:
            last = fragment.packets[-1]
            fragment.duration_s = float((last.pts + last.duration) * self.time_base) - fragment.start_s
        self.stream = stream

    def present(self) -> list[StubFragment]:
        return [f for i, f in enumerate(self.fragments) if i not in self.missing]

    def list_fragments(self, body: dict) -> tuple[int, dict]:
        window = body["FragmentSelector"]["TimestampRange"]
        lo = window["StartTimestamp"] - EPOCH.timestamp()
        hi = window["EndTimestamp"] - EPOCH.timestamp()
        fragments = self.present()
        if sum(1 for name, _ in self.calls if name == "listFragments") <= self.hidden_first_lists:
            fragments = fragments[:-2]
        listed = [f for f in fragments if lo <= f.start_s <= hi]
        return 200, {"Fragments": [
            {"FragmentNumber": f.number, "FragmentSizeInBytes": f.size, "FragmentLengthInMilliseconds":
             round(f.duration_s * 1000), "ProducerTimestamp": EPOCH.timestamp() + f.start_s,
             "ServerTimestamp": EPOCH.timestamp() + f.start_s + 0.5}
            for f in reversed(listed)  # ListFragments does not sort
        ]}

    def get_clip(self, body: dict) -> tuple[int, dict | bytes]:
        if sum(1 for name, _ in self.calls if name == "getClip") <= self.not_found_first_clips:
            return 404, {"__type": "ResourceNotFoundException", "message": "No fragments found in the range"}
        window = body["ClipFragmentSelector"]["TimestampRange"]
        lo = window["StartTimestamp"] - EPOCH.timestamp()
        hi = window["EndTimestamp"] - EPOCH.timestamp()
        chosen = [f for f in self.present() if lo - 1e-6 <= f.start_s <= hi][:200]  # KVS: first 200 only
        if not chosen:
            return 404, {"__type": "ResourceNotFoundException", "message": "No fragments found in the range"}
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format="mp4") as out:
            out_stream = out.add_stream_from_template(self.stream)
            offset = chosen[0].packets[0].pts
            for fragment in chosen:  # a hole stays a hole: timestamps jump, nothing is padded
                for packet in fragment.packets:
                    copy = av.Packet(bytes(packet))
                    copy.pts, copy.dts = packet.pts - offset, packet.dts - offset
                    copy.duration, copy.time_base, copy.is_keyframe = packet.duration, packet.time_base, packet.is_keyframe
                    copy.stream = out_stream
                    out.mux(copy)
        return 200, buffer.getvalue()


@pytest.fixture
def data_plane(make_video, local_stack, monkeypatch):
    """The KVS stream `STREAM` (control plane in moto) and its archived media on 127.0.0.1."""
    plane = KvsDataPlane(make_video("kvs.mp4", n_frames=80, intruder=(52, 75)))  # 8 fragments of 1 s

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            name = self.path.strip("/")
            plane.calls.append((name, body))
            status, payload = plane.list_fragments(body) if name == "listFragments" else plane.get_clip(body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "video/mp4" if isinstance(payload, bytes) else "application/json")
            if status != 200:
                self.send_header("x-amzn-ErrorType", payload["__type"])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    local_stack.client("kinesisvideo").create_stream(StreamName=STREAM, DataRetentionInHours=24)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KINESIS_VIDEO_ARCHIVED_MEDIA", f"http://127.0.0.1:{server.server_port}")
    yield plane
    server.shutdown()
    server.server_close()


def media_for(local_stack, sleeps: list[float]) -> KvsArchivedMedia:
    return KvsArchivedMedia(local_stack.client("kinesisvideo"), max_attempts=4, retry_base_s=0.2,
                            sleep=sleeps.append)


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def manifest(local_stack, key: str) -> list[ManifestLine]:
    body = local_stack.client("s3").get_object(Bucket="vigil-archive", Key=key)["Body"].read().decode()
    return [ManifestLine.model_validate_json(line) for line in body.splitlines()]


def frames_of(local_stack, key: str, tmp_path: Path) -> list[av.VideoFrame]:
    path = tmp_path / key.replace("/", "_")
    local_stack.client("s3").download_file("vigil-archive", key, str(path))
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def test_a_gap_in_the_stream_splits_the_clip_and_is_not_padded(data_plane, local_stack, tmp_path):
    # GIVEN 8 s of footage in KVS with no fragments for 3..5 s (the camera was off)
    data_plane.missing = {3, 4}
    sleeps: list[float] = []
    source = KvsClipSource(STREAM, media_for(local_stack, sleeps), clock=lambda: at(3600))
    archiver = Archiver("vigil-archive", local_stack.client("s3"))
    # WHEN 0.5..7.5 s is archived as normal footage
    request = ClipRequest(camera_id="cam-1", kind="normal", start=at(0.5), end=at(7.5))
    lines = archiver.archive_request(source, request)
    # THEN two clips: the fragment holding 0.5 s (from 0 s) up to the hole, and after it, each keyed by its part
    first = "clips/camera=cam-1/date=2026-11-25/20261125T080000500Z_20261125T080003000Z.mp4"
    second = "clips/camera=cam-1/date=2026-11-25/20261125T080005000Z_20261125T080007500Z.mp4"
    assert lines == [
        ManifestLine(source_ref=f"s3://vigil-archive/{first}", camera_id="cam-1", start=at(0), end=at(3), kind="normal"),
        ManifestLine(source_ref=f"s3://vigil-archive/{second}", camera_id="cam-1", start=at(5), end=at(8), kind="normal"),
    ]
    assert manifest(local_stack, "manifests/camera=cam-1/date=2026-11-25/manifest.jsonl") == lines
    # AND each decodes on its own from a keyframe, 3 s each: the 2 s hole is in neither
    for key in (first, second):
        frames = frames_of(local_stack, key, tmp_path)
        assert (len(frames), frames[0].key_frame) == (30, True)
        assert frames[-1].time == pytest.approx(2.9)
    # AND one GetDataEndpoint per API, whatever the number of calls; no waiting for an old range
    assert source.media.endpoint_calls == 2
    assert [name for name, _ in data_plane.calls] == ["listFragments", "getClip", "getClip"]
    assert sleeps == []


def test_fragments_still_arriving_are_waited_for_a_bounded_time(data_plane, local_stack):
    # GIVEN a range that ended a second ago: the last fragments are not listed yet, and GetClip
    # does not find them at first
    data_plane.hidden_first_lists = 1
    data_plane.not_found_first_clips = 2
    sleeps: list[float] = []
    source = KvsClipSource(STREAM, media_for(local_stack, sleeps), clock=lambda: at(9))
    archiver = Archiver("vigil-archive", local_stack.client("s3"))
    # WHEN 2..8 s is archived
    lines = archiver.archive_request(source, ClipRequest(camera_id="cam-1", kind="normal", start=at(2), end=at(8)))
    # THEN after one wait for the list and two GetClip retries, the whole range is one clip
    assert [(line.start, line.end) for line in lines] == [(at(2), at(8))]
    assert [name for name, _ in data_plane.calls] == ["listFragments", "listFragments", "getClip", "getClip", "getClip"]
    assert len(sleeps) == 3


def test_a_range_with_no_fragments_fails_clearly_after_bounded_retries(data_plane, local_stack):
    # GIVEN a range the stream has nothing for, that ended moments ago
    sleeps: list[float] = []
    source = KvsClipSource(STREAM, media_for(local_stack, sleeps), clock=lambda: at(61))
    # WHEN it is fetched THEN 4 listings later it is an ArchiveError that names the stream and range
    with pytest.raises(ArchiveError, match=r"no fragments in stream vigil-cam-1 for 2026-11-25T08:00:30\+00:00"):
        source.fetch(at(30), at(60), Path("."))
    assert [name for name, _ in data_plane.calls] == ["listFragments"] * 4
    assert len(sleeps) == 3


def test_long_ranges_are_split_to_respect_the_getclip_limits(data_plane, local_stack, tmp_path):
    # GIVEN GetClip limited (for the test) to 3 fragments per call
    source = KvsClipSource(STREAM, media_for(local_stack, []), max_fragments=3, clock=lambda: at(3600))
    # WHEN 0..8 s is fetched
    clips = source.fetch(at(0), at(8), tmp_path)
    # THEN three calls, 3 + 3 + 2 fragments, each a complete MP4, together all 80 frames
    assert [(c.start, c.end, c.probe.frames) for c in clips] == [(at(0), at(3), 30), (at(3), at(6), 30), (at(6), at(8), 20)]
    assert [name for name, _ in data_plane.calls].count("getClip") == 3


def test_the_alert_clip_key_holds_the_footage_of_the_event_start(data_plane, local_stack):
    # GIVEN an alert whose event starts at 6 s, after a hole at 3..5 s
    data_plane.missing = {3, 4}
    source = KvsClipSource(STREAM, media_for(local_stack, []), clock=lambda: at(3600))
    archiver = Archiver("vigil-archive", local_stack.client("s3"))
    request = ClipRequest(camera_id="cam-1", kind="alert", start=at(1), end=at(16), alert_id="a-1", event_at=at(6))
    # WHEN its clip is archived
    lines = archiver.archive_request(source, request)
    # THEN the piece holding 6 s has the key the alert links to; the piece before the hole its own
    assert [line.source_ref for line in lines] == [
        "s3://vigil-archive/alerts/camera=cam-1/date=2026-11-25/20261125T080001000Z_20261125T080003000Z.mp4",
        f"s3://vigil-archive/{request.key}",
    ]
    assert request.key == "alerts/camera=cam-1/date=2026-11-25/20261125T080001000Z_20261125T080016000Z.mp4"


def test_moto_getclip_placeholder_is_refused_and_the_endpoint_is_cached(tmp_path):
    # GIVEN moto's KVS (control plane and its GetClip, which returns placeholder bytes, not MP4)
    with mock_aws():
        kvs = boto3.client("kinesisvideo", region_name="us-east-1")
        kvs.create_stream(StreamName=STREAM, DataRetentionInHours=24)
        media = KvsArchivedMedia(kvs, max_attempts=1)
        # WHEN two clips are asked for
        payloads = [media.get_clip(STREAM, at(0), at(5)) for _ in range(2)]
        # THEN GetDataEndpoint was called once, and the bytes are refused as not a playable MP4
        assert media.endpoint_calls == 1
        path = tmp_path / "clip.mp4"
        path.write_bytes(payloads[0])
        with pytest.raises(ArchiveError, match="GetClip of vigil-cam-1 is not a playable MP4"):
            probe_clip(path, f"GetClip of {STREAM}")
        # AND an unknown stream is a clear error, not a retry loop
        with pytest.raises(ArchiveError, match="GetDataEndpoint GET_CLIP for stream nope failed"):
            media.get_clip("nope", at(0), at(5))
