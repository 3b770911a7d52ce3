"""`python -m archive.feedback`: an operator's verdict on an alert becomes a feedback object in S3 and
labelled events on the alert clip's manifest line, whether the clip is archived before or after."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from archive.archiver import Archiver
from archive.clip_source import LocalClipSource
from archive.feedback import main
from archive.schedule import ScheduleConfig
from contracts.alert import AlertRecord, make_alert_id
from contracts.manifest import LabelledEvent, ManifestLine
from worker.snapshot import snapshot_key

EPOCH = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
STARTED = datetime(2026, 11, 25, 8, 0, 3, tzinfo=UTC)
ROLL = ScheduleConfig(pre_roll_s=2.0, post_roll_s=4.0)
MANIFEST = "manifests/camera=cam-1/date=2026-11-25/manifest.jsonl"


def make_alert(started_at: datetime = STARTED) -> AlertRecord:
    return AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", started_at), camera_id="cam-1", site="hq",
        event_type="scene_anomaly", severity="high", score=0.9, threshold=0.5, started_at=started_at,
        frame_at=started_at, detected_at=started_at, media_time_s=(started_at - EPOCH).total_seconds(),
        model_version="m1",
    )


def manifest_lines(s3) -> list[ManifestLine]:
    body = s3.get_object(Bucket="vigil-archive", Key=MANIFEST)["Body"].read().decode()
    return [ManifestLine.model_validate_json(line) for line in body.splitlines()]


def feedback_object(s3, alert: AlertRecord) -> dict:
    key = f"feedback/camera=cam-1/{alert.alert_id}.json"
    return json.loads(s3.get_object(Bucket="vigil-archive", Key=key)["Body"].read())


def test_a_true_incident_labels_the_clip_from_the_event_start(local_stack, make_video, capsys):
    # GIVEN an archived alert clip (1..7 s at 10 fps, event at 3 s)
    alert = make_alert()
    video = make_video("cam.mp4", n_frames=100, intruder=(30, 60))
    s3 = local_stack.client("s3")
    Archiver("vigil-archive", s3).archive_alert(LocalClipSource(str(video), EPOCH), alert, ROLL)
    # WHEN the operator marks it a true incident, twice
    argv = [alert.alert_id, "--true-incident", "--operator", "ana", "--note", "tailgating"]
    assert main(argv) == 0
    first = feedback_object(s3, alert)
    assert main(argv) == 0
    # THEN the feedback object records the verdict (unchanged by the repeat)
    assert first == feedback_object(s3, alert)
    assert {k: v for k, v in first.items() if k != "labelled_at"} == {
        "schema_version": "1", "alert_id": alert.alert_id, "camera_id": "cam-1", "label": "true_incident",
        "operator": "ana", "note": "tailgating",
    }
    # AND the clip's line has the frames from the event start (frame 20 = 3 s) to its end as anomaly
    [line] = manifest_lines(s3)
    assert line.events == [LabelledEvent(start_frame=20, end_frame=59, label="anomaly")]
    assert "labelled clip(s): s3://vigil-archive/alerts/camera=cam-1/" in capsys.readouterr().out


def test_a_false_alarm_before_the_clip_exists_is_applied_when_it_is_archived(local_stack, make_video, capsys):
    # GIVEN an alert known by its snapshot only (its clip is not archived yet)
    alert = make_alert()
    s3 = local_stack.client("s3")
    s3.put_object(Bucket="vigil-archive", Key=snapshot_key(alert), Body=b"\xff\xd8jpeg")
    # WHEN the operator marks it a false alarm
    assert main([alert.alert_id, "--false-alarm", "--operator", "ana"]) == 0
    assert "clip not archived yet" in capsys.readouterr().out
    assert feedback_object(s3, alert)["label"] == "false_alarm"
    # AND then the archiver archives the clip
    video = make_video("cam.mp4", n_frames=100)
    Archiver("vigil-archive", s3).archive_alert(LocalClipSource(str(video), EPOCH), alert, ROLL)
    # THEN the line carries the false alarm from the event start: training may use it as normal
    assert [line.events for line in manifest_lines(s3)] == [
        [LabelledEvent(start_frame=20, end_frame=59, label="false_alarm")]
    ]
    # AND a change of mind relabels it
    assert main([alert.alert_id, "--true-incident", "--camera", "cam-1", "--operator", "ana"]) == 0
    assert [line.events for line in manifest_lines(s3)] == [
        [LabelledEvent(start_frame=20, end_frame=59, label="anomaly")]
    ]


@pytest.mark.parametrize("camera", [[], ["--camera", "cam-1"]])
def test_an_unknown_alert_id_is_a_clear_error(local_stack, capsys, camera):
    # GIVEN an archive that never saw this alert WHEN feedback is given THEN exit 2 with one line
    assert main(["0b6a7c11-0000-4c55-9a8e-2f0b9b6a7c11", "--false-alarm", *camera]) == 2
    err = capsys.readouterr().err
    assert err.startswith("feedback: unknown alert id 0b6a7c11-0000-4c55-9a8e-2f0b9b6a7c11: no snapshot and no alert clip")
    assert err.count("\n") == 1
    assert "Contents" not in local_stack.client("s3").list_objects_v2(Bucket="vigil-archive")
