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


def test_camera_sim_signs_for_the_region_it_is_given(
    kvs: LocalKvsMedia, make_video: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a stream and --region eu-west-1 (the environment says another)
    video = make_video("cam.mp4", n_frames=10, fps=10)
    stream = kvs.stream("cam-1")
    # WHEN camera-sim streams it THEN the request is signed for eu-west-1
    assert main(["--stream", "cam-1", "--video", str(video), "--speed", "0", "--region", "eu-west-1"]) == 0
    (put,) = stream.puts
    assert "/eu-west-1/kinesisvideo/aws4_request" in put["headers"]["authorization"]


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
         ("error: no AWS credentials found: sign in first (`aws configure`, or `aws sso login --profile NAME` and "
         "AWS_PROFILE=NAME), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n")),
        (("AWS_REGION", "AWS_DEFAULT_REGION"),
         ("error: no AWS region: pass --region (make camera-sim ARGS='--region eu-west-1'), or set AWS_REGION, "
         "or a region in the profile; use the region of the stream\n")),
    ],
)
def test_camera_sim_without_credentials_or_region_says_how_to_give_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    unset: tuple[str, str], message: str,
) -> None:
    # GIVEN no credentials (or no region) anywhere: no variables, no config or credentials file, no instance role
    for name in (*unset, "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # WHEN camera-sim starts THEN one line says what is missing and how to give it, exit 2, before the video is read
    assert main(["--stream", "cam-1", "--video", "/nope.mp4"]) == 2
    assert capsys.readouterr().err == message


def test_camera_sim_help_describes_it_in_whole_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("`make camera-sim STREAM=... VIDEO=...`: stream a video file into a Kinesis Video Stream with PutMedia, "
            "as a camera would, for smoke tests in a real account (boto3 has no PutMedia). options:") in text
    assert "--region REGION AWS region of the stream" in text
