"""The worker's hook: `ClipArchiveRunner` archives an alert's clip once its post-roll has settled,
and every pending one at shutdown, from the worker's own source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.alert import AlertRecord, make_alert_id
from worker.archive.clip_source import LocalClipSource
from worker.archive.keys import alert_clip_ref
from worker.archive.runner import ClipArchiveRunner
from worker.archive.schedule import ArchiveScheduler, ScheduleConfig
from worker.archiver import Archiver

EPOCH = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def make_alert(media_s: float) -> AlertRecord:
    started = EPOCH + timedelta(seconds=media_s)
    return AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", started), camera_id="cam-1", site="hq",
        event_type="scene_anomaly", severity="high", score=0.9, threshold=0.5, started_at=started,
        frame_at=started, detected_at=started, media_time_s=media_s, model_version="m1",
        clip=alert_clip_ref("vigil-archive", "cam-1", started, 1.0, 2.0),
    )


def test_alert_clips_are_archived_when_due_and_flushed_at_stop(local_stack, make_video):
    # GIVEN a worker's file source and a runner with 1 s / 2 s rolls, settling 5 s
    video = make_video("cam.mp4", n_frames=80)
    config = ScheduleConfig(pre_roll_s=1.0, post_roll_s=2.0, settle_s=5.0, normal=False)
    runner = ClipArchiveRunner(
        Archiver("vigil-archive", local_stack.client("s3")), ArchiveScheduler(config),
        lambda request: LocalClipSource(str(video), request.media_epoch),
    )
    first, second = make_alert(2.0), make_alert(5.0)
    runner.submit_alert(first)
    runner.submit_alert(second)
    # WHEN polled 9 s in (the first clip, ending at 4 s, has settled; the second, ending at 7 s, not)
    lines = runner.run_once(EPOCH + timedelta(seconds=9))
    # THEN only the first is archived, at the key its alert carries
    assert [line.source_ref for line in lines] == [f"s3://vigil-archive/{first.clip.key}"]
    # WHEN the worker stops THEN the pending one is archived too
    runner.stop()
    s3 = local_stack.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="vigil-archive", Prefix="alerts/")["Contents"])
    assert keys == sorted([first.clip.key, second.clip.key])
    assert (runner.archived, runner.failed) == (2, 0)
