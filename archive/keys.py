"""Every S3 key the archive writes, in one place. The prefixes match `infra/modules/training_data`
(its lifecycle rules and the `archive_prefixes` output):

- `clips/camera=<id>/date=<YYYY-MM-DD>/<start>_<end>.mp4`: normal footage (lifecycle `clips/`);
- `alerts/camera=<id>/date=<YYYY-MM-DD>/<start>_<end>.mp4`: alert clips, kept longer (`alerts/`);
- `manifests/camera=<id>/date=<YYYY-MM-DD>/manifest.jsonl`: one `ManifestLine` per clip;
- `feedback/camera=<id>/<alert_id>.json`: an operator's verdict on an alert (`labels.FeedbackLabel`);
- `tmp/<uuid>.mp4`: an upload before it is copied into place (deleted at once; a crash can orphan one).

`<start>` and `<end>` are the *requested* range (UTC, millisecond stamps such as
`20261125T080000000Z`), so a key is known before the clip exists: the worker links an alert to its
clip (`alert_clip_key`) when it raises the alert, and archiving the same range twice writes one key.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from contracts.alert import S3Object

logger = logging.getLogger(__name__)

ClipKind = Literal["normal", "alert"]

ENV_ARCHIVE_BUCKET = "VIGIL_ARCHIVE_BUCKET"
"""The archive's S3 bucket (the keys below; the worker's alert snapshots, `SNAPSHOTS_PREFIX`, live there too)."""

CLIPS_PREFIX = "clips/"
ALERT_CLIPS_PREFIX = "alerts/"
MANIFESTS_PREFIX = "manifests/"
FEEDBACK_PREFIX = "feedback/"
SNAPSHOTS_PREFIX = "snapshots/"
TMP_PREFIX = "tmp/"
MANIFEST_NAME = "manifest.jsonl"

DEFAULT_PRE_ROLL_S = 5.0
DEFAULT_POST_ROLL_S = 10.0


def stamp(value: datetime) -> str:
    """`20261125T080000123Z`: UTC, millisecond precision, safe in an S3 key."""
    value = value.astimezone(UTC)
    return value.strftime("%Y%m%dT%H%M%S") + f"{value.microsecond // 1000:03d}Z"


def clip_key(camera_id: str, start: datetime, end: datetime, kind: ClipKind = "normal") -> str:
    prefix = ALERT_CLIPS_PREFIX if kind == "alert" else CLIPS_PREFIX
    return f"{prefix}camera={camera_id}/date={start.astimezone(UTC):%Y-%m-%d}/{stamp(start)}_{stamp(end)}.mp4"


def manifest_key(camera_id: str, day: datetime) -> str:
    return f"{MANIFESTS_PREFIX}camera={camera_id}/date={day.astimezone(UTC):%Y-%m-%d}/{MANIFEST_NAME}"


def camera_manifests_prefix(camera_id: str | None = None) -> str:
    return f"{MANIFESTS_PREFIX}camera={camera_id}/" if camera_id else MANIFESTS_PREFIX


def feedback_key(camera_id: str, alert_id: str) -> str:
    return f"{FEEDBACK_PREFIX}camera={camera_id}/{alert_id}.json"


def tmp_key(suffix: str = ".mp4") -> str:
    return f"{TMP_PREFIX}{uuid.uuid4()}{suffix}"


def alert_clip_range(
    started_at: datetime, pre_roll_s: float = DEFAULT_PRE_ROLL_S, post_roll_s: float = DEFAULT_POST_ROLL_S
) -> tuple[datetime, datetime]:
    """The footage an alert clip covers: `pre_roll_s` before the event start to `post_roll_s` after."""
    return started_at - timedelta(seconds=pre_roll_s), started_at + timedelta(seconds=post_roll_s)


def alert_clip_key(
    camera_id: str,
    started_at: datetime,
    pre_roll_s: float = DEFAULT_PRE_ROLL_S,
    post_roll_s: float = DEFAULT_POST_ROLL_S,
) -> str:
    """The key the alert clip of an event starting at `started_at` will have (known in advance)."""
    start, end = alert_clip_range(started_at, pre_roll_s, post_roll_s)
    return clip_key(camera_id, start, end, kind="alert")


def alert_clip_ref(
    bucket: str,
    camera_id: str,
    started_at: datetime,
    pre_roll_s: float = DEFAULT_PRE_ROLL_S,
    post_roll_s: float = DEFAULT_POST_ROLL_S,
) -> S3Object:
    """`AlertRecord.clip` for an alert: where its clip will be. The object appears once the archiver
    has cut it (after `post_roll_s` plus the ingest delay); until then a reader finds no object
    and says "not archived yet"."""
    return S3Object(bucket=bucket, key=alert_clip_key(camera_id, started_at, pre_roll_s, post_roll_s))
