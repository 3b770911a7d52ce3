"""Alert history: one DynamoDB item per alert, read by the operator console (`console/`).

The Lambda calls `record_alert(alert, table_name)` after a successful SNS publish, or at once for an
alert with `notify: false` (raised outside the camera's arming schedule: listed, never published). The write is a
conditional `PutItem` (`attribute_not_exists`), so a record delivered twice, or a batch retried after
a partial failure, leaves exactly one item and never overwrites the operator's review on it.

Table layout (the console queries it on its keys; it never scans it):

| attribute | role |
| --- | --- |
| `camera_id` (S) | partition key: one camera's alerts together |
| `sk` (S) | sort key `<started_at ISO Z>#<alert_id>`: newest first with `ScanIndexForward=False` |
| `site` (S) | GSI `by-site` partition key (sort key `sk`): a site's alerts by time |
| `month` (S) | GSI `by-month` partition key `YYYY-MM` (sort key `sk`): every site's alerts by time |
| `alert_id` (S) | GSI `by-alert-id` partition key (keys only): an alert page from its id alone |
| `alert` (S) | the `AlertRecord` JSON as the Lambda received it (the contract, schema_version "1" or "2") |
| `severity`, `event_type`, `score`, `threshold`, `model_version`, `recorded_at` | list filters and columns |
| `zone` (S), `notify` (BOOL) | the alert's camera zone (only when it has one); false: not sent to SNS (disarmed) |

Review attributes (`review_label`, `reviewed_by`, `reviewed_at`) are the console's; this module never
writes them.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from alert_lambda import clients
from alert_lambda.settings import Settings
from contracts.alert import AlertRecord, utc_iso

logger = logging.getLogger(__name__)

HISTORY_TABLE_ENV = "VIGIL_ALERT_HISTORY_TABLE"
"""Name of the alert history table; unset or empty means no history is recorded."""

SITE_INDEX = "by-site"
MONTH_INDEX = "by-month"
ALERT_ID_INDEX = "by-alert-id"

_serializer = TypeSerializer()


def sort_key(alert: AlertRecord) -> str:
    """`2026-11-25T14:45:07.123Z#<alert_id>`: sorts by event start, unique per alert."""
    return f"{utc_iso(alert.started_at)}#{alert.alert_id}"


def _number(value: float) -> Decimal | None:
    # DynamoDB numbers cannot be NaN or infinite; the full record is in `alert` either way.
    return Decimal(repr(float(value))) if math.isfinite(value) else None


def history_item(alert: AlertRecord, recorded_at: datetime | None = None) -> dict[str, Any]:
    """The history item of `alert` as plain Python values (numbers as Decimal)."""
    started = alert.started_at.astimezone(UTC)
    item = {
        "camera_id": alert.camera_id,
        "sk": sort_key(alert),
        "alert_id": alert.alert_id,
        "site": alert.site,
        "month": f"{started:%Y-%m}",
        "event_type": alert.event_type,
        "severity": alert.severity.value,
        "score": _number(alert.score),
        "threshold": _number(alert.threshold),
        "model_version": alert.model_version,
        "zone": alert.zone,
        "notify": None if alert.notify else False,
        "started_at": utc_iso(alert.started_at),
        "recorded_at": utc_iso(recorded_at or datetime.now(UTC)),
        "alert": alert.model_dump_json(),
    }
    return {name: value for name, value in item.items() if value is not None}


def record_alert(alert: AlertRecord, table_name: str) -> None:
    """Record a notified alert in the history table, once per `alert_id` (a repeat is a no-op)."""
    dynamodb = clients.client("dynamodb", Settings.from_env())
    item = {name: _serializer.serialize(value) for name, value in history_item(alert).items()}
    try:
        dynamodb.put_item(
            TableName=table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(camera_id) AND attribute_not_exists(sk)",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        logger.info("alert %s already in history table %s; left as it is", alert.alert_id, table_name)
        return
    logger.info("alert %s recorded in history table %s", alert.alert_id, table_name)
