"""Poison records to the dead-letter queue, with the reason a person can read.

The event source mapping's own on-failure record (see `kinesis_event.on_failure_record`) says only
which sequence range was discarded, and only once its retries are exhausted. So the function itself
sends each poison record (one that can never succeed: it fails the alert contract, SNS refuses its
message, it cannot be serialised; see `failures.classify`) to the same SQS queue at once, with the
reason, the record's coordinates and its data, once per record (`idempotency.dead_letter_once`,
keyed on the record's `eventID`). Once it is there the record is reported as done, so it does not
hold back the records behind it on the shard.

The data is copied whole up to `MAX_DATA_BYTES`; a larger record (Kinesis allows 1 MiB, SQS a little
less once wrapped) keeps its first `MAX_DATA_BYTES` bytes, with `dataBytes` (its full size),
`dataSha256` and `dataTruncated: true`; the coordinates (shard, sequence number) find it whole in the
stream while the stream retains it.

    {"condition": "PoisonRecord", "reason": "kinesis.data.camera_id: Field required", "timestamp": "...Z",
     "requestContext": {"requestId": ..., "functionArn": ...},
     "KinesisRecord": {"eventSourceARN", "eventID", "shardId", "sequenceNumber", "partitionKey",
                       "approximateArrivalTimestamp", "data" (base64, as received, at most
                       MAX_DATA_BYTES of it), "dataBytes", "dataSha256", "dataTruncated"},
     "dataPreview": "the data as UTF-8 text, cut at 256 characters"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
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
MAX_DATA_BYTES = 64 * 1024


def bounded_data(data_b64: str) -> dict[str, Any]:
    """`data` (base64, at most MAX_DATA_BYTES decoded), `dataBytes`, `dataSha256`, `dataTruncated`."""
    try:
        raw = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError):
        raw = data_b64.encode("utf-8", errors="replace")
        kept = raw[:MAX_DATA_BYTES]
        return {
            "data": kept.decode("utf-8", errors="replace"),
            "dataBytes": len(raw),
            "dataSha256": hashlib.sha256(raw).hexdigest(),
            "dataTruncated": len(kept) < len(raw),
        }
    truncated = len(raw) > MAX_DATA_BYTES
    return {
        "data": base64.b64encode(raw[:MAX_DATA_BYTES]).decode("ascii") if truncated else data_b64,
        "dataBytes": len(raw),
        "dataSha256": hashlib.sha256(raw).hexdigest(),
        "dataTruncated": truncated,
    }


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
    """The dead-letter message for one Lambda Kinesis event record that can never be delivered."""
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
            **bounded_data(data),
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
