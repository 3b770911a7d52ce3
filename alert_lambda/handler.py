"""Lambda entry point: a batch of Kinesis `alerts` records in, one SNS notification per new alert out.

Configure the event source mapping with `FunctionResponseTypes=["ReportBatchItemFailures"]`: a record
that fails (poison data, SNS error) is reported in `batchItemFailures` and the rest of the batch is
delivered; the mapping retries from the lowest failed sequence number, and `idempotency` keeps the
records that had already succeeded from notifying twice. When every record fails the function raises
(`BatchProcessingError`), which lets a mapping with `BisectBatchOnFunctionError` split the batch.

Each failure is classified (`failures.classify`). A retryable one (throttling, 5xx, timeouts, the
idempotency store down) is reported as a batch item failure. A permanent one (the record fails the
alert contract, SNS refuses the message, it cannot be serialised) goes at once, with its reason and a
bounded copy of the record, to the dead-letter queue `VIGIL_DEAD_LETTER_QUEUE_URL` (`dead_letter`),
once per record however often it is retried, and the record is then reported as done: it blocks
nothing behind it. If the dead-letter queue cannot take it, the record is reported failed (retried).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from alert_lambda import dead_letter, failures, history, idempotency, notifier
from alert_lambda.models import AlertKinesisRecord
from alert_lambda.settings import METRICS_NAMESPACE, Settings

_SERVICE = Settings.from_env().service_name
logger = Logger(service=_SERVICE)
# The package's module loggers (notifier, idempotency) write through the same structured handler, so
# their lines carry camera_id and alert_id too.
copy_config_to_registered_loggers(source_logger=logger, include={"alert_lambda"})
metrics = Metrics(namespace=METRICS_NAMESPACE, service=_SERVICE)

_RECORD_KEYS = ["camera_id", "alert_id"]
# Records handled at once in one invocation (threads; boto3 clients are thread-safe). One SNS Publish
# and three DynamoDB calls per alert are mostly waiting: in parallel the invocation keeps up with a
# bare Publish loop.
PUBLISH_CONCURRENCY = 8


@lru_cache(maxsize=1)
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=PUBLISH_CONCURRENCY, thread_name_prefix="alert")


_metrics_lock = threading.Lock()


def _metric(name: str, unit: MetricUnit, value: float) -> None:
    with _metrics_lock:  # records are handled on several threads
        metrics.add_metric(name=name, unit=unit, value=value)


def _alert_id_of(record: dict[str, Any]) -> str | None:
    """The record's alert_id if its data is a JSON object that has one (else None), cheaply."""
    try:
        data = json.loads(base64.b64decode(record["kinesis"]["data"]))
    except (KeyError, TypeError, ValueError):
        return None
    alert_id = data.get("alert_id") if isinstance(data, dict) else None
    return alert_id if isinstance(alert_id, str) else None


def failure_reason(exc: BaseException | None) -> str:
    """One line saying why a record failed, e.g. `kinesis.data.schema_version: Input should be '1'`."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
    return f"{type(exc).__name__}: {exc}"


def _sequence_number(record: Any) -> str:
    # A record that failed model validation comes back as powertools' KinesisStreamRecord data class
    # (snake_case); one that failed in the handler is our pydantic model (camelCase).
    kinesis = getattr(record, "kinesis", None)
    return str(getattr(kinesis, "sequenceNumber", None) or getattr(kinesis, "sequence_number", "?"))


class AlertBatchProcessor(BatchProcessor):
    """BatchProcessor that logs each failed record on one line with its reason and counts it, and
    sends each record that no retry can deliver to the dead-letter queue, then reports it as done."""

    _local = threading.local()  # per worker thread: the record being processed, as received

    def process(self) -> list[tuple]:
        """Process the records `PUBLISH_CONCURRENCY` at a time (each is mostly waiting on SNS and
        DynamoDB). Copies of one alert in the batch go in successive rounds, so the second copy finds
        the first one's idempotency record completed, not in progress. Results keep the batch order."""
        records = list(self.records)
        if len(records) <= 1 or PUBLISH_CONCURRENCY <= 1:
            return super().process()
        rounds: dict[int, list[int]] = {}
        seen: dict[str, int] = {}
        for index, record in enumerate(records):
            key = _alert_id_of(record)
            round_ = seen.get(key, 0) if key is not None else 0
            if key is not None:
                seen[key] = round_ + 1
            rounds.setdefault(round_, []).append(index)
        results: list[Any] = [None] * len(records)
        for round_ in sorted(rounds):
            indices = rounds[round_]
            for index, result in zip(
                indices, _executor().map(self._process_record, [records[i] for i in indices]), strict=True
            ):
                results[index] = result
        return results

    def _process_record(self, record: dict) -> Any:
        self._local.raw_record = record  # the record as received, for the dead-letter copy
        return super()._process_record(record)

    def success_handler(self, record: Any, result: Any) -> Any:
        logger.thread_safe_remove_keys(_RECORD_KEYS)
        return super().success_handler(record, result)

    def failure_handler(self, record: Any, exception: Any) -> Any:
        exc = exception[1]
        reason = failure_reason(exc)
        sequence_number = _sequence_number(record)
        if failures.classify(exc) == "permanent":
            _metric(name="PoisonRecords", unit=MetricUnit.Count, value=1)
            if self._dead_letter(record, reason):
                logger.warning(
                    "record %s can never be delivered, sent to the dead-letter queue and reported done: %s",
                    sequence_number,
                    reason,
                )
                return self.success_handler(record, None)
        logger.warning(
            "record %s failed, reported as a batch item failure: %s",
            sequence_number,
            reason,
            # a traceback only for the unexpected; an AWS error's one line says it all
            exc_info=None
            if isinstance(exc, ValidationError | ClientError | BotoCoreError | notifier.SnsUnavailable)
            else exception,
        )
        _metric(name="AlertFailures", unit=MetricUnit.Count, value=1)
        logger.thread_safe_remove_keys(_RECORD_KEYS)
        return super().failure_handler(record, exception)

    def _dead_letter(self, record: Any, reason: str) -> bool:
        """True once the record is in the dead-letter queue (sent now, or by an earlier attempt)."""
        settings = Settings.from_env()
        if not settings.dead_letter_queue_url:
            logger.error(
                "no dead-letter queue (%s): the record is retried until the mapping discards it",
                "VIGIL_DEAD_LETTER_QUEUE_URL",
            )
            return False
        context = getattr(self, "lambda_context", None)
        message = dead_letter.poison_message(
            getattr(self._local, "raw_record", None) or getattr(record, "raw_event", {}),
            reason,
            request_id=getattr(context, "aws_request_id", ""),
            function_arn=getattr(context, "invoked_function_arn", ""),
        )
        try:
            idempotency.dead_letter_once(message, settings)
        except Exception:  # the record is reported failed; the retry sends it again
            logger.exception(
                "poison record %s: sending it to the dead-letter queue failed", _sequence_number(record)
            )
            return False
        return True


processor = AlertBatchProcessor(event_type=EventType.KinesisDataStreams, model=AlertKinesisRecord)


def record_handler(record: AlertKinesisRecord) -> None:
    alert = record.kinesis.data  # an AlertRecord, validated by pydantic
    logger.thread_safe_append_keys(camera_id=alert.camera_id, alert_id=alert.alert_id)
    if not alert.notify:  # outside the camera's arming schedule: kept for the console, not sent
        if table := os.environ.get(history.HISTORY_TABLE_ENV):
            history.record_alert(alert, table)
        logger.info("alert raised while disarmed (notify false): recorded, not published to SNS")
        _metric(name="AlertsNotNotified", unit=MetricUnit.Count, value=1)
        return
    result = idempotency.notify_once(alert, Settings.from_env())
    # After the publish, before the duplicate check: a retry still records what failed to record
    # the first time. Conditional on alert_id, so a repeat never overwrites an operator's review.
    if table := os.environ.get(history.HISTORY_TABLE_ENV):
        history.record_alert(alert, table)
    if result.duplicate:
        logger.info("alert already notified as message %s; not notifying again", result.message_id)
        _metric(name="AlertsDuplicate", unit=MetricUnit.Count, value=1)
        return
    latency_ms = (datetime.now(UTC) - alert.detected_at).total_seconds() * 1000.0
    _metric(name="AlertsNotified", unit=MetricUnit.Count, value=1)
    _metric(name="EndToEndLatencyMs", unit=MetricUnit.Milliseconds, value=max(0.0, latency_ms))


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context, Settings.from_env())
    notifier.new_invocation()
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
