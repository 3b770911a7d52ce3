"""What an alert notification says, per SNS protocol: pure functions, no AWS calls.

One SNS `Publish` with `MessageStructure="json"` carries a text per protocol: `email` gets a readable
summary with links, `sms` a single short line, `sqs` / `lambda` / `https` and `default` the alert record
JSON itself (the contract in `contracts.alert`). The subject and the message attributes (`severity`,
`site`, `camera_id`, `event_type`, and `zone` for an alert in a camera zone) are what email subjects
show and what subscription filter policies match on. Times a person reads (email, SMS) are in the site's time zone, named, with its UTC offset.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, tzinfo

from pydantic import BaseModel, ConfigDict, Field

from contracts.alert import AlertRecord, utc_iso

logger = logging.getLogger(__name__)

# SNS: "Subjects must be UTF-8 text with no line breaks or control characters, and less than 100
# characters long."
MAX_SUBJECT_CHARS = 99
# One SMS segment is 160 GSM-7 characters; the origination prefix takes some. Keep a margin.
MAX_SMS_CHARS = 139
JSON_PROTOCOLS = ("sqs", "lambda", "https")
ATTRIBUTE_NAMES = ("severity", "site", "camera_id", "event_type", "zone")
ZONE_ATTRIBUTE = "zone"
"""Only on alerts in a zone: SNS refuses an empty attribute value. A filter policy on `zone` therefore
matches zone alerts only (`{"zone": [{"exists": false}]}` matches the others)."""
# Every message also carries the alert id (a subscriber drops a repeat it has seen) and, on a Publish
# resent after one whose outcome was unknown (see `notifier`), `possible_duplicate: "true"`.
ALERT_ID_ATTRIBUTE = "alert_id"
POSSIBLE_DUPLICATE_ATTRIBUTE = "possible_duplicate"

# C0 and C1 control characters (U+0085 NEXT LINE among them) and the Unicode line and paragraph
# separators: SNS refuses them in a subject, and a mail client may break a header on them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class Links(BaseModel):
    """Presigned links a reader can open without AWS credentials, and the console's alert page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshot_url: str | None = Field(default=None, description="Presigned GET of the snapshot JPEG.")
    clip_url: str | None = Field(default=None, description="Presigned GET of the archived clip.")
    expires_in_s: int = Field(gt=0, description="Seconds the links were signed for (ExpiresIn).")
    temporary_credentials: bool = Field(
        default=False,
        description="Signed with temporary credentials (a role's session, as on Lambda): the links stop "
        "working when that session expires, usually within hours, whatever `expires_in_s` says.",
    )
    console_url: str | None = Field(
        default=None, description="The operator console's page of this alert (the operator signs in)."
    )


class Notification(BaseModel):
    """The arguments of one SNS `Publish` call (besides `TopicArn`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(max_length=MAX_SUBJECT_CHARS)
    message: str = Field(description="JSON object: one string per protocol plus `default`.")
    attributes: dict[str, dict[str, str]] = Field(description="SNS MessageAttributes, all `String`.")

    def publish_kwargs(self, topic_arn: str) -> dict[str, object]:
        return {
            "TopicArn": topic_arn,
            "Subject": self.subject,
            "Message": self.message,
            "MessageStructure": "json",
            "MessageAttributes": self.attributes,
        }


def one_line(text: str) -> str:
    """`text` with control characters (newlines included) collapsed to single spaces."""
    return _CONTROL.sub(" ", text).strip()


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marking a cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def build_subject(alert: AlertRecord) -> str:
    """E.g. `[HIGH] scene_anomaly at hq / cam-lobby`, always under 100 characters, one line."""
    where = f" in {one_line(alert.zone)}" if alert.zone else ""
    text = (
        f"[{alert.severity.value.upper()}] {one_line(alert.event_type)}{where} "
        f"at {one_line(alert.site)} / {one_line(alert.camera_id)}"
    )
    return shorten(text, MAX_SUBJECT_CHARS)


def _clock(value: datetime, zone: tzinfo) -> str:
    """`15:45:07 CET`: the site's wall clock, enough for a text about something that just happened."""
    local = value.astimezone(zone)
    return f"{local:%H:%M:%S} {local.tzname()}"


def local_time(value: datetime, zone: tzinfo) -> str:
    """`2026-11-25 15:45:07 CET (UTC+01:00)`: the site's date and wall clock, its zone and offset.

    The year always has four digits (`%Y` prints year 999 as `999` on glibc)."""
    local = value.astimezone(zone)
    offset = local.strftime("%z") or "+0000"
    return f"{local.year:04d}-{local:%m-%d %H:%M:%S} {local.tzname()} (UTC{offset[:3]}:{offset[3:5]})"


def build_sms(alert: AlertRecord, zone: tzinfo = UTC) -> str:
    """One line under 140 characters: severity, event, where, when, score against threshold."""
    text = (
        f"VIGIL {alert.severity.value.upper()} {shorten(one_line(alert.event_type), 24)} "
        f"@ {shorten(one_line(alert.site), 24)}/{shorten(one_line(alert.camera_id), 24)} "
        f"{_clock(alert.frame_at, zone)} score {alert.score:.2f}/{alert.threshold:.2f}"
    )
    return shorten(text, MAX_SMS_CHARS)


def human_duration(seconds: int) -> str:
    """`7 days`, `5 h`, `30 min` or `45 s`: the largest unit that divides `seconds` exactly."""
    for size, unit in ((86400, " days"), (3600, " h"), (60, " min")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count}{' day' if unit == ' days' and count == 1 else unit}"
    return f"{seconds} s"


def link_validity(links: Links) -> str:
    """How long the presigned links really work, in words."""
    if links.temporary_credentials:
        return (
            f"links signed for {human_duration(links.expires_in_s)} with temporary credentials: "
            "they stop working when those expire, usually within a few hours"
            + ("; the console link keeps working" if links.console_url else "")
        )
    return f"links valid for {human_duration(links.expires_in_s)}"


def build_email(alert: AlertRecord, links: Links, zone: tzinfo = UTC) -> str:
    """A plain-text email body a person on duty can act on; times in the site's time zone `zone`."""
    headline = (
        f"Vigil alert: {alert.severity.value.upper()} {one_line(alert.event_type)} "
        f"on camera {one_line(alert.camera_id)} at site {one_line(alert.site)}."
    )
    lines = [
        headline,
        "",
        f"Site:       {one_line(alert.site)}",
        f"Camera:     {one_line(alert.camera_id)}",
        f"Event:      {one_line(alert.event_type)}",
        *([f"Zone:       {one_line(alert.zone)}"] if alert.zone else []),
        *([f"Tamper:     {alert.tamper}"] if alert.tamper else []),
        *([] if alert.armed else ["Armed:      no (outside the camera's arming schedule)"]),
        f"Severity:   {alert.severity.value}",
        f"Time:       {local_time(alert.frame_at, zone)}, site time",
        f"Started:    {local_time(alert.started_at, zone)}",
        f"Score:      {alert.score:.3f} (threshold {alert.threshold:.3f})",
    ]
    if alert.regions:
        lines.append(f"Regions:    {len(alert.regions)} flagged in the frame")
    if links.snapshot_url:
        lines.append(f"Snapshot:   {links.snapshot_url}")
    if links.clip_url:
        lines.append(f"Clip:       {links.clip_url}")
    if links.snapshot_url or links.clip_url:
        lines.append(f"            ({link_validity(links)})")
    if links.console_url:
        lines.append(f"Console:    {links.console_url}")
    lines += [
        "",
        f"Alert id:   {alert.alert_id}",
        f"Model:      {one_line(alert.model_version)}",
        f"Detected:   {utc_iso(alert.detected_at)} (UTC)",
    ]
    return "\n".join(lines) + "\n"


def build_attributes(alert: AlertRecord, possible_duplicate: bool = False) -> dict[str, dict[str, str]]:
    """SNS MessageAttributes: those subscription filter policies match (`zone` only when the alert
    has one), and `alert_id`."""
    values = {
        "severity": alert.severity.value,
        "site": alert.site,
        "camera_id": alert.camera_id,
        "event_type": alert.event_type,
        ALERT_ID_ATTRIBUTE: alert.alert_id,
    }
    if alert.zone:
        values[ZONE_ATTRIBUTE] = alert.zone
    if possible_duplicate:
        values[POSSIBLE_DUPLICATE_ATTRIBUTE] = "true"
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


def build_notification(
    alert: AlertRecord, links: Links, zone: tzinfo = UTC, possible_duplicate: bool = False
) -> Notification:
    """The SNS message for `alert`; `zone` is the site's time zone for the texts people read.
    `possible_duplicate`: this Publish repeats one whose outcome is unknown (it says so in an attribute)."""
    alert_json = alert.model_dump_json()
    per_protocol = {
        "default": alert_json,
        "email": build_email(alert, links, zone),
        "sms": build_sms(alert, zone),
        **dict.fromkeys(JSON_PROTOCOLS, alert_json),
    }
    return Notification(
        subject=build_subject(alert),
        message=json.dumps(per_protocol),
        attributes=build_attributes(alert, possible_duplicate),
    )
