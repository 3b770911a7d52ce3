"""The training label of a review, written by `archive.feedback.give_feedback` (what
`python -m archive.feedback ALERT_ID --false-alarm` runs): the object
`s3://<bucket>/feedback/camera=<id>/<alert_id>.json` (`FeedbackLabel`) and the `events` of the
alert clip's manifest lines, so the next training run uses the verdict.

`give_feedback` finds an alert by its snapshot or clip in S3; an alert with neither (the snapshot
failed, the clip is not cut yet) is unknown to it. The console knows the alert from its history, so
it then writes the feedback object alone, in the same shape; the archiver applies it to the clip
when it cuts it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from archive.errors import ArchiveError
from archive.feedback import FeedbackError, give_feedback
from archive.keys import feedback_key
from archive.labels import FeedbackLabel, Verdict
from archive.store import ArchiveStore
from contracts.alert import AlertRecord

logger = logging.getLogger(__name__)


def write_label(
    s3: Any, bucket: str, alert: AlertRecord, label: Verdict, operator: str, now: datetime | None = None
) -> str:
    """Record the operator's verdict as the alert's training label; returns the label's `s3://` URI."""
    store = ArchiveStore(bucket, s3)
    try:
        result = give_feedback(store, alert.alert_id, label, operator=operator, camera_id=alert.camera_id, now=now)
    except (FeedbackError, ArchiveError) as exc:
        logger.info("feedback camera=%s alert_id=%s: %s; writing the label object alone",
                    alert.camera_id, alert.alert_id, exc)
        body = FeedbackLabel(alert_id=alert.alert_id, camera_id=alert.camera_id, label=label,
                             operator=operator, labelled_at=now or datetime.now(UTC))
        key = feedback_key(alert.camera_id, alert.alert_id)
        store.put_json(key, body.model_dump_json())
        return store.uri(key)
    return result.feedback_uri
