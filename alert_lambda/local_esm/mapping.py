"""The local twin of Lambda's Kinesis event source mapping: poll the `alerts` stream, invoke
`alert_lambda.handler.lambda_handler` in-process with the Lambda Kinesis event, and handle its answer
as the mapping does with `FunctionResponseTypes=["ReportBatchItemFailures"]`.

    python -m alert_lambda.local_esm --stream alerts [--batch-size 100] [--batch-window-s 0.5]
        [--starting-position TRIM_HORIZON|LATEST] [--max-retries 3] [--maximum-record-age-s -1]
        [--bisect-on-error]
        [--retry-backoff-s 0.2] [--on-failure-queue-url URL] [--exit-when-idle-s S] [--poll-interval-s 0.2]

Semantics (per shard, one batch in flight at a time, shards listed once at start):
- GetShardIterator at the starting position, GetRecords up to the batch size; a batch is invoked when
  it is full or when the batching window has passed since its first record arrived here.
- The function answers `batchItemFailures`: the records before the lowest failed sequence number are
  done; the batch is retried from that record (only the remaining records). An empty or missing list
  is a success; an item without a valid `itemIdentifier` fails the whole batch.
- The function raises (a function error): the whole batch failed; with `--bisect-on-error` it is split
  in two and the halves are retried one after the other.
- Retries wait `--retry-backoff-s`, doubled per retry (at most 5 s), so a failing dependency is not
  hammered and a short outage is ridden out.
- Each retry counts against `--max-retries` (halves inherit their parent's count, so bisection ends);
  when a batch has failed more than that, its metadata (the documented on-failure invocation record)
  goes to the SQS queue `--on-failure-queue-url` (or the log, if none) and the shard moves on.
  `--max-retries -1` retries forever, as on AWS.
- `--maximum-record-age-s` (MaximumRecordAgeInSeconds): a failed batch about to be retried first
  discards its records older than that (arrival time), as above; -1: no limit. With
  `--max-retries -1` this is what bounds the retries (`infra/` sets both).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from alert_lambda import clients
from alert_lambda.kinesis_event import arn_parts, kinesis_event, on_failure_record
from alert_lambda.settings import Settings

logger = logging.getLogger(__name__)

LambdaFunction = Callable[[dict[str, Any], Any], Any]
MAX_RETRY_BACKOFF_S = 5.0


class MappingConfig(BaseModel):
    """The event source mapping's settings (the names of `CreateEventSourceMapping`'s parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: str = Field(min_length=1, description="Kinesis Data Stream name.")
    batch_size: int = Field(
        default=100, ge=1, le=10000, description="BatchSize: most records per invocation."
    )
    batch_window_s: float = Field(
        default=0.5, ge=0, le=300, description="MaximumBatchingWindowInSeconds: how long to gather records."
    )
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = Field(
        default="TRIM_HORIZON", description="StartingPosition of each shard iterator."
    )
    max_retries: int = Field(
        default=3, ge=-1, le=10000, description="MaximumRetryAttempts; -1 retries until the record expires."
    )
    maximum_record_age_s: int = Field(
        default=-1,
        ge=-1,
        le=604800,
        description="MaximumRecordAgeInSeconds: a failing record older than this is discarded; -1: no limit.",
    )
    bisect_on_error: bool = Field(default=False, description="BisectBatchOnFunctionError.")
    retry_backoff_s: float = Field(
        default=0.2,
        ge=0,
        le=MAX_RETRY_BACKOFF_S,
        description="Wait before the first retry of a failed batch; doubles per retry, at most 5 s.",
    )
    on_failure_queue_url: str | None = Field(
        default=None,
        description="DestinationConfig.OnFailure: SQS queue URL for discarded batches' metadata.",
    )
    poll_interval_s: float = Field(
        default=0.2, gt=0, le=10, description="Pause between polls of an idle shard."
    )
    function_name: str = Field(default="vigil-alert-lambda", description="Name in the context and the ARNs.")
    function_timeout_s: float = Field(
        default=60.0, gt=0, description="What the context reports as the timeout."
    )
    memory_limit_mb: int = Field(
        default=256, gt=0, description="What the context reports as the memory size."
    )


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that handlers (and powertools) read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: float
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class PendingBatch:
    """Records that must be (re)delivered, and how many times they have been retried so far."""

    records: list[dict[str, Any]]
    retries: int = 0
    due_at: float = 0.0


@dataclass
class ShardState:
    shard_id: str
    iterator: str | None
    last_fetched: str | None = None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    buffered_at: float | None = None
    retry_queue: deque[PendingBatch] = field(default_factory=deque)

    @property
    def busy(self) -> bool:
        return bool(self.buffer or self.retry_queue)


@dataclass(frozen=True)
class Invocation:
    """What one invocation did, as the mapping saw it."""

    shard_id: str
    sequence_numbers: tuple[str, ...]
    retries: int
    failed: tuple[str, ...] = ()
    function_error: str | None = None
    duration_ms: float = 0.0

    @property
    def succeeded(self) -> bool:
        return not self.failed and self.function_error is None


@dataclass
class MappingStats:
    invocations: int = 0
    records_succeeded: int = 0
    batches_discarded: int = 0
    records_discarded: int = 0


class EventSourceMappingError(RuntimeError):
    """The mapping cannot start: stream or destination missing, endpoint unreachable."""


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
    return str(exc)


class EventSourceMapping:
    """Poll one Kinesis stream and invoke a Lambda handler in-process, shard by shard.

    `poll_once()` does one round (per shard: at most one GetRecords and one invocation) and returns
    the invocations; `run(stop_event)` repeats it until the event is set (or the mapping was idle for
    `exit_when_idle_s`)."""

    def __init__(
        self,
        config: MappingConfig,
        function: LambdaFunction | None = None,
        settings: Settings | None = None,
    ) -> None:
        if function is None:
            from alert_lambda.handler import lambda_handler

            function = lambda_handler
        self.config = config
        self.function = function
        self.settings = settings or Settings.from_env()
        self.stats = MappingStats()
        self.stream_arn = ""
        self.function_arn = ""
        self.invoke_identity_arn = ""
        self._shards: list[ShardState] | None = None

    @property
    def _kinesis(self) -> Any:
        return clients.client("kinesis", self.settings)

    @property
    def _sqs(self) -> Any:
        return clients.client("sqs", self.settings)

    # -- start ---------------------------------------------------------------------------------------

    def start(self) -> EventSourceMapping:
        """Find the stream and its shards, check the destination, open the shard iterators."""
        if self._shards is not None:
            return self
        try:
            summary = self._kinesis.describe_stream_summary(StreamName=self.config.stream)
            self.stream_arn = summary["StreamDescriptionSummary"]["StreamARN"]
            shard_ids = self._list_shards()
        except ClientError as exc:
            raise EventSourceMappingError(f"stream {self.config.stream!r}: {_error_text(exc)}") from exc
        except BotoCoreError as exc:
            raise EventSourceMappingError(f"cannot reach Kinesis: {exc}") from exc
        if self.config.on_failure_queue_url:
            try:
                self._sqs.get_queue_attributes(
                    QueueUrl=self.config.on_failure_queue_url, AttributeNames=["QueueArn"]
                )
            except (ClientError, BotoCoreError) as exc:
                raise EventSourceMappingError(
                    f"on-failure queue {self.config.on_failure_queue_url!r}: {_error_text(exc)}"
                ) from exc
        region, account = arn_parts(self.stream_arn)
        self.function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.config.function_name}"
        self.invoke_identity_arn = f"arn:aws:iam::{account}:role/{self.config.function_name}"
        self._shards = [
            ShardState(shard_id=shard_id, iterator=self._iterator(shard_id, self.config.starting_position))
            for shard_id in shard_ids
        ]
        logger.info(
            "mapping %s -> %s: %d shard(s) from %s, batch size %d, window %.2f s, max retries %d, bisect %s, "
            "on-failure %s",
            self.stream_arn,
            self.config.function_name,
            len(self._shards),
            self.config.starting_position,
            self.config.batch_size,
            self.config.batch_window_s,
            self.config.max_retries,
            self.config.bisect_on_error,
            self.config.on_failure_queue_url or "log only",
        )
        return self

    def _list_shards(self) -> list[str]:
        shard_ids: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": self.config.stream}
        while True:
            page = self._kinesis.list_shards(**kwargs)
            shard_ids += [shard["ShardId"] for shard in page["Shards"]]
            if not page.get("NextToken"):
                return shard_ids
            kwargs = {"NextToken": page["NextToken"]}

    def _iterator(self, shard_id: str, position: str, after: str | None = None) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.config.stream, "ShardId": shard_id}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        else:
            kwargs.update(ShardIteratorType=position)
        return str(self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"])

    # -- polling -------------------------------------------------------------------------------------

    def poll_once(self) -> list[Invocation]:
        """One round over the shards; returns the invocations made (none when nothing was due)."""
        self.start()
        assert self._shards is not None
        invocations = []
        for shard in self._shards:
            batch = self._next_batch(shard)
            if batch is not None:
                invocations.append(self._deliver(shard, batch))
        return invocations

    @property
    def idle(self) -> bool:
        """No record waiting for an invocation or a retry on any shard."""
        return self._shards is not None and not any(shard.busy for shard in self._shards)

    def run(self, stop_event: threading.Event, exit_when_idle_s: float | None = None) -> MappingStats:
        """Poll until `stop_event` is set, or until nothing has arrived for `exit_when_idle_s`."""
        self.start()
        idle_since = time.monotonic()
        while not stop_event.is_set():
            invocations = self.poll_once()
            if invocations or not self.idle:
                idle_since = time.monotonic()
            elif exit_when_idle_s is not None and time.monotonic() - idle_since >= exit_when_idle_s:
                logger.info("idle for %.1f s; stopping", exit_when_idle_s)
                break
            if not invocations:
                stop_event.wait(self.config.poll_interval_s)
        logger.info(
            "mapping stopped: %d invocation(s), %d record(s) delivered, %d record(s) in %d discarded batch(es)",
            self.stats.invocations,
            self.stats.records_succeeded,
            self.stats.records_discarded,
            self.stats.batches_discarded,
        )
        return self.stats

    def _next_batch(self, shard: ShardState) -> PendingBatch | None:
        if shard.retry_queue:  # a failed batch blocks its shard until it succeeds or is discarded
            if shard.retry_queue[0].due_at > time.monotonic():
                return None
            batch = shard.retry_queue.popleft()
            expired = self._expired(batch.records)
            if expired:
                self._discard(shard, batch.records[:expired], batch.retries, "", function_error=None)
                batch.records = batch.records[expired:]
            return batch if batch.records else None
        if len(shard.buffer) < self.config.batch_size:
            self._fetch(shard)
        if not shard.buffer:
            return None
        full = len(shard.buffer) >= self.config.batch_size
        waited = time.monotonic() - (shard.buffered_at or 0.0)
        if not full and waited < self.config.batch_window_s:
            return None
        records = shard.buffer[: self.config.batch_size]
        shard.buffer = shard.buffer[self.config.batch_size :]
        if not shard.buffer:
            shard.buffered_at = None
        # (records left over keep their arrival time: they have waited as long as this batch, due at once)
        return PendingBatch(records=records)

    def _fetch(self, shard: ShardState) -> None:
        if shard.iterator is None:  # the shard is closed and read to its end
            return
        try:
            page = self._kinesis.get_records(
                ShardIterator=shard.iterator, Limit=self.config.batch_size - len(shard.buffer)
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ExpiredIteratorException":
                logger.info(
                    "shard %s: iterator expired; renewing after %s", shard.shard_id, shard.last_fetched
                )
                shard.iterator = self._iterator(
                    shard.shard_id, self.config.starting_position, shard.last_fetched
                )
            else:
                logger.warning("shard %s: GetRecords failed (%s); retrying next poll", shard.shard_id, code)
            return
        except BotoCoreError as exc:
            logger.warning("shard %s: GetRecords failed (%s); retrying next poll", shard.shard_id, exc)
            return
        shard.iterator = page.get("NextShardIterator")
        records = page.get("Records", [])
        if records:
            if not shard.buffer:
                shard.buffered_at = time.monotonic()
            shard.buffer += records
            shard.last_fetched = str(records[-1]["SequenceNumber"])

    # -- one invocation and its outcome --------------------------------------------------------------

    def _deliver(self, shard: ShardState, batch: PendingBatch) -> Invocation:
        records = batch.records
        sequence_numbers = tuple(str(r["SequenceNumber"]) for r in records)
        event = kinesis_event(
            records,
            shard_id=shard.shard_id,
            stream_arn=self.stream_arn,
            invoke_identity_arn=self.invoke_identity_arn,
        )
        context = LocalLambdaContext(
            function_name=self.config.function_name,
            invoked_function_arn=self.function_arn,
            memory_limit_in_mb=self.config.memory_limit_mb,
            timeout_s=self.config.function_timeout_s,
        )
        started = time.perf_counter()
        function_error: str | None = None
        failed: tuple[str, ...] = ()
        try:
            response = self.function(event, context)
        except Exception as exc:  # noqa: BLE001 - any exception is a function error, as on Lambda
            first_line = next(iter(str(exc).splitlines()), "")  # BatchProcessingError appends tracebacks
            function_error = f"{type(exc).__name__}: {first_line}"
        else:
            failed, invalid = self._failed_items(response, sequence_numbers)
            if invalid:
                function_error = f"invalid batchItemFailures response: {invalid}"
        duration_ms = (time.perf_counter() - started) * 1000.0
        self.stats.invocations += 1
        invocation = Invocation(
            shard_id=shard.shard_id,
            sequence_numbers=sequence_numbers,
            retries=batch.retries,
            failed=failed,
            function_error=function_error,
            duration_ms=duration_ms,
        )
        logger.info(
            "invoked %s request %s: shard %s, %d record(s) %s..%s, retry %d, %d failed item(s)%s, %.0f ms",
            self.config.function_name,
            context.aws_request_id,
            shard.shard_id,
            len(records),
            sequence_numbers[0],
            sequence_numbers[-1],
            batch.retries,
            len(failed),
            f", function error: {function_error}" if function_error else "",
            duration_ms,
        )
        if function_error is not None:
            self._retry(shard, records, batch.retries, context.aws_request_id, function_error="Unhandled")
        elif failed:
            first = min(sequence_numbers.index(seq) for seq in failed)
            self.stats.records_succeeded += first
            self._retry(shard, records[first:], batch.retries, context.aws_request_id, function_error=None)
        else:
            self.stats.records_succeeded += len(records)
        return invocation

    def _expired(self, records: Sequence[dict[str, Any]]) -> int:
        """How many of `records` (oldest first) are older than the maximum record age."""
        if self.config.maximum_record_age_s < 0:
            return 0
        oldest_allowed = time.time() - self.config.maximum_record_age_s
        count = 0
        for record in records:
            arrival = record["ApproximateArrivalTimestamp"]
            arrival_s = arrival.timestamp() if hasattr(arrival, "timestamp") else float(arrival)
            if arrival_s >= oldest_allowed:
                break
            count += 1
        return count

    @staticmethod
    def _failed_items(response: Any, sequence_numbers: Sequence[str]) -> tuple[tuple[str, ...], str]:
        """(failed sequence numbers, '' or why the response is invalid)."""
        if not isinstance(response, dict):
            return (), ""  # null / non-JSON-object response: a success
        items = response.get("batchItemFailures") or []
        failed = []
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in sequence_numbers:
                return (), f"itemIdentifier {identifier!r} is not a sequence number of the batch"
            failed.append(identifier)
        return tuple(failed), ""

    def _retry(
        self,
        shard: ShardState,
        records: list[dict[str, Any]],
        retries: int,
        request_id: str,
        function_error: str | None,
    ) -> None:
        retries += 1
        if 0 <= self.config.max_retries < retries:
            self._discard(shard, records, retries, request_id, function_error)
            return
        due_at = time.monotonic() + min(self.config.retry_backoff_s * 2 ** (retries - 1), MAX_RETRY_BACKOFF_S)
        if function_error is not None and self.config.bisect_on_error and len(records) > 1:
            middle = len(records) // 2
            shard.retry_queue.extendleft(
                [
                    PendingBatch(records[middle:], retries, due_at),
                    PendingBatch(records[:middle], retries, due_at),
                ]
            )
        else:
            shard.retry_queue.appendleft(PendingBatch(records, retries, due_at))

    def _discard(
        self,
        shard: ShardState,
        records: list[dict[str, Any]],
        invoke_count: int,
        request_id: str,
        function_error: str | None,
    ) -> None:
        record = on_failure_record(
            records,
            shard_id=shard.shard_id,
            stream_arn=self.stream_arn,
            function_arn=self.function_arn,
            request_id=request_id,
            invoke_count=invoke_count,
            function_error=function_error,
        )
        self.stats.batches_discarded += 1
        self.stats.records_discarded += len(records)
        body = json.dumps(record)
        if not self.config.on_failure_queue_url:
            logger.error(
                "retries exhausted, %d record(s) discarded (no on-failure destination): %s",
                len(records),
                body,
            )
            return
        try:
            self._sqs.send_message(QueueUrl=self.config.on_failure_queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            logger.error("retries exhausted and the on-failure destination failed (%s): %s", exc, body)
            return
        logger.warning(
            "retries exhausted: %d record(s) %s..%s of shard %s sent to the on-failure destination",
            len(records),
            records[0]["SequenceNumber"],
            records[-1]["SequenceNumber"],
            shard.shard_id,
        )
