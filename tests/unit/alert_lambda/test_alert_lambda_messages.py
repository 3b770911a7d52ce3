"""alert_lambda.messages: what each protocol's subscribers read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from alert_lambda.messages import (
    MAX_SMS_CHARS,
    MAX_SUBJECT_CHARS,
    Links,
    build_attributes,
    build_email,
    build_notification,
    build_sms,
    build_subject,
    human_duration,
)
from contracts.alert import AlertRecord, S3Object, Severity
from contracts.inference import Region

ALERT = AlertRecord(
    alert_id="6f1c8a52-3a0e-5b8e-9d55-0c2f3b7f4e11",
    camera_id="cam-lobby-01",
    site="hq-campus",
    event_type="scene_anomaly",
    severity=Severity.HIGH,
    score=0.913,
    threshold=0.62,
    started_at=datetime(2026, 11, 25, 14, 45, 5, 900000, tzinfo=UTC),
    frame_at=datetime(2026, 11, 25, 14, 45, 7, 123000, tzinfo=UTC),
    detected_at=datetime(2026, 11, 25, 14, 45, 7, 410000, tzinfo=UTC),
    regions=[Region(x=0.41, y=0.33, w=0.12, h=0.35, score=0.97)],
    snapshot=S3Object(bucket="vigil-archive", key="snapshots/a.jpg"),
    model_version="vigil-ae-2026.11.20",
)
LINKS = Links(
    snapshot_url="https://vigil-archive.s3.amazonaws.com/snapshots/a.jpg?X-Amz-Signature=abc",
    clip_url="https://vigil-archive.s3.amazonaws.com/clips/a.mp4?X-Amz-Signature=def",
    expires_in_s=604800,
)
LONG = "x" * 300


def test_subject_names_severity_event_site_and_camera():
    assert build_subject(ALERT) == "[HIGH] scene_anomaly at hq-campus / cam-lobby-01"


def test_subject_of_long_multiline_ids_is_one_line_under_100_chars():
    alert = ALERT.model_copy(update={"site": "north\nyard " + LONG, "camera_id": LONG, "event_type": "a\tb"})
    subject = build_subject(alert)
    assert len(subject) <= MAX_SUBJECT_CHARS < 100
    assert subject.startswith("[HIGH] a b at north yard xxx") and subject.endswith("…")
    assert subject.isprintable()


def test_sms_is_one_short_line():
    assert (
        build_sms(ALERT) == "VIGIL HIGH scene_anomaly @ hq-campus/cam-lobby-01 14:45:07 UTC score 0.91/0.62"
    )


@pytest.mark.parametrize(
    ("zone", "clock"),
    [
        ("Europe/Paris", "15:45:07 CET"),
        ("Asia/Kolkata", "20:15:07 IST"),
        ("America/New_York", "09:45:07 EST"),
    ],
)
def test_sms_tells_the_time_on_the_site_clock(zone, clock):
    assert (
        build_sms(ALERT, ZoneInfo(zone))
        == f"VIGIL HIGH scene_anomaly @ hq-campus/cam-lobby-01 {clock} score 0.91/0.62"
    )


@pytest.mark.parametrize("field", ["site", "camera_id", "event_type"])
def test_sms_of_long_ids_stays_under_140_chars_and_keeps_the_score(field):
    sms = build_sms(ALERT.model_copy(update={field: LONG}))
    assert len(sms) <= MAX_SMS_CHARS < 140
    assert sms.endswith("score 0.91/0.62")


def test_email_lists_the_facts_and_the_links():
    assert build_email(ALERT, LINKS) == (
        "Vigil alert: HIGH scene_anomaly on camera cam-lobby-01 at site hq-campus.\n"
        "\n"
        "Site:       hq-campus\n"
        "Camera:     cam-lobby-01\n"
        "Event:      scene_anomaly\n"
        "Severity:   high\n"
        "Time:       2026-11-25 14:45:07 UTC (UTC+00:00), site time\n"
        "Started:    2026-11-25 14:45:05 UTC (UTC+00:00)\n"
        "Score:      0.913 (threshold 0.620)\n"
        "Regions:    1 flagged in the frame\n"
        f"Snapshot:   {LINKS.snapshot_url}\n"
        f"Clip:       {LINKS.clip_url}\n"
        "            (links valid for 7 days)\n"
        "\n"
        "Alert id:   6f1c8a52-3a0e-5b8e-9d55-0c2f3b7f4e11\n"
        "Model:      vigil-ae-2026.11.20\n"
        "Detected:   2026-11-25T14:45:07.410Z (UTC)\n"
    )


@pytest.mark.parametrize(
    ("zone", "time_line", "started_line"),
    [
        (
            "Europe/Paris",
            "Time:       2026-11-25 15:45:07 CET (UTC+01:00), site time",
            "Started:    2026-11-25 15:45:05 CET (UTC+01:00)",
        ),
        (
            "America/Los_Angeles",
            "Time:       2026-11-25 06:45:07 PST (UTC-08:00), site time",
            "Started:    2026-11-25 06:45:05 PST (UTC-08:00)",
        ),
        (
            "Pacific/Chatham",  # +13:45 in the southern summer: the day changes too
            "Time:       2026-11-26 04:30:07 +1345 (UTC+13:45), site time",
            "Started:    2026-11-26 04:30:05 +1345 (UTC+13:45)",
        ),
    ],
)
def test_email_tells_the_time_in_the_site_time_zone(zone, time_line, started_line):
    lines = build_email(ALERT, LINKS, ZoneInfo(zone)).splitlines()
    assert lines[6:8] == [time_line, started_line]
    assert lines[-1] == "Detected:   2026-11-25T14:45:07.410Z (UTC)"


def test_email_without_media_has_no_link_lines():
    email = build_email(ALERT.model_copy(update={"regions": []}), Links(expires_in_s=3600))
    assert [line.split(":")[0] for line in email.splitlines() if line.strip()] == [
        "Vigil alert",
        "Site",
        "Camera",
        "Event",
        "Severity",
        "Time",
        "Started",
        "Score",
        "Alert id",
        "Model",
        "Detected",
    ]


def test_attributes_are_the_four_filterable_strings_and_the_alert_id():
    assert build_attributes(ALERT) == {
        "severity": {"DataType": "String", "StringValue": "high"},
        "site": {"DataType": "String", "StringValue": "hq-campus"},
        "camera_id": {"DataType": "String", "StringValue": "cam-lobby-01"},
        "event_type": {"DataType": "String", "StringValue": "scene_anomaly"},
        "alert_id": {"DataType": "String", "StringValue": "6f1c8a52-3a0e-5b8e-9d55-0c2f3b7f4e11"},
    }


def test_a_resend_after_an_unknown_outcome_says_it_may_be_a_duplicate():
    assert build_attributes(ALERT, possible_duplicate=True) == {
        **build_attributes(ALERT),
        "possible_duplicate": {"DataType": "String", "StringValue": "true"},
    }


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x9b", "\r\n"])
def test_subject_has_no_line_or_paragraph_separator(separator):
    # GIVEN ids holding Unicode line/paragraph separators and C1 controls (issue 15, case 9)
    alert = ALERT.model_copy(update={"site": f"north{separator}yard", "camera_id": f"cam{separator}1"})

    # WHEN the subject is built, THEN each run of them is one space
    assert build_subject(alert) == "[HIGH] scene_anomaly at north yard / cam 1"


def test_a_year_below_1000_prints_four_digits():
    # GIVEN an alert whose event (once in the site's zone) falls in year 999 (issue 15, case 9)
    from datetime import timedelta

    old = datetime(1000, 1, 1, 0, 30, tzinfo=UTC)
    alert = ALERT.model_construct(**{**dict(ALERT), "frame_at": old, "started_at": old - timedelta(seconds=1)})

    # WHEN the email is built in a zone west of UTC, THEN the year has four digits
    lines = build_email(alert, LINKS, ZoneInfo("America/New_York")).splitlines()
    assert lines[6:8] == [
        "Time:       0999-12-31 19:33:58 LMT (UTC-04:56), site time",
        "Started:    0999-12-31 19:33:57 LMT (UTC-04:56)",
    ]


def test_links_signed_with_temporary_credentials_say_so_and_point_to_the_console():
    # GIVEN links signed with a role's session credentials (as on Lambda) and a console (issue 15, case 8)
    links = LINKS.model_copy(
        update={"temporary_credentials": True, "console_url": "https://vigil.example.org/alerts/a-1"}
    )

    # WHEN the email is built
    email = build_email(ALERT, links)

    # THEN it states the real validity and links to the console's page, which lasts
    assert (
        "            (links signed for 7 days with temporary credentials: they stop working when those "
        "expire, usually within a few hours; the console link keeps working)\n"
        "Console:    https://vigil.example.org/alerts/a-1\n"
    ) in email
    assert "links valid for 7 days" not in email


def test_notification_has_one_text_per_protocol():
    notification = build_notification(ALERT, LINKS)
    message = json.loads(notification.message)
    assert sorted(message) == ["default", "email", "https", "lambda", "sms", "sqs"]
    for protocol in ("default", "sqs", "lambda", "https"):
        assert AlertRecord.model_validate_json(message[protocol]) == ALERT
    assert message["email"] == build_email(ALERT, LINKS)
    assert message["sms"] == build_sms(ALERT)
    assert notification.publish_kwargs("arn:aws:sns:us-east-1:123456789012:vigil-alerts") == {
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:vigil-alerts",
        "Subject": "[HIGH] scene_anomaly at hq-campus / cam-lobby-01",
        "Message": notification.message,
        "MessageStructure": "json",
        "MessageAttributes": build_attributes(ALERT),
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(604800, "7 days"), (86400, "1 day"), (7200, "2 h"), (5400, "90 min"), (45, "45 s"), (90061, "90061 s")],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


# Issue 17: zone alerts carry a `zone` attribute for filter policies; alerts without one do not (SNS
# refuses an empty attribute value).
def test_a_zone_alert_has_a_zone_attribute_and_names_its_zone():
    # GIVEN an intrusion alert in zone "loading dock", raised while disarmed at severity low
    alert = ALERT.model_copy(
        update={"event_type": "intrusion", "zone": "loading dock", "armed": False, "severity": Severity.LOW}
    )
    # WHEN its attributes, subject and email are built
    # THEN the zone is an attribute, in the subject and in the email, which says it was disarmed
    assert build_attributes(alert) == {
        "severity": {"DataType": "String", "StringValue": "low"},
        "site": {"DataType": "String", "StringValue": "hq-campus"},
        "camera_id": {"DataType": "String", "StringValue": "cam-lobby-01"},
        "event_type": {"DataType": "String", "StringValue": "intrusion"},
        "alert_id": {"DataType": "String", "StringValue": "6f1c8a52-3a0e-5b8e-9d55-0c2f3b7f4e11"},
        "zone": {"DataType": "String", "StringValue": "loading dock"},
    }
    assert build_subject(alert) == "[LOW] intrusion in loading dock at hq-campus / cam-lobby-01"
    email = build_email(alert, LINKS)
    assert "Zone:       loading dock\n" in email
    assert "Armed:      no (outside the camera's arming schedule)\n" in email


def test_a_tamper_alert_names_what_was_found():
    alert = ALERT.model_copy(update={"event_type": "camera_tamper", "tamper": "moved", "regions": []})
    assert "Tamper:     moved\n" in build_email(alert, LINKS)
    assert "zone" not in build_attributes(alert)
