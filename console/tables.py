"""The DynamoDB tables the console reads and writes, as `create_table` arguments: the local stack and
the tests create them from these (`local.console_seed.create_console_tables`); `infra/modules/console`
creates the same on AWS.

- alert history (`alert_lambda.history` writes it; the console adds reviews): key `camera_id` + `sk`
  (`<started_at>#<alert_id>`), GSIs `by-site` (site, sk), `by-month` (month, sk), `by-alert-id`.
- review audit: key `alert_id` + `at` (`<reviewed_at>#<nonce>`), append-only.
"""

from __future__ import annotations

import logging
from typing import Any

from alert_lambda.history import ALERT_ID_INDEX, MONTH_INDEX, SITE_INDEX

logger = logging.getLogger(__name__)


def _gsi(name: str, partition: str, sort: str | None, projection: str = "ALL") -> dict[str, Any]:
    keys = [{"AttributeName": partition, "KeyType": "HASH"}]
    if sort:
        keys.append({"AttributeName": sort, "KeyType": "RANGE"})
    return {"IndexName": name, "KeySchema": keys, "Projection": {"ProjectionType": projection}}


def alert_history_table_spec(table_name: str) -> dict[str, Any]:
    """`create_table` keyword arguments of the alert history table."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "camera_id", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("camera_id", "sk", "site", "month", "alert_id")
        ],
        "GlobalSecondaryIndexes": [
            _gsi(SITE_INDEX, "site", "sk"),
            _gsi(MONTH_INDEX, "month", "sk"),
            _gsi(ALERT_ID_INDEX, "alert_id", None, "KEYS_ONLY"),
        ],
    }


def audit_table_spec(table_name: str) -> dict[str, Any]:
    """`create_table` keyword arguments of the review audit table."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "alert_id", "KeyType": "HASH"},
            {"AttributeName": "at", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "alert_id", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "S"},
        ],
    }
