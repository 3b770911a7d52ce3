"""The whole worker on real H.264, real HTTP to the fake endpoint and a real moto server: an
intruder gives exactly one alert (on the `alerts` stream, with its snapshot in S3), a still scene
none; failures are counted, never fatal; the CLI's errors are one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from worker_fake_endpoint import MODEL_VERSION, FakeEndpoint, darkness

from archive.keys import alert_clip_ref
from contracts.alert import AlertRecord, S3Object, Severity, make_alert_id
from local.stack import LocalStack
from worker.__main__ import main
from worker.config import WorkerConfig
from worker.picture import Picture
from worker.pipeline import WorkerStats, build_worker
from worker.sources import AvSource

REPO_ROOT = Path(__file__).resolve().parents[3]


def read_stream(stack: LocalStack) -> list[tuple[str, AlertRecord]]:
    kinesis = stack.client("kinesis")
    iterator = kinesis.get_shard_iterator(
        StreamName=stack.names.alert_stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    return [(r["PartitionKey"], AlertRecord.model_validate_json(r["Data"])) for r in records]


def decoded(path: Path, index: int) -> np.ndarray:
    with AvSource(str(path), sample_fps=10.0, speed=0.0) as source:
        return next(frame.image for frame in source.frames() if frame.index == index)


def run_worker(path: Path, **overrides: object):
    config = WorkerConfig(
        camera_id="cam-1", site="hq", source=str(path), **{"speed": 0.0, "retry_base_s": 0.01, **overrides}
    )
    worker = build_worker(config)
    return worker.run(), worker


def frames_accounted(stats: dict) -> bool:
    return WorkerStats(**stats).all_accounted()


def test_intruder_gives_exactly_one_alert_with_snapshot(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path], tmp_path: Path
):
    # GIVEN a 9 s camera clip (10 fps) with an intruder in view in frames 30..60
    video = make_video("gate.mp4", 90, intruder=(30, 60))
    stats_path = tmp_path / "stats.json"

    # WHEN the worker runs on it at 10x, as a process
    result = subprocess.run(
        [sys.executable, "-m", "worker", "--camera-id", "cam-1", "--site", "hq", "--source", str(video),
         "--speed", "10", "--stats-out", str(stats_path)],
        check=False, cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    # THEN it exits 0, and exactly one alert is on the stream, keyed by camera: the event starts at
    # frame 30 (3.0 s), opens on frame 32 (min_frames=2 at 5 fps), scored by the endpoint
    assert result.returncode == 0, result.stderr
    [(partition_key, alert)] = read_stream(local_stack)
    assert partition_key == "cam-1"
    frame_30, frame_32 = decoded(video, 30), decoded(video, 32)
    key = f"snapshots/camera=cam-1/date={alert.frame_at:%Y-%m-%d}/{alert.alert_id}.jpg"
    assert alert == AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", alert.started_at),
        camera_id="cam-1",
        site="hq",
        event_type="scene_anomaly",
        severity=Severity.MEDIUM,
        score=max(darkness(frame_30).score, darkness(frame_32).score),
        threshold=1.0,
        started_at=alert.started_at,
        frame_at=alert.started_at + timedelta(seconds=0.2 / 10),  # 0.2 s of media time at 10x
        detected_at=alert.detected_at,
        media_time_s=3.0,
        regions=darkness(frame_32).regions,
        snapshot=S3Object(bucket="vigil-archive", key=key),
        clip=alert_clip_ref("vigil-archive", "cam-1", alert.started_at),
        model_version=MODEL_VERSION,
    )
    assert alert.frame_at <= alert.detected_at
    # and the alert's clip (5 s before to 10 s after the event start; the file ends at 9 s) was cut
    # from the footage at the event's media time, archived where the alert says, and listed once
    s3 = local_stack.client("s3")
    clip_path = tmp_path / "clip.mp4"
    clip_path.write_bytes(s3.get_object(Bucket="vigil-archive", Key=alert.clip.key)["Body"].read())
    with av.open(str(clip_path)) as container:
        assert len(list(container.decode(video=0))) == 90  # media 0..9 s: the keyframe before 3-5 s is 0 s
    manifests = s3.list_objects_v2(Bucket="vigil-archive", Prefix="manifests/")["Contents"]
    [line] = [json.loads(raw) for m in manifests
              for raw in s3.get_object(Bucket="vigil-archive", Key=m["Key"])["Body"].read().decode().splitlines()]
    assert (line["source-ref"], line["kind"], line["alert_id"]) == (
        f"s3://vigil-archive/{alert.clip.key}", "alert", alert.alert_id)
    # and next to the clip, the alert's score trace: every analysed frame (all within 5 s before to
    # 10 s after the event start), at its media time from the start, scored by the endpoint
    trace_key = alert.clip.key.removesuffix(".mp4") + ".scores.json"
    trace = json.loads(s3.get_object(Bucket="vigil-archive", Key=trace_key)["Body"].read())
    with AvSource(str(video), sample_fps=10.0, speed=0.0) as source:
        scores = {frame.index: darkness(frame.image).score for frame in source.frames()}
    analysed = [round(offset_s * 10) + 30 for offset_s, _ in trace["points"]]
    assert trace == {
        "schema_version": "1", "alert_id": alert.alert_id, "camera_id": "cam-1", "threshold": 1.0,
        "model_version": MODEL_VERSION, "pre_roll_s": 5.0, "post_roll_s": 10.0,
        "points": [[round(i / 10 - 3.0, 3), round(scores[i], 6)] for i in analysed],
    }
    assert analysed[0] >= 0 and {30, 32} <= set(analysed) and len(analysed) == len(set(analysed))
    # and the snapshot is the alerting frame as a JPEG
    obj = local_stack.client("s3").get_object(Bucket="vigil-archive", Key=key)
    assert obj["ContentType"] == "image/jpeg"
    jpeg = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(obj["Body"].read(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert np.abs(jpeg.astype(int) - frame_32).mean() < 3
    # and the run is accounted for, with one INFO line per alert
    stats = json.loads(stats_path.read_text())
    assert {
        k: stats[k] for k in ("frames_decoded", "frames_sampled", "decode_errors", "alerts_published")
    } == {
        "frames_decoded": 90,
        "frames_sampled": 45,
        "decode_errors": 0,
        "alerts_published": 1,
    }
    assert stats["frames_dropped"] == stats["frames_failed"] == 0
    assert frames_accounted(stats)
    assert stats["frames_gated"] > 20  # the still stretches
    assert stats["frames_analysed"] == len(analysed)  # gated frames are gaps in the trace
    assert (
        f"alert camera=cam-1 alert_id={alert.alert_id} score={alert.score:.4f} media_time_s=3.000"
        in result.stderr
    )


def test_still_scene_gives_no_alert(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path]
):
    # GIVEN a still 9 s clip
    video = make_video("still.mp4", 90)

    # WHEN the worker runs on it
    stats, _ = run_worker(video)

    # THEN no alert; only the first frame and the heartbeats (every 2 s) were sent to the endpoint
    assert read_stream(local_stack) == []
    assert (stats.frames_sampled, stats.frames_analysed, stats.frames_gated, stats.alerts_published) == (
        45,
        5,
        40,
        0,
    )
    assert len(fake_endpoint.requests) == 5


def test_frames_are_never_converted_to_full_resolution_rgb_unless_an_alert_needs_a_snapshot(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
):
    # GIVEN a 256 x 144 clip with an intruder, frames sent at 128 x 72, and a record of the frames
    # converted to full-resolution RGB
    video = make_video("gate.mp4", 90, intruder=(30, 60))
    full_rgb: list[Picture] = []
    convert = Picture.rgb
    monkeypatch.setattr(Picture, "rgb", lambda picture: full_rgb.append(picture) or convert(picture))

    # WHEN the worker runs on it
    stats, _ = run_worker(video, inference_max_side=128)

    # THEN the endpoint got small frames (made straight from the decoded pictures, as the gate's were),
    # and the one alert's snapshot is the only full-resolution RGB made
    assert {request["shape"][1:] for request in fake_endpoint.requests} == {(72, 128, 3)}
    assert (stats.alerts_published, len(read_stream(local_stack))) == (1, 1)
    assert [picture.shape for picture in full_rgb] == [(144, 256, 3)]


def test_failed_inference_is_counted_and_the_worker_goes_on(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path]
):
    # GIVEN an endpoint whose first three answers are 503, and no retries
    fake_endpoint.fail_next = 3
    video = make_video("gate.mp4", 90, intruder=(30, 60))

    # WHEN the worker runs
    stats, _ = run_worker(video, max_attempts=1)

    # THEN frames 0, 20 and 30 failed, and the event is seen from frame 32 on
    assert (stats.frames_failed, stats.alerts_published) == (3, 1)
    [(_, alert)] = read_stream(local_stack)
    assert alert.media_time_s == 3.2
    assert frames_accounted(stats.to_dict())


def test_snapshot_failure_does_not_lose_the_alert(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path]
):
    # GIVEN an archive bucket that does not exist
    video = make_video("gate.mp4", 90, intruder=(30, 60))

    # WHEN the worker runs
    stats, _ = run_worker(video, archive_bucket="no-such-bucket")

    # THEN the alert goes out without a snapshot, and the failure is counted
    [(_, alert)] = read_stream(local_stack)
    assert alert.snapshot is None
    assert (stats.alerts_published, stats.snapshots_failed) == (1, 1)


def test_batches_of_frames_give_the_same_single_alert(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path]
):
    video = make_video("gate.mp4", 90, intruder=(30, 60))

    stats, _ = run_worker(video, batch_size=4, batch_max_wait_s=0.2)

    [(_, alert)] = read_stream(local_stack)
    assert alert.media_time_s == 3.0
    assert stats.inference_calls < stats.frames_analysed
    assert max(request["shape"][0] for request in fake_endpoint.requests) > 1


def test_slow_endpoint_makes_the_reader_drop_frames_not_wait(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path]
):
    # GIVEN an endpoint that takes 0.2 s per call, a queue of 1, and every frame sent (no gate)
    fake_endpoint.delay_s = 0.2
    video = make_video("gate.mp4", 60, intruder=(10, 50))

    # WHEN the worker runs as fast as it can
    stats, _ = run_worker(video, queue_size=1, motion={"threshold": 0.0})

    # THEN the reader dropped frames, and every sampled frame is accounted for
    assert stats.frames_dropped > 0
    assert stats.frames_sampled == 30
    assert frames_accounted(stats.to_dict())
    assert stats.frames_analysed == len(fake_endpoint.requests)


def test_a_catch_up_waits_for_the_analyser_and_drops_nothing(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path]
):
    # GIVEN the same slow endpoint and queue of 1, but every frame older than the live edge when it is
    # queued (a backlog after a restart or an outage: here live_edge_s is a microsecond)
    fake_endpoint.delay_s = 0.05
    video = make_video("gate.mp4", 60, intruder=(10, 50))

    # WHEN the worker runs as fast as it can
    stats, _ = run_worker(video, queue_size=1, live_edge_s=1e-6, motion={"threshold": 0.0})

    # THEN the reader waited instead of dropping: every sampled frame was analysed
    assert (stats.frames_sampled, stats.frames_analysed, stats.frames_dropped) == (30, 30, 0)
    assert stats.frames_waited > 0
    assert frames_accounted(stats.to_dict())


def test_sigterm_stops_the_worker_and_writes_its_stats(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path], tmp_path: Path
):
    # GIVEN a worker playing a 30 s clip in real time, which has sent its first frame to the endpoint
    video = make_video("long.mp4", 300)
    stats_path = tmp_path / "stats.json"
    with (tmp_path / "worker.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", "--camera-id", "cam-1", "--site", "hq", "--source", str(video),
             "--stats-out", str(stats_path)],
            cwd=REPO_ROOT, env=dict(os.environ), stderr=log,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not fake_endpoint.requests and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)

        # WHEN it gets SIGTERM
        process.send_signal(signal.SIGTERM)

        # THEN it stops at once, exit 0, with its stats written
        assert process.wait(timeout=5) == 0
    stats = json.loads(stats_path.read_text())
    assert 1 <= stats["frames_sampled"] < 20
    assert frames_accounted(stats)


def test_missing_source_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = tmp_path / "nope.mp4"

    code = main(["--camera-id", "cam-1", "--site", "hq", "--source", str(missing)])

    assert code == 2
    assert capsys.readouterr().err == f"error: video source not found: {missing}\n"


def test_validate_config_prints_the_config_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config_file = tmp_path / "worker.json"
    config_file.write_text(
        json.dumps({"camera_id": "cam-1", "site": "hq", "source": "x.mp4", "sample_fps": 2})
    )

    code = main(["--config", str(config_file), "--sample-fps", "3", "--validate-config"])

    assert code == 0
    printed = WorkerConfig.model_validate_json(capsys.readouterr().out)
    assert (printed.camera_id, printed.source, printed.sample_fps) == ("cam-1", "x.mp4", 3.0)


def test_validate_config_lists_the_errors_and_exits_2(capsys: pytest.CaptureFixture[str]):
    code = main(["--camera-id", "cam-1", "--source", "x.mp4", "--sample-fps", "60", "--validate-config"])

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "invalid worker config (2 error(s)):",
        "  site: Field required",
        "  sample_fps: Input should be less than or equal to 30",
    ]


def test_bad_config_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = tmp_path / "worker.json"

    assert main(["--config", str(missing), "--validate-config"]) == 2
    assert capsys.readouterr().err == f"error: config file not found: {missing}\n"
