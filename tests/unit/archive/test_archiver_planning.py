"""Pure planning: the schedule of clips, the split of a KVS range into GetClip runs, the keys of the
pieces, the manifest merge and the frames a verdict labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from archive.archiver import piece_keys
from archive.clip_source import FetchedClip
from archive.keys import alert_clip_key
from archive.kvs import Fragment, plan_fragment_runs
from archive.labels import FeedbackLabel, events_for
from archive.local_cut import ClipProbe
from archive.schedule import ArchiveScheduler, ClipRequest, ScheduleConfig, camera_offset_s, plan_clips
from archive.store import merge_lines
from contracts.alert import AlertRecord, make_alert_id
from contracts.manifest import LabelledEvent, ManifestLine

T0 = datetime(2026, 11, 25, 0, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alert(camera: str, started_s: float) -> AlertRecord:
    started = at(started_s)
    return AlertRecord(
        alert_id=make_alert_id(camera, "scene_anomaly", started), camera_id=camera, site="hq",
        event_type="scene_anomaly", severity="high", score=1.0, threshold=0.5, started_at=started,
        frame_at=started, detected_at=started, model_version="m",
    )


def test_normal_footage_is_spread_over_the_whole_day_with_a_per_camera_offset():
    # GIVEN 30 s every 15 min WHEN a day is planned for two cameras
    day = [plan_clips(cam, T0, at(86400)) for cam in ("lobby-1", "dock-7")]
    # THEN 96 clips each, night and day, 15 min apart, 30 s long, staggered by camera
    for camera, clips in zip(("lobby-1", "dock-7"), day, strict=True):
        offset = camera_offset_s(camera, 900)
        assert len(clips) == 96
        assert clips[0].start == at(offset) and clips[-1].start == at(95 * 900 + offset)
        assert {c.end - c.start for c in clips} == {timedelta(seconds=30)}
        assert clips[0].key == f"clips/camera={camera}/date=2026-11-25/{clips[0].key.rsplit('/', 1)[1]}"
    assert camera_offset_s("lobby-1", 900) != camera_offset_s("dock-7", 900)


def test_plan_adds_the_clips_of_the_camera_alerts_in_the_window():
    config = ScheduleConfig(every_s=3600, duration_s=60, offset_s=0)
    mine, other, late = alert("cam-1", 1800), alert("cam-2", 1800), alert("cam-1", 7200)
    # WHEN an hour is planned THEN one normal slot and this camera's alert (5 s before to 10 s after)
    assert plan_clips("cam-1", T0, at(3600), config, [late, other, mine]) == [
        ClipRequest(camera_id="cam-1", kind="normal", start=T0, end=at(60)),
        ClipRequest(camera_id="cam-1", kind="alert", start=at(1795), end=at(1810), alert_id=mine.alert_id,
                    event_at=at(1800)),
    ]
    assert plan_clips("cam-1", T0, at(3600), config, [mine])[1].key == alert_clip_key("cam-1", at(1800))
    assert alert_clip_key("cam-1", at(1800)) == "alerts/camera=cam-1/date=2026-11-25/20261125T002955000Z_20261125T003010000Z.mp4"


def test_a_schedule_whose_clip_is_longer_than_its_period_is_refused():
    with pytest.raises(ValidationError, match="duration_s \\(120.0\\) must not exceed every_s \\(60.0\\)"):
        ScheduleConfig(every_s=60, duration_s=120)


def test_the_scheduler_hands_each_clip_out_once_after_it_settles():
    scheduler = ArchiveScheduler(ScheduleConfig(every_s=600, duration_s=30, offset_s=0, settle_s=20))
    scheduler.add_camera("cam-1", T0)
    a = scheduler.add_alert(alert("cam-1", 100))
    # WHEN polled before the alert's post-roll has settled THEN only the first normal slot is due
    assert scheduler.due(at(105)) == [ClipRequest(camera_id="cam-1", kind="normal", start=T0, end=at(30))]
    # WHEN polled again later THEN the alert clip (ends 110 s, settled at 130 s) and nothing twice
    assert scheduler.due(at(130)) == [a]
    assert scheduler.due(at(130)) == []
    assert [r.start for r in scheduler.due(at(1300))] == [at(600), at(1200)]


def fragment(number: int, start_s: float, duration_s: float = 1.0, size: int = 1000) -> Fragment:
    return Fragment(number=str(number), start=at(start_s), duration_s=duration_s, size_bytes=size)


def spans(runs) -> list[tuple[float, float, int]]:
    return [((r.start - T0).total_seconds(), (r.end - T0).total_seconds(), len(r.fragments)) for r in runs]


def test_fragment_runs_are_sorted_deduplicated_and_split_at_holes():
    # GIVEN ListFragments' unordered answer with a duplicate and a 2 s hole at 3..5 s
    listed = [fragment(i, i) for i in (7, 1, 0, 2, 5, 6, 2, 9)]
    # WHEN 0.5..7.5 s is planned THEN two runs, and the fragment holding 0.5 s opens the first
    assert spans(plan_fragment_runs(listed, at(0.5), at(7.5))) == [(0, 3, 3), (5, 8, 3)]
    # AND jitter below the tolerance is no hole
    assert spans(plan_fragment_runs([fragment(0, 0), fragment(1, 1.3)], T0, at(3))) == [(0, 2.3, 2)]


def test_fragment_runs_respect_the_getclip_fragment_and_byte_limits():
    listed = [fragment(i, i, size=40 * 1024 * 1024) for i in range(5)]
    # WHEN 40 MB fragments are planned THEN at most 2 per run (100 MB); and 200 fragments at most
    assert spans(plan_fragment_runs(listed, T0, at(5))) == [(0, 2, 2), (2, 4, 2), (4, 5, 1)]
    many = [fragment(i, i * 0.5, duration_s=0.5) for i in range(450)]
    assert spans(plan_fragment_runs(many, T0, at(225))) == [(0, 100, 200), (100, 200, 200), (200, 225, 50)]


def clip(start_s: float, end_s: float) -> FetchedClip:
    return FetchedClip(Path("x.mp4"), at(start_s), at(end_s), ClipProbe((0.0,), end_s - start_s, True))


def test_piece_keys_keep_the_alert_key_on_the_piece_of_the_event():
    request = ClipRequest(camera_id="c", kind="alert", start=at(10), end=at(25), alert_id="a", event_at=at(15))
    keys = piece_keys(request, [clip(9, 12), clip(14, 26)])
    assert keys == ["alerts/camera=c/date=2026-11-25/20261125T000010000Z_20261125T000012000Z.mp4", request.key]
    normal = ClipRequest(camera_id="c", kind="normal", start=at(10), end=at(25))
    assert piece_keys(normal, [clip(9, 26)]) == [normal.key]


def test_a_verdict_labels_the_frames_from_the_event_start():
    probe = ClipProbe(tuple(i / 10 for i in range(60)), 6.0, True)
    label = FeedbackLabel(alert_id="a", camera_id="c", label="false_alarm", operator="ana", labelled_at=T0)
    assert events_for(label, probe, at(1), at(3)) == [LabelledEvent(start_frame=20, end_frame=59, label="false_alarm")]
    assert events_for(label.model_copy(update={"label": "true_incident"}), probe, at(1), None) == [
        LabelledEvent(start_frame=0, end_frame=59, label="anomaly")
    ]
    assert events_for(None, probe, at(1), at(3)) == []


def test_a_re_archived_clip_keeps_its_labels_and_new_clips_are_appended():
    labelled = ManifestLine(source_ref="s3://b/k1", kind="alert", events=[LabelledEvent(start_frame=1, end_frame=2)])
    again = ManifestLine(source_ref="s3://b/k1", kind="alert", end=at(9))
    new = ManifestLine(source_ref="s3://b/k2", kind="normal")
    assert merge_lines([labelled], [again, new]) == [again.model_copy(update={"events": labelled.events}), new]
