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

import os
from datetime import UTC, datetime
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

    _raw_record: dict[str, Any] | None = None

    def _process_record(self, record: dict) -> Any:
        self._raw_record = record  # the record as received, for the dead-letter copy
        return super()._process_record(record)

    def success_handler(self, record: Any, result: Any) -> Any:
        logger.remove_keys(_RECORD_KEYS)
        return super().success_handler(record, result)

    def failure_handler(self, record: Any, exception: Any) -> Any:
        exc = exception[1]
        reason = failure_reason(exc)
        sequence_number = _sequence_number(record)
        if failures.classify(exc) == "permanent":
            metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=1)
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
        metrics.add_metric(name="AlertFailures", unit=MetricUnit.Count, value=1)
        logger.remove_keys(_RECORD_KEYS)
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
            self._raw_record or getattr(record, "raw_event", {}),
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
    logger.append_keys(camera_id=alert.camera_id, alert_id=alert.alert_id)
    result = idempotency.notify_once(alert, Settings.from_env())
    # After the publish, before the duplicate check: a retry still records what failed to record
    # the first time. Conditional on alert_id, so a repeat never overwrites an operator's review.
    if table := os.environ.get(history.HISTORY_TABLE_ENV):
        history.record_alert(alert, table)
    if result.duplicate:
        logger.info("alert already notified as message %s; not notifying again", result.message_id)
        metrics.add_metric(name="AlertsDuplicate", unit=MetricUnit.Count, value=1)
        return
    latency_ms = (datetime.now(UTC) - alert.detected_at).total_seconds() * 1000.0
    metrics.add_metric(name="AlertsNotified", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="EndToEndLatencyMs", unit=MetricUnit.Milliseconds, value=max(0.0, latency_ms))


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
