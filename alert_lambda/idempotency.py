"""Notify each alert once: powertools idempotency on `alert_id`, records in DynamoDB.

A duplicate record on the stream (the worker retried a PutRecords), a batch that the event source
mapping retries from a failed record, or two invocations racing on the same alert all reach
`notify_once`; only the first publishes. A publish that fails leaves no record behind, so the retry
publishes. With `VIGIL_IDEMPOTENCY_TABLE` set to an empty string the guard is off (a warning, once).

The store failing after a publish never publishes again: `notify_once` tries to record the success
`RECORD_ATTEMPTS` times; if the store stays down it remembers the alert in this container
(`_published_unrecorded`, bounded) and reports the record as done, so neither the mapping's retry of
this record nor a duplicate of it reaching this container publishes it again. What is left: a copy
of the record reaching another container after the in-progress lock expired (see the README).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemNotFoundError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import STATUS_CONSTANTS

from alert_lambda import clients, dead_letter, notifier
from alert_lambda.settings import IDEMPOTENCY_TABLE_ENV, Settings
from contracts.alert import AlertRecord
from contracts.retry import backoff_delay

logger = logging.getLogger(__name__)

RECORD_ATTEMPTS = 4
# Another invocation is publishing the same alert: wait this many times (about 1.5 s in all) for it to
# finish before failing the record (the mapping then retries it, and finds it done).
IN_PROGRESS_WAITS = 4
MAX_UNRECORDED = 10_000
# alert_id -> message id: published, but the store could not record it (the store was down).
_published_unrecorded: OrderedDict[str, str] = OrderedDict()


@dataclass(frozen=True)
class NotifyResult:
    message_id: str
    duplicate: bool


@dataclass(frozen=True)
class _Guard:
    config: IdempotencyConfig
    notify: Callable[..., dict[str, Any]]
    persistence: DynamoDBPersistenceLayer | None = None


@lru_cache(maxsize=8)
def _guard(table: str, ttl_s: int, endpoint_url: str | None, region: str | None) -> _Guard:
    settings = Settings(
        idempotency_table=table, idempotency_ttl_s=ttl_s, endpoint_url=endpoint_url, region=region
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=table, key_attr="id", boto3_client=clients.client("dynamodb", settings)
    )
    config = IdempotencyConfig(
        event_key_jmespath="alert_id", raise_on_no_idempotency_key=True, expires_after_seconds=ttl_s
    )

    @idempotent_function(data_keyword_argument="alert", persistence_store=persistence, config=config)
    def notify(*, alert: AlertRecord, settings: Settings, published: list[str]) -> dict[str, Any]:
        # Only `alert` (its alert_id) makes the idempotency key; the other arguments pass through.
        message_id = notifier.publish(
            alert, settings, published_elsewhere=lambda: _completed_message_id(persistence, alert.alert_id)
        )
        published.append(message_id)
        return {"message_id": message_id}

    return _Guard(config=config, notify=notify, persistence=persistence)


def _completed_message_id(persistence: DynamoDBPersistenceLayer, alert_id: str) -> str | None:
    """The message id another invocation recorded for `alert_id`, or None (also when the store fails:
    the caller then resends, as losing the alert is worse than a flagged repeat)."""
    try:
        record = persistence.get_record({"alert_id": alert_id})
    except IdempotencyItemNotFoundError:
        return None
    except Exception:  # the store is down: we cannot know
        logger.warning("alert %s: could not read its idempotency record", alert_id, exc_info=True)
        return None
    if record is None or record.status != STATUS_CONSTANTS["COMPLETED"]:
        return None
    return str((record.response_json_as_dict() or {}).get("message_id", "?"))


@lru_cache(maxsize=8)
def _dead_letter_guard(table: str, ttl_s: int, endpoint_url: str | None, region: str | None) -> _Guard:
    settings = Settings(
        idempotency_table=table, idempotency_ttl_s=ttl_s, endpoint_url=endpoint_url, region=region
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=table, key_attr="id", boto3_client=clients.client("dynamodb", settings)
    )
    config = IdempotencyConfig(
        event_key_jmespath="KinesisRecord.eventID",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=ttl_s,
    )

    @idempotent_function(data_keyword_argument="message", persistence_store=persistence, config=config)
    def send(*, message: dict[str, Any], settings: Settings, sent: list[str]) -> dict[str, Any]:
        # Only the record's eventID (shard + sequence number) makes the key: a retried batch sends nothing.
        message_id = dead_letter.send(message, settings)
        sent.append(message_id)
        return {"message_id": message_id}

    return _Guard(config=config, notify=send)


@lru_cache(maxsize=1)
def _warn_off_once() -> None:
    logger.warning(
        "%s is empty: idempotency is off, a duplicate alert record notifies twice", IDEMPOTENCY_TABLE_ENV
    )


def _current_guard(settings: Settings) -> _Guard | None:
    if not settings.idempotency_table:
        _warn_off_once()
        return None
    return _guard(
        settings.idempotency_table, settings.idempotency_ttl_s, settings.endpoint_url, settings.region
    )


def register_lambda_context(context: Any, settings: Settings) -> None:
    """Tell the guards how long the invocation has left, so a record left IN_PROGRESS by a crashed
    invocation expires with it instead of blocking the alert for the whole TTL."""
    guard = _current_guard(settings)
    if guard is not None and context is not None:
        guard.config.register_lambda_context(context)
        _dead_letter_guard(
            settings.idempotency_table, settings.idempotency_ttl_s, settings.endpoint_url, settings.region
        ).config.register_lambda_context(context)


def dead_letter_once(message: dict[str, Any], settings: Settings) -> NotifyResult:
    """Send a poison record's dead-letter `message` (see `dead_letter.poison_message`) once per record."""
    if not settings.idempotency_table:
        _warn_off_once()
        return NotifyResult(message_id=dead_letter.send(message, settings), duplicate=False)
    guard = _dead_letter_guard(
        settings.idempotency_table, settings.idempotency_ttl_s, settings.endpoint_url, settings.region
    )
    sent: list[str] = []
    try:
        stored = guard.notify(message=message, settings=settings, sent=sent)
    except IdempotencyPersistenceLayerError:
        if not sent:
            raise
        # In the queue; only the record of it failed. Reporting it done is right: a retry would send
        # it again (a repeat in the DLQ, never a loss).
        logger.warning("dead-letter message %s sent, but the idempotency store failed to record it", sent[0])
        return NotifyResult(message_id=sent[0], duplicate=False)
    return NotifyResult(message_id=str(stored["message_id"]), duplicate=not sent)


def notify_once(alert: AlertRecord, settings: Settings) -> NotifyResult:
    guard = _current_guard(settings)
    if guard is None:
        return NotifyResult(message_id=notifier.publish(alert, settings), duplicate=False)
    if (message_id := _published_unrecorded.get(alert.alert_id)) is not None:
        logger.warning(
            "alert %s was published as %s but never recorded; recording it, not publishing again",
            alert.alert_id,
            message_id,
        )
        _record_success(guard, alert.alert_id, message_id)
        return NotifyResult(message_id=message_id, duplicate=True)
    published: list[str] = []
    try:
        stored = _notify_waiting_for_others(guard, alert, settings, published)
    except IdempotencyPersistenceLayerError:
        if not published:  # the store failed before the publish: nothing sent, the retry publishes
            raise
        logger.exception(
            "alert %s published as %s, but recording it failed; retrying the write",
            alert.alert_id,
            published[0],
        )
        _published_unrecorded[alert.alert_id] = published[0]
        while len(_published_unrecorded) > MAX_UNRECORDED:
            _published_unrecorded.popitem(last=False)
        _record_success(guard, alert.alert_id, published[0])
        return NotifyResult(message_id=published[0], duplicate=False)
    return NotifyResult(message_id=str(stored["message_id"]), duplicate=not published)


def _notify_waiting_for_others(
    guard: _Guard, alert: AlertRecord, settings: Settings, published: list[str]
) -> dict[str, Any]:
    for attempt in range(IN_PROGRESS_WAITS + 1):
        try:
            return guard.notify(alert=alert, settings=settings, published=published)
        except IdempotencyAlreadyInProgressError:
            if attempt == IN_PROGRESS_WAITS:
                raise
            time.sleep(backoff_delay(attempt, 0.1, 1.0))
    raise AssertionError("unreachable")  # pragma: no cover


def _record_success(guard: _Guard, alert_id: str, message_id: str) -> bool:
    """Write the COMPLETED record for a published alert, retrying; True once it is written."""
    assert guard.persistence is not None
    for attempt in range(RECORD_ATTEMPTS):
        try:
            guard.persistence.save_success(data={"alert_id": alert_id}, result={"message_id": message_id})
        except Exception as exc:  # noqa: BLE001 - any store error: try again, then give up loudly
            if attempt + 1 == RECORD_ATTEMPTS:
                logger.error(
                    "alert %s: the idempotency store still fails (%s); remembered in this container only",
                    alert_id,
                    exc,
                )
                return False
            time.sleep(backoff_delay(attempt, 0.1, 1.0))
            continue
        _published_unrecorded.pop(alert_id, None)
        logger.info("alert %s: success recorded after a store failure", alert_id)
        return True
    return False
