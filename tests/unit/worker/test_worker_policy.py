"""Alert policy: events open after min_frames over the threshold, alert once, close after
clear_after_s below it, and respect the cooldown. Deterministic alert ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from contracts.alert import AlertRecord, Severity, make_alert_id
from contracts.inference import Region
from worker.config import PolicyConfig
from worker.policy import AlertPolicy, severity_for

T0 = datetime(2026, 11, 25, 14, 45, 7, tzinfo=UTC)
DETECTED_AT = datetime(2026, 11, 25, 14, 46, 0, tzinfo=UTC)
FPS = 5.0
REGION = Region(x=0.1, y=0.2, w=0.3, h=0.4, score=2.0)


def make_policy(**config: object) -> AlertPolicy:
    defaults = {"min_frames": 2, "clear_after_s": 2.0, "cooldown_s": 0.0}
    return AlertPolicy("cam-1", "hq", PolicyConfig(**{**defaults, **config}), clock=lambda: DETECTED_AT)


def feed(policy: AlertPolicy, scores: list[float], *, first_index: int = 0) -> dict[int, AlertRecord]:
    """Frames at FPS, frame i captured at T0 + i / FPS; the alerts raised, by frame index."""
    alerts = {}
    for offset, score in enumerate(scores):
        i = first_index + offset
        raised = policy.observe(
            pts_s=i / FPS,
            captured_at=T0 + timedelta(seconds=i / FPS),
            score=score,
            threshold=1.0,
            regions=[REGION.model_copy(update={"score": score})],
            model_version="m-1",
        )
        if raised:
            [alerts[i]] = raised
    return alerts


def test_event_opens_after_min_frames_consecutive_and_alert_carries_the_event():
    # GIVEN min_frames=2 and a single over-threshold frame, a dip, then a run of three
    policy = make_policy()

    # WHEN the scores are observed
    alerts = feed(policy, [0.2, 1.5, 0.3, 1.2, 2.6, 1.1])

    # THEN one alert, raised by frame 4, starting at frame 3 (the first over-threshold frame of the run)
    started_at = T0 + timedelta(seconds=3 / FPS)
    assert alerts == {
        4: AlertRecord(
            alert_id=make_alert_id("cam-1", "scene_anomaly", started_at),
            camera_id="cam-1",
            site="hq",
            event_type="scene_anomaly",
            severity=Severity.HIGH,
            score=2.6,
            threshold=1.0,
            started_at=started_at,
            frame_at=T0 + timedelta(seconds=4 / FPS),
            detected_at=DETECTED_AT,
            media_time_s=3 / FPS,
            regions=[REGION.model_copy(update={"score": 2.6})],
            model_version="m-1",
        )
    }
    assert policy.event_open


def test_peak_score_is_the_highest_of_the_opening_run():
    # GIVEN min_frames=3 and a run whose highest score is its first frame
    policy = make_policy(min_frames=3)

    # WHEN
    alerts = feed(policy, [3.0, 1.0, 1.5])

    # THEN the alert carries the peak score, the regions of the frame that opened the event
    assert (alerts[2].score, alerts[2].regions, alerts[2].severity) == (
        3.0,
        [REGION.model_copy(update={"score": 1.5})],
        Severity.HIGH,
    )


def test_score_equal_to_threshold_counts_as_over_and_min_frames_1_alerts_at_once():
    policy = make_policy(min_frames=1)

    alerts = feed(policy, [0.0, 1.0])

    assert list(alerts) == [1]
    assert alerts[1].started_at == alerts[1].frame_at == T0 + timedelta(seconds=1 / FPS)


def test_exactly_one_alert_per_event_however_long():
    policy = make_policy()

    alerts = feed(policy, [2.0] * 100)

    assert list(alerts) == [1]


def test_short_dips_below_threshold_do_not_close_the_event():
    # GIVEN an open event, WHEN the score dips below for 1.8 s (9 frames at 5 fps) and comes back
    policy = make_policy(clear_after_s=2.0)

    alerts = feed(policy, [2.0, 2.0] + [0.1] * 9 + [2.0, 2.0])

    # THEN it is still the same event: one alert
    assert list(alerts) == [1]
    assert policy.event_open


def test_event_closes_after_clear_after_s_below_and_a_new_event_is_a_new_alert():
    # GIVEN an event, WHEN the score stays below for 2.0 s (frames 2..12 span 2.0 s) and rises again
    policy = make_policy(clear_after_s=2.0)
    scores = [2.0, 2.0] + [0.1] * 11 + [2.0, 2.0]

    alerts = feed(policy, scores)

    # THEN two alerts with different ids, the second starting at frame 13
    assert list(alerts) == [1, 14]
    assert alerts[14].started_at == T0 + timedelta(seconds=13 / FPS)
    assert alerts[1].alert_id != alerts[14].alert_id
    assert policy.stats.events == 2


def test_clear_is_measured_in_media_time_not_frames():
    # GIVEN sparse frames (motion gate heartbeats): an event, then below-threshold frames 2 s apart
    policy = make_policy(clear_after_s=2.0)
    observe = {"threshold": 1.0, "regions": [], "model_version": "m-1"}
    for pts_s, score in [(0.0, 2.0), (0.2, 2.0), (0.4, 0.1)]:
        policy.observe(pts_s=pts_s, captured_at=T0 + timedelta(seconds=pts_s), score=score, **observe)
    assert policy.event_open

    # WHEN the next frame, 2.0 s of media time later, is still below
    policy.observe(pts_s=2.4, captured_at=T0 + timedelta(seconds=2.4), score=0.1, **observe)

    # THEN the event is closed
    assert not policy.event_open


def test_cooldown_suppresses_a_new_event_soon_after_an_alert():
    # GIVEN cooldown 10 s; event 1 at frames 0-1, closes, event 2 opens 4 s later, event 3 after 12 s
    policy = make_policy(clear_after_s=0.0, cooldown_s=10.0)
    scores = [2.0, 2.0, 0.1] + [0.1] * 17 + [2.0, 2.0, 0.1] + [0.1] * 37 + [2.0, 2.0]

    # WHEN
    alerts = feed(policy, scores)

    # THEN event 2 (frame 21, 4.0 s after the alert at frame 1) is suppressed; event 3 (frame 61,
    # 12 s after the last alert) alerts
    assert list(alerts) == [1, 61]
    assert (policy.stats.events, policy.stats.alerts, policy.stats.suppressed) == (3, 2, 1)


def test_a_suppressed_event_that_lasts_past_the_cooldown_still_raises_no_alert():
    # GIVEN cooldown 1 s: an alert, the event closes, a new event opens within the cooldown and lasts
    policy = make_policy(clear_after_s=0.0, cooldown_s=1.0)

    alerts = feed(policy, [2.0, 2.0, 0.1, 2.0, 2.0] + [2.0] * 20)

    # THEN only the first alert: the flapping event is one suppressed event, not a late alert
    assert list(alerts) == [1]
    assert policy.stats.suppressed == 1


def test_alert_ids_are_deterministic_across_policies():
    # GIVEN two policies (a worker and its restart) that see the same frames
    scores = [0.1, 2.0, 2.0, 0.1]

    first, second = feed(make_policy(), scores), feed(make_policy(), scores)

    # THEN the same alert id; an event starting one frame later gets another id
    later = feed(make_policy(), scores, first_index=1)
    assert (
        first[2].alert_id
        == second[2].alert_id
        == make_alert_id("cam-1", "scene_anomaly", T0 + timedelta(seconds=0.2))
    )
    assert later[3].alert_id != first[2].alert_id


def test_event_type_is_part_of_the_id():
    scores = [2.0, 2.0]

    default, intrusion = feed(make_policy(), scores), feed(make_policy(event_type="intrusion"), scores)

    assert default[1].alert_id != intrusion[1].alert_id
    assert intrusion[1].event_type == "intrusion"


@pytest.mark.parametrize(
    ("score", "threshold", "severity"),
    [
        (1.0, 1.0, Severity.LOW),
        (1.49, 1.0, Severity.LOW),
        (1.5, 1.0, Severity.MEDIUM),
        (2.49, 1.0, Severity.MEDIUM),
        (2.5, 1.0, Severity.HIGH),
        (3.99, 1.0, Severity.HIGH),
        (4.0, 1.0, Severity.CRITICAL),
        (0.8, 0.2, Severity.CRITICAL),
        (0.5, 0.0, Severity.CRITICAL),
    ],
)
def test_severity_from_score_over_threshold(score: float, threshold: float, severity: Severity):
    assert severity_for(score, threshold) is severity


@pytest.mark.parametrize("cut", range(1, 20))
def test_a_policy_restored_from_a_snapshot_raises_what_an_uninterrupted_one_did(cut: int) -> None:
    # GIVEN the scores of two events (the first starting at frame 2, one frame over, then a run)
    scores = [0.1, 0.2, 1.5, 1.6, 2.0, *[0.1] * 12, 1.3, 1.4, 0.2]  # the first closes 2 s after frame 5
    uninterrupted = feed(make_policy(), scores)
    # WHEN a policy stops after `cut` frames (a worker killed) and a new one takes up its JSON snapshot
    before = make_policy()
    first = feed(before, scores[:cut])
    after = make_policy()
    after.restore(json.loads(json.dumps(before.snapshot())))
    second = feed(after, scores[cut:], first_index=cut)
    # THEN together they raised the same alerts, under the same ids, on the same frames
    assert {i: a.alert_id for i, a in {**first, **second}.items()} == {i: a.alert_id for i, a in uninterrupted.items()}
    assert len(uninterrupted) == 2


def test_a_camera_with_an_unset_clock_still_alerts_stamped_with_the_worker_clock() -> None:
    # GIVEN a camera whose clock says 1970
    policy = make_policy()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    # WHEN an event opens
    alerts = [policy.observe(pts_s=i / FPS, captured_at=epoch + timedelta(seconds=i / FPS), score=2.0,
                             threshold=1.0, regions=[REGION], model_version="m-1") for i in range(2)]
    # THEN the alert is raised (not lost to the contract), stamped with the worker's clock
    [alert] = alerts[1]
    assert (alert.started_at, alert.frame_at, alert.detected_at) == (DETECTED_AT, DETECTED_AT, DETECTED_AT)
