"""The documented shapes the Kinesis event source mapping exchanges with Lambda, built from GetRecords
output: the invocation event (`Records[].kinesis...`) and the on-failure destination record. Pure.

References: "Using Lambda with Kinesis Data Streams" (sample event) and "Capturing discarded batches
for a Kinesis Data Streams event source" (on-failure invocation record) in the AWS Lambda guide.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"


def arn_parts(arn: str) -> tuple[str, str]:
    """(region, account) of an ARN such as `arn:aws:kinesis:us-east-1:123456789012:stream/alerts`."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[3], parts[4]


def _epoch_s(value: datetime | float) -> float:
    if isinstance(value, datetime):
        return round(value.timestamp(), 3)
    return round(float(value), 3)


def _iso_ms(value: datetime | float) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_record(
    record: Mapping[str, Any], *, shard_id: str, stream_arn: str, invoke_identity_arn: str
) -> dict[str, Any]:
    """One `Records[]` entry from one GetRecords record (`Data` bytes, `SequenceNumber`, ...)."""
    region, _ = arn_parts(stream_arn)
    sequence_number = str(record["SequenceNumber"])
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(record["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": _epoch_s(record["ApproximateArrivalTimestamp"]),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": invoke_identity_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kinesis_event(
    records: Sequence[Mapping[str, Any]], *, shard_id: str, stream_arn: str, invoke_identity_arn: str
) -> dict[str, Any]:
    """The Lambda event for a batch of records from one shard."""
    return {
        "Records": [
            event_record(r, shard_id=shard_id, stream_arn=stream_arn, invoke_identity_arn=invoke_identity_arn)
            for r in records
        ]
    }


def on_failure_record(
    records: Sequence[Mapping[str, Any]],
    *,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    request_id: str,
    invoke_count: int,
    function_error: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The invocation record sent to the on-failure destination for a discarded batch.

    It holds metadata only (shard, sequence range, arrival times), not the data: read the records back
    with GetShardIterator(AT_SEQUENCE_NUMBER) + GetRecords while they are in the stream's retention."""
    if not records:
        raise ValueError("a discarded batch has at least one record")
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = function_error
    return {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": RETRY_ATTEMPTS_EXHAUSTED,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": _iso_ms(now or datetime.now(UTC)),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": str(records[0]["SequenceNumber"]),
            "endSequenceNumber": str(records[-1]["SequenceNumber"]),
            "approximateArrivalOfFirstRecord": _iso_ms(records[0]["ApproximateArrivalTimestamp"]),
            "approximateArrivalOfLastRecord": _iso_ms(records[-1]["ApproximateArrivalTimestamp"]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
