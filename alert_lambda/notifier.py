"""Publish one alert to the SNS topic: presigned links to its media, then one `Publish` call.

Errors (topic missing, throttling past the client's retries, access denied) propagate: the batch
processor turns them into a batch item failure and the event source mapping retries the record.
"""

from __future__ import annotations

import logging

from alert_lambda import clients
from alert_lambda.messages import Links, build_notification
from alert_lambda.settings import Settings
from contracts.alert import AlertRecord, S3Object

logger = logging.getLogger(__name__)


def presign(obj: S3Object | None, settings: Settings) -> str | None:
    """A presigned GET URL for `obj`, or None when there is no object.

    Presigning is local (no S3 call): a link to an object that does not exist yet (a clip still being
    cut) is valid and starts working once the object is written."""
    if obj is None:
        return None
    return clients.client("s3", settings).generate_presigned_url(
        "get_object", Params={"Bucket": obj.bucket, "Key": obj.key}, ExpiresIn=settings.link_expiry_s
    )


def publish(alert: AlertRecord, settings: Settings | None = None) -> str:
    """Notify the topic's subscribers of `alert`; returns the SNS message id."""
    settings = settings or Settings.from_env()
    topic_arn = settings.require_topic()
    links = Links(
        snapshot_url=presign(alert.snapshot, settings),
        clip_url=presign(alert.clip, settings),
        expires_in_s=settings.link_expiry_s,
    )
    notification = build_notification(alert, links, settings.zone_for(alert.site))
    response = clients.client("sns", settings).publish(**notification.publish_kwargs(topic_arn))
    message_id = str(response["MessageId"])
    logger.info(
        "published alert %s (%s %s) to %s as message %s",
        alert.alert_id,
        alert.severity.value,
        alert.event_type,
        topic_arn,
        message_id,
    )
    return message_id
