"""Poison records to the dead-letter queue, with the reason a person can read.

The event source mapping's own on-failure record (see `kinesis_event.on_failure_record`) says only
which sequence range was discarded, and only once its retries are exhausted. So the function itself
sends each poison record (not JSON, wrong `schema_version`, a missing field: it can never succeed) to
the same SQS queue at once, with the validation error, the record's coordinates and its data, once
per record (`idempotency.dead_letter_once`, keyed on the record's `eventID`). The record is still
reported as a batch item failure, as the mapping's contract wants.

    {"condition": "PoisonRecord", "reason": "kinesis.data.camera_id: Field required", "timestamp": "...Z",
     "requestContext": {"requestId": ..., "functionArn": ...},
     "KinesisRecord": {"eventSourceARN", "eventID", "shardId", "sequenceNumber", "partitionKey",
                       "approximateArrivalTimestamp", "data" (base64, as received)},
     "dataPreview": "the data as UTF-8 text, cut at 256 characters"}
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from alert_lambda import clients
from alert_lambda.settings import Settings
from contracts.alert import utc_iso

logger = logging.getLogger(__name__)

POISON_CONDITION = "PoisonRecord"
PREVIEW_CHARS = 256


def preview(data_b64: str) -> str:
    """The record's data as text a person can read (invalid UTF-8 replaced), at most 256 characters."""
    try:
        raw = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError):
        return f"(not base64) {data_b64[:PREVIEW_CHARS]}"
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def poison_message(
    raw_record: Mapping[str, Any],
    reason: str,
    *,
    request_id: str = "",
    function_arn: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The dead-letter message for one Lambda Kinesis event record that failed validation."""
    kinesis = raw_record.get("kinesis", {})
    event_id = str(raw_record.get("eventID", ""))
    data = str(kinesis.get("data", ""))
    return {
        "condition": POISON_CONDITION,
        "reason": reason,
        "timestamp": utc_iso(now or datetime.now(UTC)),
        "requestContext": {"requestId": request_id, "functionArn": function_arn},
        "KinesisRecord": {
            "eventSourceARN": raw_record.get("eventSourceARN", ""),
            "eventID": event_id,
            "shardId": event_id.split(":", 1)[0],
            "sequenceNumber": str(kinesis.get("sequenceNumber", "")),
            "partitionKey": kinesis.get("partitionKey", ""),
            "approximateArrivalTimestamp": kinesis.get("approximateArrivalTimestamp"),
            "data": data,
        },
        "dataPreview": preview(data),
    }


def send(message: Mapping[str, Any], settings: Settings) -> str:
    """Put `message` on the dead-letter queue; the SQS message id."""
    response = clients.client("sqs", settings).send_message(
        QueueUrl=settings.dead_letter_queue_url,
        MessageBody=json.dumps(message),
        MessageAttributes={
            "condition": {"DataType": "String", "StringValue": str(message["condition"])},
            "sequenceNumber": {
                "DataType": "String",
                "StringValue": message["KinesisRecord"]["sequenceNumber"] or "-",
            },
        },
    )
    message_id = str(response["MessageId"])
    logger.warning(
        "poison record %s sent to the dead-letter queue as message %s: %s",
        message["KinesisRecord"]["sequenceNumber"],
        message_id,
        message["reason"],
    )
    return message_id
