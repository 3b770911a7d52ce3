"""camera-sim: a video file goes out as signed, chunked PutMedia MKV; the local KVS twin checks the
signature headers and parses what it receives with the worker's own parser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvs.camera_sim import main
from kvs.local_media import LocalKvsMedia
from kvs.parser import MkvFrame, parse_all


@pytest.fixture
def kvs(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalKvsMedia]:
    with LocalKvsMedia() as media:
        for key, value in media.env().items():
            monkeypatch.setenv(key, value)
        yield media


def test_camera_sim_streams_a_file_with_put_media(
    kvs: LocalKvsMedia, make_video: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a 3 s H.264 file with a keyframe every second, and a stream
    video = make_video("cam.mp4", n_frames=30, fps=10)
    stream = kvs.stream("cam-1")
    # WHEN camera-sim streams it as fast as possible
    code = main(["--stream", "cam-1", "--video", str(video), "--speed", "0"])
    # THEN one signed chunked request carried 3 fragments of 30 frames, all acknowledged
    assert code == 0
    assert capsys.readouterr().out.startswith("stream=cam-1 fragments_sent=3 ")
    (put,) = stream.puts
    headers = put["headers"]
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/kinesisvideo/aws4_request" in headers["authorization"]
    assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert {"x-amz-date", "x-amzn-stream-name", "x-amzn-producer-start-timestamp"} <= headers.keys()
    assert headers["transfer-encoding"] == "chunked"
    assert (put["frames"], put["keyframes"]) == (30, 3)
    frames = [e for e in parse_all(put["body"], 777) if isinstance(e, MkvFrame)]
    assert [f.timecode_ns // 1_000_000 for f in frames] == [100 * i for i in range(30)]


def test_camera_sim_missing_video_is_one_line_exit_2(
    kvs: LocalKvsMedia, capsys: pytest.CaptureFixture[str]
) -> None:
    kvs.stream("cam-1")
    assert main(["--stream", "cam-1", "--video", "/nope.mp4"]) == 2
    assert capsys.readouterr().err == "error: video not found: /nope.mp4\n"
