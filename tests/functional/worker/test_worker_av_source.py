"""AvSource on real H.264: frame count and timestamps, keyframes-only decoding, pacing, seeking,
and files that are missing, not video, truncated or corrupt."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest
from worker_fake_endpoint import darkness

from worker.sources import AvSource, Frame, SourceError, SourceStats, SourceUnreachableError


def read_all(path: Path, **options: object) -> tuple[list[Frame], SourceStats]:
    source = AvSource(str(path), **{"sample_fps": 10.0, "speed": 0.0, **options})  # type: ignore[arg-type]
    with source:
        frames = list(source.frames())
    return frames, source.stats


def remux_faststart(source: Path, path: Path) -> Path:
    """The same H.264 packets in an MP4 with its index first (`+faststart`), as streamed MP4s are:
    a truncated copy still opens."""
    with av.open(str(source)) as src, av.open(str(path), mode="w", options={"movflags": "+faststart"}) as dst:
        video = src.streams.video[0]
        stream = dst.add_stream_from_template(video)
        for packet in src.demux(video):
            if packet.dts is None:  # the demuxer's final flush packet
                continue
            packet.stream = stream
            dst.mux(packet)
    return path


def test_every_frame_with_media_time_index_and_keyframe_flag(make_video: Callable[..., Path]):
    # GIVEN a 60-frame, 10 fps clip with a keyframe every 10 frames
    path = make_video("clip.mp4", 60, intruder=(20, 40))

    # WHEN read at the source's rate
    frames, stats = read_all(path, sample_fps=10.0)

    # THEN all 60 frames, in order, RGB uint8, with their media time
    assert [f.index for f in frames] == list(range(60))
    assert [f.pts_s for f in frames] == pytest.approx([i / 10 for i in range(60)])
    assert [f.index for f in frames if f.keyframe] == [0, 10, 20, 30, 40, 50]
    assert {(f.image.shape, f.image.dtype) for f in frames} == {((144, 256, 3), np.dtype(np.uint8))}
    assert stats == SourceStats(
        frames_decoded=60, frames_sampled=60, decode_errors=0, keyframes_only=False, keyframe_interval_s=1.0
    )
    # and the pixels are the scene's, RGB in the right order: the dark intruder is in frames 20..40
    assert [f.index for f in frames if darkness(f.image).score > 1.0] == list(range(20, 41))


def test_sampling_keeps_one_in_n_of_all_decoded(make_video: Callable[..., Path]):
    path = make_video("clip.mp4", 60)

    frames, stats = read_all(path, sample_fps=5.0)

    assert [f.index for f in frames] == list(range(0, 60, 2))
    assert (stats.frames_decoded, stats.frames_sampled, stats.keyframes_only) == (60, 30, False)


def test_keyframes_only_when_sampling_is_no_faster_than_keyframes(make_video: Callable[..., Path]):
    # GIVEN keyframes every 1 s and 1 frame per second wanted
    path = make_video("clip.mp4", 60)

    # WHEN read
    frames, stats = read_all(path, sample_fps=1.0)

    # THEN once the keyframe interval is known (2nd keyframe) only keyframes are decoded
    assert [(f.index, f.keyframe) for f in frames] == [(i, True) for i in range(0, 60, 10)]
    assert stats.keyframes_only
    assert stats.frames_decoded == 10 + 5  # the whole first GOP, then the keyframes


def test_file_played_at_speed_is_paced_and_stamped_as_a_live_camera(make_video: Callable[..., Path]):
    # GIVEN a 2 s clip played at 4x
    path = make_video("clip.mp4", 20)
    before = datetime.now(UTC)

    # WHEN read
    started = time.monotonic()
    frames, _ = read_all(path, sample_fps=10.0, speed=4.0)
    elapsed = time.monotonic() - started

    # THEN it takes about 1.9 s / 4 and capture times are wall-clock start + pts / speed
    assert 0.45 <= elapsed < 2.0
    origin = frames[0].captured_at
    assert before <= origin <= before + timedelta(seconds=0.5)
    assert [(f.captured_at - origin).total_seconds() for f in frames] == pytest.approx(
        [i / 10 / 4 for i in range(20)], abs=1e-6
    )


def test_speed_zero_runs_as_fast_as_possible_stamped_now(make_video: Callable[..., Path]):
    path = make_video("clip.mp4", 60)
    before = datetime.now(UTC)

    started = time.monotonic()
    frames, _ = read_all(path, sample_fps=10.0, speed=0.0)

    assert time.monotonic() - started < 3.0  # 6 s of video
    assert all(before <= f.captured_at <= datetime.now(UTC) for f in frames)


def test_seek_to_start_and_stop_at_end(make_video: Callable[..., Path]):
    # GIVEN a 6 s clip, WHEN read from 2.5 s to 4.0 s
    path = make_video("clip.mp4", 60)

    frames, stats = read_all(path, sample_fps=10.0, start_s=2.5, end_s=4.0)

    # THEN frames 25..39 only, decoded from the keyframe at 2.0 s (not from the start)
    assert [f.index for f in frames] == list(range(25, 40))
    assert stats.frames_decoded <= 25


def test_stop_event_ends_a_paced_source_promptly(make_video: Callable[..., Path]):
    # GIVEN a 6 s clip played in real time, and a stop 0.3 s in
    path = make_video("clip.mp4", 60)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()

    # WHEN read
    started = time.monotonic()
    frames, _ = read_all(path, sample_fps=10.0, speed=1.0, stop_event=stop)

    # THEN it ends soon after the stop, not after 6 s
    assert time.monotonic() - started < 1.5
    assert 2 <= len(frames) <= 10


def test_missing_file_is_a_one_line_error_naming_it(tmp_path: Path):
    missing = tmp_path / "nope.mp4"

    with pytest.raises(SourceError) as info:
        AvSource(str(missing), sample_fps=5.0).open()

    assert str(info.value) == f"video source not found: {missing}"


def test_a_file_that_is_not_video_is_a_clear_error(tmp_path: Path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 10)

    with pytest.raises(SourceError, match=rf"^cannot open video source {text}: Invalid data found"):
        AvSource(str(text), sample_fps=5.0).open()


def test_truncated_file_is_counted_not_fatal(make_video: Callable[..., Path], tmp_path: Path):
    # GIVEN a 60-frame MP4 (index first) cut off half-way through its data
    whole = remux_faststart(make_video("clip.mp4", 60, intruder=(0, 59)), tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    # WHEN read
    frames, stats = read_all(cut, sample_fps=10.0)

    # THEN the frames before the cut come out, the broken tail is counted as a decode error
    assert 10 <= len(frames) < 60
    assert [f.index for f in frames] == list(range(len(frames)))
    assert stats.decode_errors >= 1


def test_corrupt_bytes_mid_file_are_counted_and_decoding_goes_on(
    make_video: Callable[..., Path], tmp_path: Path
):
    # GIVEN a clip with 2000 zero bytes written over its first GOP's data
    data = bytearray(make_video("clip.mp4", 60).read_bytes())
    data[3000:5000] = bytes(2000)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))

    # WHEN read
    frames, stats = read_all(broken, sample_fps=10.0)

    # THEN errors are counted and the frames after the damage are still decoded, to the last one
    assert stats.decode_errors >= 1
    assert frames[-1].index == 59
    assert len(frames) >= 40


def test_an_unreachable_camera_is_reported_unreachable_not_undecodable():
    # GIVEN an RTSP URL where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"rtsp://127.0.0.1:{port}/stream1"
    # WHEN the worker opens it THEN the error says the camera is unreachable and what to check
    with pytest.raises(SourceUnreachableError) as info:
        AvSource(url, sample_fps=5.0).open()
    assert str(info.value) == (
        f"camera unreachable: {url}: Connection refused: check the address (host name or IP) and port "
        "(RTSP: 554), that the camera is on, and that this machine reaches its network"
    )


def test_a_camera_that_refuses_the_login_says_so():
    # GIVEN an RTSP server that answers every request 401 Unauthorized
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def refuse() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    request = conn.recv(4096).decode("latin-1")
                    cseq = next((line.split(":", 1)[1].strip() for line in request.splitlines()
                                 if line.lower().startswith("cseq:")), "1")
                    conn.sendall(f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n\r\n".encode())
                    time.sleep(0.1)

    threading.Thread(target=refuse, daemon=True).start()
    url = f"rtsp://127.0.0.1:{port}/stream1"
    try:
        # WHEN the worker opens it THEN the error names the refusal and the credentials to check
        with pytest.raises(SourceUnreachableError, match=r"^camera unreachable: rtsp://127\.0\.0\.1:\d+/stream1: the camera "
                           r"refused the request \(Server returned 401 Unauthorized.*\): check the user, password"):
            AvSource(url, sample_fps=5.0).open()
    finally:
        server.close()
