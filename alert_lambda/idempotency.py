"""Notify each alert once: powertools idempotency on `alert_id`, records in DynamoDB.

A duplicate record on the stream (the worker retried a PutRecords), a batch that the event source
mapping retries from a failed record, or two invocations racing on the same alert all reach
`notify_once`; only the first publishes. A publish that fails leaves no record behind, so the retry
publishes. With `VIGIL_IDEMPOTENCY_TABLE` set to an empty string the guard is off (a warning, once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from alert_lambda import clients, dead_letter, notifier
from alert_lambda.settings import IDEMPOTENCY_TABLE_ENV, Settings
from contracts.alert import AlertRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifyResult:
    message_id: str
    duplicate: bool


@dataclass(frozen=True)
class _Guard:
    config: IdempotencyConfig
    notify: Callable[..., dict[str, Any]]


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
        message_id = notifier.publish(alert, settings)
        published.append(message_id)
        return {"message_id": message_id}

    return _Guard(config=config, notify=notify)


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
    stored = guard.notify(message=message, settings=settings, sent=sent)
    return NotifyResult(message_id=str(stored["message_id"]), duplicate=not sent)


def notify_once(alert: AlertRecord, settings: Settings) -> NotifyResult:
    guard = _current_guard(settings)
    if guard is None:
        return NotifyResult(message_id=notifier.publish(alert, settings), duplicate=False)
    published: list[str] = []
    stored = guard.notify(alert=alert, settings=settings, published=published)
    return NotifyResult(message_id=str(stored["message_id"]), duplicate=not published)
