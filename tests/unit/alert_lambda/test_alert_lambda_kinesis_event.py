"""alert_lambda.kinesis_event: the shapes the event source mapping sends and discards."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alert_lambda.kinesis_event import arn_parts, event_record, kinesis_event, on_failure_record

RECORDED_EVENT = Path(__file__).resolve().parents[2] / "events" / "kinesis_alerts_event.json"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/alerts"
ROLE_ARN = "arn:aws:iam::123456789012:role/vigil-alert-lambda"
SEQ_1 = "49659221465937419213870412345678901234567890123456789010"
SEQ_2 = "49659221465937419213870412345678901234567890123456789026"


def get_records_item(seq: str, data: bytes, at: datetime) -> dict:
    """One record as boto3's GetRecords returns it."""
    return {"SequenceNumber": seq, "ApproximateArrivalTimestamp": at, "Data": data, "PartitionKey": "cam-1"}


def test_event_record_has_the_documented_shape():
    at = datetime(2026, 11, 25, 14, 45, 7, 412000, tzinfo=UTC)
    assert event_record(
        get_records_item(SEQ_1, b'{"a": 1}', at),
        shard_id="shardId-000000000000",
        stream_arn=STREAM_ARN,
        invoke_identity_arn=ROLE_ARN,
    ) == {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "cam-1",
            "sequenceNumber": SEQ_1,
            "data": base64.b64encode(b'{"a": 1}').decode(),
            "approximateArrivalTimestamp": 1795617907.412,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{SEQ_1}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": ROLE_ARN,
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
    }


def test_event_built_from_get_records_equals_the_recorded_event():
    # GIVEN the records of the recorded event as GetRecords would return them
    recorded = json.loads(RECORDED_EVENT.read_text())
    items = [
        get_records_item(
            r["kinesis"]["sequenceNumber"],
            base64.b64decode(r["kinesis"]["data"]),
            datetime.fromtimestamp(r["kinesis"]["approximateArrivalTimestamp"], UTC),
        )
        | {"PartitionKey": r["kinesis"]["partitionKey"]}
        for r in recorded["Records"]
    ]
    # WHEN the mapping builds the event, THEN it is the recorded one
    built = kinesis_event(
        items, shard_id="shardId-000000000000", stream_arn=STREAM_ARN, invoke_identity_arn=ROLE_ARN
    )
    assert built == recorded


def test_on_failure_record_has_the_documented_shape():
    first = get_records_item(SEQ_1, b"x", datetime(2026, 11, 25, 14, 45, 7, 412000, tzinfo=UTC))
    last = get_records_item(SEQ_2, b"y", datetime(2026, 11, 25, 14, 45, 8, 5000, tzinfo=UTC))
    assert on_failure_record(
        [first, last],
        shard_id="shardId-000000000000",
        stream_arn=STREAM_ARN,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:vigil-alert-lambda",
        request_id="c9b8fa9f-5a7f-4a26-8292-0c604cde93a5",
        invoke_count=4,
        function_error="Unhandled",
        now=datetime(2026, 11, 25, 14, 46, 0, tzinfo=UTC),
    ) == {
        "requestContext": {
            "requestId": "c9b8fa9f-5a7f-4a26-8292-0c604cde93a5",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:vigil-alert-lambda",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-25T14:46:00.000Z",
        "KinesisBatchInfo": {
            "shardId": "shardId-000000000000",
            "startSequenceNumber": SEQ_1,
            "endSequenceNumber": SEQ_2,
            "approximateArrivalOfFirstRecord": "2026-11-25T14:45:07.412Z",
            "approximateArrivalOfLastRecord": "2026-11-25T14:45:08.005Z",
            "batchSize": 2,
            "streamArn": STREAM_ARN,
        },
    }


def test_arn_parts():
    assert arn_parts(STREAM_ARN) == ("us-east-1", "123456789012")
    with pytest.raises(ValueError, match="not an ARN"):
        arn_parts("alerts")
