"""The worker's hook: `ClipArchiveRunner` archives an alert's clip once its post-roll has settled,
and every pending one at shutdown, from the worker's own source; an alert's score trace goes next to
its clip, and a trace that cannot be written is logged, never in the clips' way."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from archive.archiver import Archiver
from archive.clip_source import LocalClipSource
from archive.keys import alert_clip_ref
from archive.runner import ClipArchiveRunner
from archive.schedule import ArchiveScheduler, ScheduleConfig
from archive.scores import ScoreHistory
from contracts.alert import AlertRecord, make_alert_id
from contracts.score_trace import ScoreTrace, score_trace_key

EPOCH = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def make_alert(media_s: float) -> AlertRecord:
    started = EPOCH + timedelta(seconds=media_s)
    return AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", started), camera_id="cam-1", site="hq",
        event_type="scene_anomaly", severity="high", score=0.9, threshold=0.5, started_at=started,
        frame_at=started, detected_at=started, media_time_s=media_s, model_version="m1",
        clip=alert_clip_ref("vigil-archive", "cam-1", started, 1.0, 2.0),
    )


PRE_ROLL_S, POST_ROLL_S = 1.0, 2.0


def clip_runner(s3, video, *, settle_s: float = 5.0) -> ClipArchiveRunner:  # type: ignore[no-untyped-def]
    """A runner cutting alert clips (1 s before, 2 s after) from a worker's file source into vigil-archive."""
    config = ScheduleConfig(pre_roll_s=PRE_ROLL_S, post_roll_s=POST_ROLL_S, settle_s=settle_s, normal=False)
    return ClipArchiveRunner(
        Archiver("vigil-archive", s3), ArchiveScheduler(config),
        lambda request: LocalClipSource(str(video), request.media_epoch),
    )


def test_alert_clips_are_archived_when_due_and_flushed_at_stop(local_stack, make_video):
    # GIVEN a worker's file source and a runner with 1 s / 2 s rolls, settling 5 s
    runner = clip_runner(local_stack.client("s3"), make_video("cam.mp4", n_frames=80))
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


def test_score_trace_is_written_next_to_the_alert_clip(local_stack, make_video):
    # GIVEN a runner and the score history of its camera, which saw an alert at 2 s and its post-roll
    runner = clip_runner(local_stack.client("s3"), make_video("cam.mp4", n_frames=80))
    history = ScoreHistory(PRE_ROLL_S, POST_ROLL_S)
    alert = make_alert(2.0)
    runner.submit_alert(alert)
    history.watch(alert)
    traces = [t for pts, score in [(0.8, 0.1), (1.0, 0.2), (2.0, 0.9), (3.0, 0.4), (4.0, 0.3)]
              for t in history.add(pts, score)]
    for key, trace in traces:
        runner.submit_trace(key, trace)
    # WHEN the worker stops
    runner.stop()
    # THEN the clip and, next to it, its score trace are in the archive
    s3 = local_stack.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="vigil-archive", Prefix="alerts/")["Contents"])
    trace_key = alert.clip.key.removesuffix(".mp4") + ".scores.json"
    assert keys == sorted([alert.clip.key, trace_key]) and trace_key == score_trace_key(alert.clip.key)
    obj = s3.get_object(Bucket="vigil-archive", Key=trace_key)
    assert obj["ContentType"] == "application/json"
    assert json.loads(obj["Body"].read()) == {
        "schema_version": "1", "alert_id": alert.alert_id, "camera_id": "cam-1", "threshold": 0.5,
        "model_version": "m1", "pre_roll_s": 1.0, "post_roll_s": 2.0,
        "points": [[-1.0, 0.2], [0.0, 0.9], [1.0, 0.4], [2.0, 0.3]],
    }
    assert (runner.archived, runner.failed, runner.traces_written, runner.traces_failed) == (1, 0, 1, 0)


def test_a_trace_that_cannot_be_written_is_logged_and_the_clip_still_archived(local_stack, make_video, caplog):
    # GIVEN a runner whose trace write is refused (S3 says AccessDenied), and a settled alert clip
    s3 = local_stack.client("s3")
    runner = clip_runner(s3, make_video("cam.mp4", n_frames=80), settle_s=0.0)
    alert = make_alert(2.0)
    runner.submit_alert(alert)
    trace = ScoreTrace(alert_id=alert.alert_id, camera_id="cam-1", threshold=0.5, model_version="m1",
                       pre_roll_s=1.0, post_roll_s=2.0, points=[(0.0, 0.9)])
    runner.submit_trace(score_trace_key(alert.clip.key), trace)

    def refused(key: str, body: str) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")

    runner.archiver.store.put_json = refused
    # WHEN polled after the clip settled
    with caplog.at_level(logging.ERROR, logger="archive.runner"):
        lines = runner.run_once(EPOCH + timedelta(seconds=10))
    # THEN the failure is one ERROR line with the camera, and the clip is archived all the same
    assert [r.getMessage() for r in caplog.records] == [
        (f"score trace camera=cam-1 alert_id={alert.alert_id} {score_trace_key(alert.clip.key)} not written: "
        "An error occurred (AccessDenied) when calling the PutObject operation: denied")]
    assert [line.source_ref for line in lines] == [f"s3://vigil-archive/{alert.clip.key}"]
    assert (runner.archived, runner.traces_written, runner.traces_failed) == (1, 0, 1)
