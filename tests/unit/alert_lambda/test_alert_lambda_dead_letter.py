"""alert_lambda.dead_letter: the poison record's dead-letter message, readable by a person."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest

from alert_lambda.dead_letter import MAX_DATA_BYTES, poison_message, preview

RECORD = {
    "kinesis": {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "cam-gate-03",
        "sequenceNumber": "49659221465937419213870412345678901234567890123456789026",
        "data": base64.b64encode(b'{"schema_version": "2"}').decode(),
        "approximateArrivalTimestamp": 1795617907.412,
    },
    "eventSource": "aws:kinesis",
    "eventID": "shardId-000000000003:49659221465937419213870412345678901234567890123456789026",
    "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/alerts",
}


def test_message_carries_reason_coordinates_and_data():
    message = poison_message(
        RECORD,
        "kinesis.data.schema_version: Input should be '1'",
        request_id="req-1",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:vigil-alert-notifier",
        now=datetime(2026, 11, 25, 14, 45, 8, tzinfo=UTC),
    )

    assert message == {
        "condition": "PoisonRecord",
        "reason": "kinesis.data.schema_version: Input should be '1'",
        "timestamp": "2026-11-25T14:45:08.000Z",
        "requestContext": {
            "requestId": "req-1",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:vigil-alert-notifier",
        },
        "KinesisRecord": {
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/alerts",
            "eventID": RECORD["eventID"],
            "shardId": "shardId-000000000003",
            "sequenceNumber": RECORD["kinesis"]["sequenceNumber"],
            "partitionKey": "cam-gate-03",
            "approximateArrivalTimestamp": 1795617907.412,
            "data": RECORD["kinesis"]["data"],
            "dataBytes": 23,
            "dataSha256": hashlib.sha256(b'{"schema_version": "2"}').hexdigest(),
            "dataTruncated": False,
        },
        "dataPreview": '{"schema_version": "2"}',
    }


def test_a_record_too_large_for_the_queue_keeps_its_head_size_and_hash():
    # GIVEN a 1 MB record (Kinesis takes up to 1 MiB; the DLQ message must stay well under SQS's limit)
    raw = b'{"camera_id": "' + b"x" * 1_000_000 + b'"}'
    record = {**RECORD, "kinesis": {**RECORD["kinesis"], "data": base64.b64encode(raw).decode()}}

    # WHEN its dead-letter message is built
    message = poison_message(record, "too large", now=datetime(2026, 11, 25, tzinfo=UTC))

    # THEN it carries the first MAX_DATA_BYTES bytes, the full size and the hash of the whole record
    kept = message["KinesisRecord"]
    assert {k: kept[k] for k in ("dataBytes", "dataSha256", "dataTruncated")} == {
        "dataBytes": len(raw),
        "dataSha256": hashlib.sha256(raw).hexdigest(),
        "dataTruncated": True,
    }
    assert base64.b64decode(kept["data"]) == raw[:MAX_DATA_BYTES]
    assert len(json.dumps(message)) < 128 * 1024


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (base64.b64encode(b"\x89PNG\r\n").decode(), "\ufffdPNG\r\n"),
        (base64.b64encode(b"x" * 300).decode(), "x" * 255 + "…"),
        ("%%% not base64", "(not base64) %%% not base64"),
    ],
    ids=["binary", "long", "not_base64"],
)
def test_preview_is_text_a_person_can_read(data, text):
    assert preview(data) == text
