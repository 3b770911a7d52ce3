"""Score history: a camera's analysed-frame scores, bounded to pre-roll + post-roll of media time, and
an alert's trace (seconds from its start, score) once its post-roll is in, or at flush."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from archive.keys import alert_clip_ref
from archive.scores import ScoreHistory
from contracts.alert import AlertRecord, make_alert_id
from contracts.score_trace import ScoreTrace, score_trace_key

EPOCH = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def make_alert(media_s: float, *, clip: bool = True) -> AlertRecord:
    started = EPOCH + timedelta(seconds=media_s)
    return AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", started), camera_id="cam-1", site="hq",
        event_type="scene_anomaly", severity="high", score=0.9, threshold=0.5, started_at=started,
        frame_at=started, detected_at=started, media_time_s=media_s, model_version="m1",
        clip=alert_clip_ref("vigil-archive", "cam-1", started, 1.0, 2.0) if clip else None,
    )


def test_trace_is_built_when_the_post_roll_is_analysed_with_gaps_where_frames_were_not():
    # GIVEN a history with 1 s pre-roll / 2 s post-roll, frames every 0.5 s from 0 s
    history = ScoreHistory(pre_roll_s=1.0, post_roll_s=2.0)
    for pts in (0.0, 0.5, 1.0, 1.5, 2.0):
        assert history.add(pts, pts / 10) == []
    # WHEN an alert starting at 2.0 s is raised, frames go on but 3.0 s was gated (not analysed)
    alert = make_alert(2.0)
    history.watch(alert)
    outputs = [history.add(pts, pts / 10) for pts in (2.5, 3.5, 3.999)]
    # THEN nothing is ready before the post-roll ends
    assert outputs == [[], [], []]
    # WHEN the frame at 4.0 s (start + post-roll) is analysed
    [(key, trace)] = history.add(4.0, 0.4)
    # THEN the trace holds the frames from 1 s before to 2 s after the start, relative to it, with the gap
    assert key == score_trace_key(alert.clip.key) == alert.clip.key.removesuffix(".mp4") + ".scores.json"
    assert trace == ScoreTrace(
        alert_id=alert.alert_id, camera_id="cam-1", threshold=0.5, model_version="m1", pre_roll_s=1.0,
        post_roll_s=2.0,
        points=[(-1.0, 0.1), (-0.5, 0.15), (0.0, 0.2), (0.5, 0.25), (1.5, 0.35), (1.999, 0.3999), (2.0, 0.4)],
    )
    # AND the alert is not traced twice
    assert history.add(4.5, 0.45) == [] and history.flush() == []
    assert trace.model_dump(mode="json")["schema_version"] == "1"


def test_history_is_bounded_by_pre_roll_plus_post_roll():
    # GIVEN a 1 s + 2 s history WHEN 100 s of frames at 10 fps are added
    history = ScoreHistory(pre_roll_s=1.0, post_roll_s=2.0)
    for i in range(1000):
        history.add(i / 10, 0.1)
    # THEN it holds 3 s of them (99.9 back to 96.9)
    assert len(history) == 31


def test_flush_gives_the_traces_of_alerts_still_in_their_post_roll_and_skips_alerts_without_a_clip():
    # GIVEN an alert at 1 s whose footage ends 1.5 s in, and one with no clip (no archive bucket)
    history = ScoreHistory(pre_roll_s=1.0, post_roll_s=2.0)
    history.add(0.5, 0.2)
    history.watch(make_alert(1.0))
    history.watch(make_alert(1.0, clip=False))
    history.add(1.5, 0.7)
    # WHEN the source ends THEN the clipped alert's trace has what was analysed
    [(_, trace)] = history.flush()
    assert trace.points == [(-0.5, 0.2), (0.5, 0.7)]
