"""The worker with a camera scene (issue 17) on real H.264, the real inference handler (a scene-
difference model learnt on the empty scene, served by `python -m inference.serve`) and a moto
server: zones raise intrusion and loitering with their zone, a masked area never alerts and is black
in the snapshot, a disarmed camera's alerts go on the stream with notify false, and black frames, a
blurred stretch and a turned camera each raise camera_tamper exactly once.

The scene is 256 x 144 at 10 fps, sampled at 5 fps; the intruder is a 30 x 50 px block whose box's
bottom centre is what the zones test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from inference_artifacts import build_scene_difference_artifact
from local_inference_server import serving
from synthetic_video import render_scene, render_tampered, render_walk, write_h264

from contracts.alert import AlertRecord
from local.stack import LocalStack
from worker.config import WorkerConfig
from worker.detector import inference_size
from worker.pipeline import WorkerStats, build_worker
from worker.privacy import black_out, rasterise

LEFT_HALF = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
FLOOR_STRIP = [[0.0, 0.9], [1.0, 0.9], [1.0, 1.0], [0.0, 1.0]]  # nobody's feet reach it
SPEED = 10.0  # capture times are media times / 10 from the start
TAMPER = {"enabled": True, "min_duration_s": 1.0, "reference_after_s": 1.0, "cooldown_s": 300.0}


def endpoint_for(tmp: Path, normal: np.ndarray) -> Iterator[str]:
    model_dir = build_scene_difference_artifact(tmp / "model", normal, "scene-diff-1", "cam-1")
    with serving(model_dir, tmp / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def endpoint_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The handler serving a model of the empty scene (as the worker sees it without masks)."""
    yield from endpoint_for(tmp_path_factory.mktemp("plain"), np.stack(render_scene(4)))


@pytest.fixture(scope="module")
def masked_endpoint_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A model learnt on the empty scene with its left half masked, at the sizes the worker sends (the
    first frame whole, then at the model's size, whose mask edge the resize blurs differently): a
    model that compares with a learnt background must learn the camera as the worker shows it
    (Vigil's own model predicts each frame from the previous ones; a constant black area is predicted
    perfectly)."""
    full = render_scene(1)[0]
    small_size = inference_size(144, 256, input_size=(48, 80), max_side=960)
    small = cv2.resize(full, small_size[::-1], interpolation=cv2.INTER_AREA)
    masked = [black_out(image, rasterise([_mask()], image.shape[:2])) for image in (full, small)]
    normal = np.stack([masked[0], cv2.resize(masked[1], (256, 144), interpolation=cv2.INTER_LINEAR)])
    yield from endpoint_for(tmp_path_factory.mktemp("masked"), normal)


def _mask():
    from contracts.camera_scene import PrivacyMask

    return PrivacyMask(name="neighbour", polygon=LEFT_HALF)


def run(stack: LocalStack, url: str, monkeypatch: pytest.MonkeyPatch, video: Path, scene: dict) -> tuple[
    WorkerStats, list[AlertRecord]
]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
    config = WorkerConfig(
        camera_id="cam-1", site="hq", source=str(video), speed=SPEED, retry_base_s=0.01, scene=scene,
        policy={"clear_after_s": 1.0},
    )  # fmt: skip
    stats = build_worker(config).run()
    return stats, read_stream(stack)


def read_stream(stack: LocalStack) -> list[AlertRecord]:
    kinesis = stack.client("kinesis")
    iterator = kinesis.get_shard_iterator(
        StreamName=stack.names.alert_stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [AlertRecord.model_validate_json(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


def crossing(first: int, last: int, x0: int, x1: int, y: int = 48) -> dict[int, tuple[int, int]]:
    """The intruder walking from x0 to x1 over frames first..last."""
    return {i: (round(x0 + (x1 - x0) * (i - first) / (last - first)), y) for i in range(first, last + 1)}


def test_an_intruder_in_the_restricted_zone_alerts_intrusion_with_the_zone_and_outside_it_does_not(
    local_stack: LocalStack, endpoint_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # GIVEN the intruder walking across the left half only (feet at x < 0.4), then across the right half
    video = write_h264(tmp_path / "walk.mp4", render_walk(90, {**crossing(10, 30, 0, 70), **crossing(60, 80, 150, 220)}))
    door = {"zones": [{"name": "door", "polygon": LEFT_HALF, "event_type": "intrusion"}]}

    # WHEN the worker watches it with a restricted zone on the left half
    stats, alerts = run(local_stack, endpoint_url, monkeypatch, video, door)

    # THEN an intrusion in zone door while it is there, and a scene_anomaly outside every zone after
    assert [(a.event_type, a.zone, a.armed, a.notify) for a in alerts] == [
        ("intrusion", "door", True, True),
        ("scene_anomaly", None, True, True),
    ]
    intrusion, outside = alerts
    assert 1.0 <= intrusion.media_time_s < 3.0 and 6.0 <= outside.media_time_s < 8.0
    assert all(r.x + r.w / 2 < 0.5 for r in intrusion.regions) and all(r.x + r.w / 2 >= 0.5 for r in outside.regions)
    assert stats.alerts_published == 2


def test_the_same_walk_with_the_zone_where_it_never_steps_raises_no_intrusion(
    local_stack: LocalStack, endpoint_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    video = write_h264(tmp_path / "walk.mp4", render_walk(60, crossing(10, 30, 0, 70)))
    strip = {"zones": [{"name": "strip", "polygon": FLOOR_STRIP, "event_type": "intrusion"}], "outside_zones": "ignore"}
    stats, alerts = run(local_stack, endpoint_url, monkeypatch, video, strip)
    assert alerts == []
    assert stats.frames_analysed > 5


def test_loitering_alerts_once_the_intruder_has_stayed_dwell_s_in_the_zone(
    local_stack: LocalStack, endpoint_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # GIVEN the intruder shuffling on the spot in the bench zone for 4 s (frames 10..49), and for 1 s later
    shuffle = {i: (40 + (i % 3) * 3, 48) for i in [*range(10, 50), *range(70, 80)]}
    video = write_h264(tmp_path / "loiter.mp4", render_walk(100, shuffle))
    bench = {"zones": [{"name": "bench", "polygon": LEFT_HALF, "event_type": "loitering", "dwell_s": 3.0}],
             "outside_zones": "ignore"}  # fmt: skip

    # WHEN the worker watches it
    _, alerts = run(local_stack, endpoint_url, monkeypatch, video, bench)

    # THEN one loitering alert in zone bench, 3 s after it arrived; the 1 s stay raises nothing
    [alert] = alerts
    assert (alert.event_type, alert.zone, alert.media_time_s) == ("loitering", "bench", 1.0)
    assert (alert.frame_at - alert.started_at).total_seconds() * SPEED == pytest.approx(3.0, abs=0.05)


def test_a_masked_area_never_alerts_and_is_black_in_the_snapshot(
    local_stack: LocalStack, masked_endpoint_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # GIVEN a privacy mask on the left half, the intruder walking there, then across the right half
    video = write_h264(tmp_path / "walk.mp4", render_walk(90, {**crossing(10, 30, 0, 90), **crossing(60, 80, 150, 220)}))
    masked = {"privacy_masks": [_mask().model_dump()]}

    # WHEN the worker watches it
    _, alerts = run(local_stack, masked_endpoint_url, monkeypatch, video, masked)

    # THEN only the walk across the right half alerts
    [alert] = alerts
    assert (alert.event_type, alert.zone) == ("scene_anomaly", None)
    assert alert.media_time_s >= 6.0
    # and its snapshot is black wherever the mask is, the scene elsewhere
    body = local_stack.client("s3").get_object(Bucket=alert.snapshot.bucket, Key=alert.snapshot.key)["Body"].read()
    jpeg = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert jpeg.shape == (144, 256)
    assert jpeg[:, :124].max() < 16 and jpeg[:, 132:].mean() > 60


def test_a_disarmed_camera_puts_its_alerts_on_the_stream_with_notify_false(
    local_stack: LocalStack, endpoint_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # GIVEN a schedule armed every night, with today and tomorrow (UTC) disarmed by exception
    today = datetime.now(UTC).date()
    schedule = {
        "timezone": "UTC",
        "windows": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "00:00"}],
        "exceptions": [{"date": str(today), "armed": False}, {"date": str(today + timedelta(days=1)), "armed": False}],
    }
    video = write_h264(tmp_path / "walk.mp4", render_walk(60, crossing(10, 30, 0, 200)))

    # WHEN the worker watches the intruder
    stats, alerts = run(local_stack, endpoint_url, monkeypatch, video, {"schedule": schedule})

    # THEN the alert is on the stream, disarmed and not to be notified; its clip is still cut
    [alert] = alerts
    assert (alert.event_type, alert.armed, alert.notify, alert.clip is not None) == ("scene_anomaly", False, False, True)
    assert (stats.alerts_published, stats.alerts_not_notified) == (1, 1)


@pytest.mark.parametrize(("tamper", "kind"), [("blank", "blank"), ("blur", "defocus"), ("shift", "moved")])
def test_black_frames_a_blurred_stretch_and_a_turned_camera_each_raise_camera_tamper_exactly_once(
    local_stack: LocalStack, endpoint_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tamper: str, kind: str
):
    # GIVEN 3 s of the normal view, 4 s tampered with (frames 30..69), 3 s normal again
    video = write_h264(tmp_path / f"{tamper}.mp4", render_tampered(100, tamper, (30, 69)))

    # WHEN the worker watches it with the tamper checks on
    stats, alerts = run(local_stack, endpoint_url, monkeypatch, video, {"tamper": TAMPER})

    # THEN exactly one camera_tamper alert, naming what it found, 1 s into the stretch, with a snapshot
    [tampered] = [a for a in alerts if a.event_type == "camera_tamper"]
    assert (tampered.tamper, tampered.media_time_s, tampered.zone, tampered.notify) == (kind, 3.0, None, True)
    assert (tampered.frame_at - tampered.started_at).total_seconds() * SPEED == pytest.approx(1.0, abs=0.05)
    assert tampered.snapshot is not None
    assert stats.tamper_alerts == 1
    assert stats.all_accounted()
