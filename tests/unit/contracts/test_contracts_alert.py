from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from contracts.alert import AlertRecord, make_alert_id
from contracts.inference import FrameResult

START = datetime(2026, 11, 25, 14, 0, 1, 250000, tzinfo=UTC)


def test_alert_id_is_deterministic_and_timezone_independent():
    same_instant = START.astimezone(timezone(timedelta(hours=-5)))
    assert make_alert_id("cam-1", "scene_anomaly", START) == make_alert_id("cam-1", "scene_anomaly", same_instant)
    assert make_alert_id("cam-1", "scene_anomaly", START) != make_alert_id("cam-2", "scene_anomaly", START)
    assert make_alert_id("cam-1", "scene_anomaly", START) != make_alert_id(
        "cam-1", "scene_anomaly", START + timedelta(milliseconds=1)
    )


def test_alert_serialises_times_as_utc_iso_and_round_trips():
    alert = AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", START), camera_id="cam-1", site="hq",
        event_type="scene_anomaly", severity="high", score=3.0, threshold=1.0, started_at=START,
        frame_at=START, detected_at=START, model_version="m1",
    )
    data = alert.model_dump(mode="json")
    assert data["started_at"] == "2026-11-25T14:00:01.250Z"
    assert (data["schema_version"], data["zone"], data["tamper"], data["armed"], data["notify"]) == (
        "2", None, None, True, True)
    assert AlertRecord.model_validate_json(alert.model_dump_json()) == alert


def test_alert_rejects_other_schema_versions_and_naive_times():
    base = {"alert_id": "a", "camera_id": "c", "site": "s", "event_type": "e", "severity": "low", "score": 1, "threshold": 1,
                "started_at": START, "frame_at": START, "detected_at": START, "model_version": "m"}
    with pytest.raises(ValidationError):
        AlertRecord(**base, schema_version="3")
    with pytest.raises(ValidationError):
        AlertRecord(**{**base, "started_at": datetime(2026, 1, 1)})


def test_frame_result_rejects_nan():
    with pytest.raises(ValidationError, match="finite"):
        FrameResult(score=float("nan"))


# Issue 15: the contract refuses what cannot be an alert, on the worker's side and the Lambda's.
VALID_JSON = {
    "schema_version": "1", "alert_id": make_alert_id("cam-1", "scene_anomaly", START), "camera_id": "cam-1",
    "site": "hq", "event_type": "scene_anomaly", "severity": "high", "score": 3.0, "threshold": 1.0,
    "started_at": "2026-11-25T14:00:01.250Z", "frame_at": "2026-11-25T14:00:02.000Z",
    "detected_at": "2026-11-25T14:00:02.300Z", "media_time_s": 12.5,
    "regions": [{"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4, "score": 2.5}],
    "snapshot": {"bucket": "vigil-archive", "key": "snapshots/a.jpg"}, "clip": None, "model_version": "m1",
}


def _refusal(json_text: str) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        AlertRecord.model_validate_json(json_text)
    return [(".".join(map(str, e["loc"])), e["type"]) for e in caught.value.errors()]


def test_a_record_valid_before_the_bounds_still_reads_the_same():
    import json

    alert = AlertRecord.model_validate_json(json.dumps(VALID_JSON))
    assert alert.model_dump(mode="json") == VALID_JSON


@pytest.mark.parametrize(
    ("field", "token"),
    [("score", "NaN"), ("score", "Infinity"), ("threshold", "-Infinity"), ("media_time_s", "NaN")],
)
def test_nan_and_infinite_numbers_are_refused(field, token):
    # GIVEN a record whose number is NaN or +/-Infinity, as Python's json.dumps writes them (case 6)
    import json

    text = json.dumps({**VALID_JSON, field: "@@"}).replace('"@@"', token)

    # WHEN it is read, THEN it is refused, naming the field
    assert _refusal(text) == [(field, "finite_number")]


def test_a_nan_region_score_is_refused():
    import json

    text = json.dumps(VALID_JSON).replace('"score": 2.5', '"score": NaN')
    assert _refusal(text) == [("regions", "value_error")]


@pytest.mark.parametrize(
    ("value", "error"),
    [("", "string_too_short"), ("a" * 129, "string_too_long"), ("a b", "string_pattern_mismatch")],
)
def test_empty_overlong_or_odd_alert_ids_are_refused(value, error):
    import json

    assert _refusal(json.dumps({**VALID_JSON, "alert_id": value})) == [("alert_id", error)]


@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
     "1999-12-31T23:59:59Z"],
)
@pytest.mark.parametrize("field", ["started_at", "frame_at", "detected_at"])
def test_times_outside_a_sane_window_are_refused(field, when):
    # GIVEN a time a camera or worker cannot have meant: year 1 (one that overflows once in UTC),
    # the epoch of an unset clock, year 9999 (cases 4 and 9)
    import json

    # WHEN the record is read, THEN it is refused, naming the field
    assert _refusal(json.dumps({**VALID_JSON, field: when})) == [(field, "value_error")]


def test_a_time_a_day_ahead_is_refused_but_minutes_of_clock_skew_are_not():
    import json

    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert AlertRecord.model_validate_json(json.dumps({**VALID_JSON, "detected_at": soon}))
    assert _refusal(json.dumps({**VALID_JSON, "detected_at": later})) == [("detected_at", "value_error")]


def test_the_largest_alert_the_contract_allows_fits_one_sns_message():
    # GIVEN an alert with every string, region list and S3 key at its bound, full of characters that
    # JSON escapes twice (once in the alert JSON, once in the SNS message structure)
    import json
    import sys

    from alert_lambda.messages import Links, build_notification
    from contracts.alert import MAX_ID_CHARS, MAX_NAME_CHARS, MAX_REGIONS, MAX_S3_KEY_CHARS

    heavy = '"\\\u2028'
    key = (heavy * MAX_S3_KEY_CHARS)[:MAX_S3_KEY_CHARS]
    alert = AlertRecord(
        alert_id="a" * MAX_ID_CHARS, camera_id=(heavy * MAX_NAME_CHARS)[:MAX_NAME_CHARS],
        site=(heavy * MAX_ID_CHARS)[:MAX_ID_CHARS], event_type=(heavy * MAX_ID_CHARS)[:MAX_ID_CHARS],
        severity="critical", score=-sys.float_info.max, threshold=sys.float_info.min, started_at=START,
        frame_at=START, detected_at=START, media_time_s=-sys.float_info.max,
        regions=[{"x": 0.123456789, "y": 0.123456789, "w": 0.123456789, "h": 0.123456789,
                  "score": -sys.float_info.max}] * MAX_REGIONS,
        snapshot={"bucket": "b" * 63, "key": key}, clip={"bucket": "b" * 63, "key": key},
        model_version=(heavy * MAX_NAME_CHARS)[:MAX_NAME_CHARS],
    )
    link = "https://b.s3.amazonaws.com/" + "k" * 4000  # a presigned URL with a long session token
    links = Links(snapshot_url=link, clip_url=link, expires_in_s=3600, console_url=link)

    # WHEN its SNS message is built
    notification = build_notification(alert, links)

    # THEN message, subject and attributes together stay under half of SNS's 256 KiB
    size = len(notification.message.encode()) + len(notification.subject.encode())
    size += sum(len(k) + len(v["StringValue"].encode()) + 6 for k, v in notification.attributes.items())
    assert 64 * 1024 < size < 128 * 1024, size
    assert json.loads(notification.message)["sqs"] == alert.model_dump_json()


# Issue 17: version 2 adds zone, tamper, armed and notify; version 1 records still read and write the same.
def test_a_version_1_record_reads_with_the_defaults_and_writes_back_as_version_1():
    import json

    # GIVEN a record an older worker wrote (version 1, no zone)
    # WHEN it is read
    alert = AlertRecord.model_validate_json(json.dumps(VALID_JSON))
    # THEN it is armed, notified, in no zone, and serialises back as exactly what was read
    assert (alert.schema_version, alert.zone, alert.tamper, alert.armed, alert.notify) == ("1", None, None, True, True)
    assert json.loads(alert.model_dump_json()) == VALID_JSON


def test_a_version_1_record_with_a_version_2_field_is_refused():
    import json

    assert _refusal(json.dumps({**VALID_JSON, "zone": "door"})) == [("", "value_error")]


def test_a_version_2_record_round_trips_its_zone_and_tamper():
    import json

    zone = {**VALID_JSON, "schema_version": "2", "zone": "door", "tamper": None, "armed": False, "notify": False}
    tamper = {**VALID_JSON, "schema_version": "2", "event_type": "camera_tamper", "zone": None, "tamper": "moved",
              "armed": True, "notify": True}
    for data in (zone, tamper):
        assert json.loads(AlertRecord.model_validate_json(json.dumps(data)).model_dump_json()) == data
    assert _refusal(json.dumps({**zone, "tamper": "blank"})) == [("", "value_error")]  # only camera_tamper


def test_a_zone_is_part_of_the_id_and_no_zone_keeps_the_version_1_id():
    assert make_alert_id("cam-1", "intrusion", START, None) == make_alert_id("cam-1", "intrusion", START)
    assert make_alert_id("cam-1", "scene_anomaly", START) == "6a26b907-2c7d-5f67-a2e2-e036c974b8c9"  # as version 1 computed it
    assert len({make_alert_id("cam-1", "intrusion", START, zone) for zone in (None, "door", "yard")}) == 3
