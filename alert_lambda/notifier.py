"""Publish one alert to the SNS topic: presigned links to its media, then one `Publish` call.

The SNS client makes one attempt per call (`clients`: botocore never resends a Publish on its own);
`publish` retries itself, knowing what each failure means:
- **not sent** (throttled, connection refused, connect timeout): sent again after a short backoff;
- **outcome unknown** (read timeout, connection closed after the request went out, a 5xx): SNS may have
  delivered it. Before sending again `publish` asks `published_elsewhere()` (the idempotency record:
  has another invocation completed this alert?) and, if not, resends with the message attribute
  `possible_duplicate: "true"`; a subscriber that has seen the `alert_id` drops it (the mapping's
  later retry of such a record, in the same container, is flagged too);
- **refused** (`InvalidParameter`, message too long): `failures.PermanentFailure`, never retried.
Past `PUBLISH_ATTEMPTS` the last error propagates: the record fails and the event source mapping
retries it. After such a failure the rest of the invocation does not call SNS (`SnsUnavailable`):
the records behind the failed one are retried with it anyway, and an outage should not spend the
invocation's time on doomed calls.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from alert_lambda import clients
from alert_lambda.failures import PermanentFailure, classify
from alert_lambda.messages import Links, build_notification
from alert_lambda.settings import Settings
from contracts.alert import AlertRecord, S3Object
from contracts.retry import backoff_delay

logger = logging.getLogger(__name__)

PUBLISH_ATTEMPTS = 3
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 1.0

_sns_failed: list[str] = []  # this invocation's SNS failure, once one exhausted its attempts
# Alerts whose last Publish in this container may have been delivered although it failed: the next
# try (the mapping's retry of the record) is flagged `possible_duplicate` from its first attempt.
MAX_UNCERTAIN = 10_000
_uncertain: OrderedDict[str, None] = OrderedDict()


class SnsUnavailable(RuntimeError):
    """SNS failed earlier in this invocation; the record is retried by the mapping without a call."""


def new_invocation() -> None:
    """Forget the previous invocation's SNS failure (the handler calls it first)."""
    _sns_failed.clear()


def outcome_unknown(exc: BaseException) -> bool:
    """True when SNS may have published although the call failed (the response was lost, or a 5xx)."""
    if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
        return True
    if isinstance(exc, BotoConnectionError):  # EndpointConnectionError, ConnectTimeoutError: never sent
        return False
    if isinstance(exc, HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
    return False


def temporary_credentials(settings: Settings) -> bool:
    """True when the links are signed with a session's credentials (a role, as on Lambda)."""
    credentials = clients.client("s3", settings)._request_signer._credentials  # what signs the links
    return bool(credentials is not None and credentials.token)


def presign(obj: S3Object | None, settings: Settings) -> str | None:
    """A presigned GET URL for `obj`, or None when there is no object.

    Presigning is local (no S3 call): a link to an object that does not exist yet (a clip still being
    cut) is valid and starts working once the object is written."""
    if obj is None:
        return None
    return clients.client("s3", settings).generate_presigned_url(
        "get_object", Params={"Bucket": obj.bucket, "Key": obj.key}, ExpiresIn=settings.link_expiry_s
    )


def links_for(alert: AlertRecord, settings: Settings) -> Links:
    snapshot_url, clip_url = presign(alert.snapshot, settings), presign(alert.clip, settings)
    return Links(
        snapshot_url=snapshot_url,
        clip_url=clip_url,
        expires_in_s=settings.link_expiry_s,
        temporary_credentials=bool(snapshot_url or clip_url) and temporary_credentials(settings),
        console_url=f"{settings.console_url.rstrip('/')}/alerts/{alert.alert_id}"
        if settings.console_url
        else None,
    )


def publish(
    alert: AlertRecord,
    settings: Settings | None = None,
    published_elsewhere: Callable[[], str | None] | None = None,
) -> str:
    """Notify the topic's subscribers of `alert`; returns the SNS message id.

    `published_elsewhere()` is asked before a resend whose first try may have been delivered: a
    message id there means another invocation completed the alert, and that id is returned."""
    settings = settings or Settings.from_env()
    topic_arn = settings.require_topic()
    if _sns_failed:
        raise SnsUnavailable(f"not calling SNS again in this invocation after: {_sns_failed[0]}")
    links = links_for(alert, settings)
    zone = settings.zone_for(alert.site)
    sns = clients.client("sns", settings)
    possible_duplicate = alert.alert_id in _uncertain
    for attempt in range(PUBLISH_ATTEMPTS):
        notification = build_notification(alert, links, zone, possible_duplicate=possible_duplicate)
        try:
            response = sns.publish(**notification.publish_kwargs(topic_arn))
        except Exception as exc:
            if classify(exc) == "permanent":
                raise PermanentFailure(f"SNS refused the notification: {_describe(exc)}") from exc
            unknown = outcome_unknown(exc)
            if unknown:
                _uncertain[alert.alert_id] = None
                while len(_uncertain) > MAX_UNCERTAIN:
                    _uncertain.popitem(last=False)
            if attempt + 1 == PUBLISH_ATTEMPTS:
                _sns_failed.append(_describe(exc))
                raise
            logger.warning(
                "alert %s: Publish attempt %d failed (%s; %s); retrying",
                alert.alert_id,
                attempt + 1,
                _describe(exc),
                "SNS may have delivered it" if unknown else "not delivered",
            )
            time.sleep(backoff_delay(attempt, BACKOFF_BASE_S, BACKOFF_CAP_S))
            if unknown:
                possible_duplicate = True
            if possible_duplicate and published_elsewhere is not None:
                other = published_elsewhere()
                if other is not None:
                    logger.info("alert %s was completed by another invocation as %s", alert.alert_id, other)
                    return other
            continue
        message_id = str(response["MessageId"])
        _uncertain.pop(alert.alert_id, None)
        logger.info(
            "published alert %s (%s %s) to %s as message %s%s",
            alert.alert_id,
            alert.severity.value,
            alert.event_type,
            topic_arn,
            message_id,
            " (marked possible_duplicate)" if possible_duplicate else "",
        )
        return message_id
    raise AssertionError("unreachable")  # pragma: no cover


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"
