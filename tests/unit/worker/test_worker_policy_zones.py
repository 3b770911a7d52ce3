"""Alert policy with a camera scene (issue 17): regions placed in zones by the bottom centre of
their box, one event per (event type, zone), dwell for loitering, privacy masks, arming schedules,
and the checkpointed state (version 2, reading version 1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from contracts.alert import AlertRecord, Severity, make_alert_id
from contracts.camera_scene import CameraScene
from contracts.inference import Region
from worker.config import PolicyConfig
from worker.policy import AlertPolicy

T0 = datetime(2026, 11, 25, 14, 45, 7, tzinfo=UTC)  # a Wednesday, 15:45 in Berlin
DETECTED_AT = datetime(2026, 11, 25, 14, 46, 0, tzinfo=UTC)
FPS = 5.0
LEFT_HALF = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
RIGHT_HALF = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
# A box whose bottom centre is (0.25, 0.8): in the left half; and one at (0.75, 0.8)
LEFT = Region(x=0.15, y=0.4, w=0.2, h=0.4, score=2.0)
RIGHT = Region(x=0.65, y=0.4, w=0.2, h=0.4, score=3.0)
# Its top reaches into the right half's top band, its bottom centre does not
STRADDLING = Region(x=0.3, y=0.1, w=0.1, h=0.5, score=2.0)


def scene(**fields: object) -> CameraScene:
    return CameraScene.model_validate(fields)


def make_policy(**config: object) -> AlertPolicy:
    defaults = {"min_frames": 2, "clear_after_s": 1.0, "cooldown_s": 0.0}
    return AlertPolicy("cam-1", "hq", PolicyConfig(**{**defaults, **config}), clock=lambda: DETECTED_AT)


def feed(
    policy: AlertPolicy, frames: list[list[Region] | None], camera_scene: CameraScene, *, start: datetime = T0
) -> dict[int, list[AlertRecord]]:
    """Frame i at i / FPS: None is a normal frame (score 0.1), a list the regions of an anomalous
    one (score 2.0); the alerts raised, by frame index."""
    raised = {}
    for i, regions in enumerate(frames):
        alerts = policy.observe(
            pts_s=i / FPS,
            captured_at=start + timedelta(seconds=i / FPS),
            score=0.1 if regions is None else 2.0,
            threshold=1.0,
            regions=regions or [],
            model_version="m-1",
            scene=camera_scene,
        )
        if alerts:
            raised[i] = alerts
    return raised


def test_an_anomaly_in_an_intrusion_zone_alerts_intrusion_with_the_zone():
    # GIVEN a restricted zone on the left half of the view
    door = scene(zones=[{"name": "door", "polygon": LEFT_HALF, "event_type": "intrusion"}])
    # WHEN an object is anomalous there for two frames
    alerts = feed(make_policy(), [None, [LEFT], [LEFT]], door)
    # THEN one intrusion alert, in zone door, with the zone in its id
    started_at = T0 + timedelta(seconds=1 / FPS)
    assert alerts == {
        2: [
            AlertRecord(
                alert_id=make_alert_id("cam-1", "intrusion", started_at, "door"),
                camera_id="cam-1",
                site="hq",
                event_type="intrusion",
                severity=Severity.MEDIUM,
                score=2.0,
                threshold=1.0,
                started_at=started_at,
                frame_at=T0 + timedelta(seconds=2 / FPS),
                detected_at=DETECTED_AT,
                media_time_s=1 / FPS,
                regions=[LEFT],
                model_version="m-1",
                zone="door",
            )
        ]
    }


def test_a_region_is_placed_by_the_bottom_centre_of_its_box():
    # GIVEN a zone on the right half; WHEN a box reaches into it but stands outside it
    door = scene(zones=[{"name": "door", "polygon": RIGHT_HALF}])
    alerts = feed(make_policy(), [[STRADDLING], [STRADDLING]], door)
    # THEN it is a scene_anomaly outside every zone, with the version 1 id
    [[alert]] = alerts.values()
    assert (alert.event_type, alert.zone, alert.alert_id) == (
        "scene_anomaly",
        None,
        make_alert_id("cam-1", "scene_anomaly", T0),
    )


def test_outside_zones_ignore_raises_nothing_outside_the_zones():
    door = scene(zones=[{"name": "door", "polygon": LEFT_HALF}], outside_zones="ignore")
    assert feed(make_policy(), [[RIGHT], [RIGHT], [RIGHT]], door) == {}
    # and a frame over the threshold with no regions at all has no place: nothing either
    assert feed(make_policy(), [[], [], []], door) == {}


def test_two_zones_give_two_alerts_on_the_same_frame():
    # GIVEN two zones, WHEN objects are anomalous in both at once
    zones = scene(
        zones=[
            {"name": "left", "polygon": LEFT_HALF, "event_type": "intrusion"},
            {"name": "right", "polygon": RIGHT_HALF, "event_type": "scene_anomaly", "severity": "critical"},
        ]
    )
    alerts = feed(make_policy(), [[LEFT, RIGHT], [LEFT, RIGHT]], zones)
    # THEN one alert per zone, each with its own regions, score and severity
    assert [(a.event_type, a.zone, a.regions, a.score, a.severity) for a in alerts[1]] == [
        ("intrusion", "left", [LEFT], 2.0, Severity.MEDIUM),
        ("scene_anomaly", "right", [RIGHT], 3.0, Severity.CRITICAL),
    ]


def test_loitering_alerts_once_the_region_has_stayed_dwell_s_in_the_zone():
    # GIVEN a loitering zone with a 2 s dwell, and a region there on every frame, one frame missed
    bench = scene(zones=[{"name": "bench", "polygon": LEFT_HALF, "event_type": "loitering", "dwell_s": 2.0}])
    frames: list[list[Region] | None] = [[LEFT]] * 15
    frames[5] = None  # not boxed for a frame: a dwell survives gaps under clear_after_s
    # WHEN
    alerts = feed(make_policy(), frames, bench)
    # THEN the alert comes at frame 10 (2.0 s after frame 0), as loitering in bench
    assert list(alerts) == [10]
    [alert] = alerts[10]
    assert (alert.event_type, alert.zone, alert.started_at, alert.media_time_s) == ("loitering", "bench", T0, 0.0)


def test_a_short_stay_in_a_loitering_zone_raises_nothing():
    bench = scene(zones=[{"name": "bench", "polygon": LEFT_HALF, "event_type": "loitering", "dwell_s": 2.0}])
    assert feed(make_policy(), [[LEFT]] * 8 + [None] * 10 + [[LEFT]] * 8, bench) == {}


def test_a_region_in_a_privacy_mask_is_dropped():
    # GIVEN a mask on the left half; WHEN the only anomalous region stands in it
    masked = scene(privacy_masks=[{"name": "neighbour", "polygon": LEFT_HALF}])
    assert feed(make_policy(), [[LEFT], [LEFT], [LEFT]], masked) == {}
    # THEN nothing; a region outside the mask still alerts, without the masked one
    alerts = feed(make_policy(), [[LEFT, RIGHT], [LEFT, RIGHT]], masked)
    assert [(a.event_type, a.regions) for a in alerts[1]] == [("scene_anomaly", [RIGHT])]


ARMED_OFFICE_HOURS = {  # armed Mon-Fri 08:00-18:00, Berlin
    "timezone": "Europe/Berlin",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}],
}


def test_disarmed_alerts_are_raised_with_notify_false_unless_the_zone_says_low():
    # GIVEN a zone that notifies low when disarmed, and the rest of the view counted only
    zones = scene(
        zones=[{"name": "door", "polygon": LEFT_HALF, "when_disarmed": "low", "severity": "critical"}],
        schedule=ARMED_OFFICE_HOURS,
    )
    night = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)  # 23:00 in Berlin
    # WHEN anomalies happen in both at night, and in office hours
    policy = make_policy()
    at_night = feed(policy, [[LEFT, RIGHT], [LEFT, RIGHT]], zones, start=night)
    by_day = feed(make_policy(), [[LEFT, RIGHT], [LEFT, RIGHT]], zones)
    # THEN at night: the door's alert is notified at severity low, the other one is raised, not notified
    assert [(a.zone, a.armed, a.notify, a.severity) for a in at_night[1]] == [
        ("door", False, True, Severity.LOW),
        (None, False, False, Severity.MEDIUM),
    ]
    assert policy.stats.not_notified == 1
    # and by day both are armed and notified at their own severity
    assert [(a.zone, a.armed, a.notify, a.severity) for a in by_day[1]] == [
        ("door", True, True, Severity.CRITICAL),
        (None, True, True, Severity.MEDIUM),
    ]


def test_state_round_trips_and_a_version_1_state_is_read_as_the_default_event():
    # GIVEN a policy with an open zone event, snapshotted through JSON
    door = scene(zones=[{"name": "door", "polygon": LEFT_HALF}])
    before = make_policy()
    first = feed(before, [[LEFT], [LEFT]], door)
    after = make_policy()
    after.restore(json.loads(json.dumps(before.snapshot())))
    # WHEN the restored one sees the event go on, THEN no second alert; its state is the same
    assert feed(after, [[LEFT]] * 3, door) == {}
    assert list(first) == [1] and after.event_open
    # AND a version 1 state (a checkpoint written before zones) continues the zone-less event
    v1 = {
        "run": None,
        "event": {
            "start_pts_s": 0.0,
            "started_at": T0.isoformat(),
            "frames": 2,
            "peak": 2.0,
            "below_since_s": None,
            "suppressed": False,
        },
        "last_alert_pts_s": 0.2,
    }
    old = make_policy()
    old.restore(v1)
    assert old.snapshot() == {
        "version": 2,
        "tracks": [{"event_type": "scene_anomaly", "zone": None, **v1}],
    }
    assert feed(old, [[LEFT]] * 3, CameraScene()) == {}
