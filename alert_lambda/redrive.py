"""Deliver the alerts of discarded batches: read each `RetryAttemptsExhausted` record from the
dead-letter queue, read its sequence range back from the stream and run the alert handler on it.

    python -m alert_lambda.redrive --queue-url URL [--max-messages 100] [--dry-run]

The event source mapping sends only a batch's coordinates (shard, first and last sequence number) to
its on-failure destination when it gives up on it (after `maximum_record_age_s`, e.g. past a long SNS
outage). While the records are still in the stream (its retention, 24 h by default) this tool reads
them (GetShardIterator AT_SEQUENCE_NUMBER + GetRecords), invokes `handler.lambda_handler` in-process
with the same Lambda event, and deletes the queue message once every record was handled. The handler
is idempotent on `alert_id`: the alerts of the range that had been delivered are not notified again.
A range that fails again (or is no longer in the stream) stays in the queue and is reported.
The function's own `PoisonRecord` messages are for people to read; they are left where they are.

It runs with the same environment as the function (`VIGIL_*`, `AWS_*`) and needs, besides what the
function needs, `kinesis:GetShardIterator` / `GetRecords` on the stream and `sqs:ReceiveMessage`,
`DeleteMessage`, `ChangeMessageVisibility` on the queue: the alerts module's `redrive` policy
(`alert_redrive_policy_arn`) grants exactly that, for an operator role to attach.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from alert_lambda import clients
from alert_lambda.kinesis_event import RETRY_ATTEMPTS_EXHAUSTED, kinesis_event
from alert_lambda.settings import Settings

logger = logging.getLogger(__name__)

EVENT_BATCH = 100
VISIBILITY_TIMEOUT_S = 300

LambdaFunction = Callable[[dict[str, Any], Any], Any]


@dataclass
class RedriveStats:
    ranges_delivered: int = 0
    ranges_left: int = 0
    records_handled: int = 0
    other_messages: int = 0


@dataclass
class _Context:
    """The attributes of Lambda's context object that the handler and powertools read."""

    function_name: str = "vigil-alert-redrive"
    invoked_function_arn: str = ""
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = "redrive"
    log_group_name: str = ""
    log_stream_name: str = "redrive"

    def get_remaining_time_in_millis(self) -> int:
        return VISIBILITY_TIMEOUT_S * 1000


class RangeUnavailable(RuntimeError):
    """The range can no longer be read whole from the stream."""


def read_range(kinesis: Any, batch_info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a discarded batch, first to last sequence number, from the stream."""
    stream_arn = str(batch_info["streamArn"])
    shard_id = str(batch_info["shardId"])
    first, last = int(batch_info["startSequenceNumber"]), int(batch_info["endSequenceNumber"])
    iterator = kinesis.get_shard_iterator(
        StreamName=stream_arn.split("/", 1)[1],
        ShardId=shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=str(first),
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        for record in page.get("Records", []):
            if int(record["SequenceNumber"]) > last:
                return records
            records.append(record)
        if not page.get("Records") and not page.get("MillisBehindLatest"):
            break  # at the tip of the shard
        iterator = page.get("NextShardIterator")
    if (
        not records
        or int(records[0]["SequenceNumber"]) != first
        or int(records[-1]["SequenceNumber"]) != last
    ):
        raise RangeUnavailable(
            f"shard {shard_id}: range {first}..{last} is not (or no longer) whole in the stream"
        )
    return records


def _handled(function: LambdaFunction, event: dict[str, Any]) -> bool:
    try:
        response = function(event, _Context())
    except Exception as exc:  # noqa: BLE001 - any function error leaves the range in the queue
        logger.warning("the handler failed on the range: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return False
    failures = (response or {}).get("batchItemFailures") if isinstance(response, dict) else None
    if failures:
        logger.warning("the handler reported %d record(s) failed", len(failures))
        return False
    return True


def redrive(
    queue_url: str,
    settings: Settings | None = None,
    function: LambdaFunction | None = None,
    max_messages: int = 100,
    dry_run: bool = False,
) -> RedriveStats:
    """Deliver the ranges named by up to `max_messages` queue messages; what happened."""
    if function is None:
        from alert_lambda.handler import lambda_handler

        function = lambda_handler
    settings = settings or Settings.from_env()
    sqs, kinesis = clients.client("sqs", settings), clients.client("kinesis", settings)
    stats = RedriveStats()
    seen = 0
    while seen < max_messages:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - seen),
            VisibilityTimeout=VISIBILITY_TIMEOUT_S,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        seen += len(messages)
        for message in messages:
            _one(message, queue_url, sqs, kinesis, function, stats, dry_run)
    logger.info(
        "redrive: %d range(s) delivered (%d record(s) handled), %d left in the queue, %d other message(s) left",
        stats.ranges_delivered,
        stats.records_handled,
        stats.ranges_left,
        stats.other_messages,
    )
    return stats


def _one(
    message: dict[str, Any],
    queue_url: str,
    sqs: Any,
    kinesis: Any,
    function: LambdaFunction,
    stats: RedriveStats,
    dry_run: bool,
) -> None:
    receipt = message["ReceiptHandle"]
    try:
        body = json.loads(message["Body"])
    except json.JSONDecodeError:
        body = {}
    condition = (body.get("requestContext") or {}).get("condition") if isinstance(body, dict) else None
    if condition != RETRY_ATTEMPTS_EXHAUSTED or "KinesisBatchInfo" not in body:
        stats.other_messages += 1  # a PoisonRecord (for people), or something else: leave it
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
        return
    info = body["KinesisBatchInfo"]
    try:
        records = read_range(kinesis, info)
    except (RangeUnavailable, ClientError, BotoCoreError) as exc:
        logger.error(
            "range %s..%s: cannot read it back: %s",
            info["startSequenceNumber"],
            info["endSequenceNumber"],
            exc,
        )
        stats.ranges_left += 1
        return
    logger.info(
        "range %s..%s of %s: %d record(s)%s",
        info["startSequenceNumber"],
        info["endSequenceNumber"],
        info["shardId"],
        len(records),
        " (dry run: not delivered)" if dry_run else "",
    )
    if dry_run:
        stats.ranges_left += 1
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
        return
    for start in range(0, len(records), EVENT_BATCH):
        chunk = records[start : start + EVENT_BATCH]
        event = kinesis_event(
            chunk, shard_id=info["shardId"], stream_arn=info["streamArn"], invoke_identity_arn=""
        )
        if not _handled(function, event):
            stats.ranges_left += 1
            return  # the message comes back after its visibility timeout, for the next run
        stats.records_handled += len(chunk)
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
    stats.ranges_delivered += 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alert_lambda.redrive", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--queue-url", required=True, help="The dead-letter queue (the mapping's on-failure destination)."
    )
    parser.add_argument(
        "--max-messages", type=int, default=100, help="Queue messages to look at (default 100)."
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="Read the ranges back, deliver nothing (default off)."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stats = redrive(args.queue_url, max_messages=args.max_messages, dry_run=args.dry_run)
    print(
        json.dumps(
            {
                "ranges_delivered": stats.ranges_delivered,
                "ranges_left": stats.ranges_left,
                "records_handled": stats.records_handled,
                "other_messages": stats.other_messages,
            }
        )
    )
    return 0 if stats.ranges_left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
