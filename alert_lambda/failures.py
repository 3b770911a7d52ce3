"""Why a record failed, and whether any retry can fix it. Pure.

- **retryable**: throttling, 5xx, timeouts and connection failures, the idempotency store unreachable
  or an alert already in progress elsewhere, and errors an operator fixes in configuration (the topic
  missing, access denied, a KMS key disabled): the record is reported as a batch item failure and the
  event source mapping retries it; nothing is lost while the record is in the stream.
- **permanent**: the record can never succeed, however often it is retried: it fails the alert contract
  (`ValidationError`), SNS refuses the message itself (`InvalidParameter`, message too long), the
  idempotency key is missing, or the data cannot be serialised (`OverflowError`, `ValueError`). The
  function sends it once to the dead-letter queue, with its reason and a bounded copy, and then
  reports it as done, so that it blocks nothing behind it on the shard.
"""

from __future__ import annotations

import logging
from typing import Literal

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyKeyError,
    IdempotencyValidationError,
)
from botocore.exceptions import ClientError, ParamValidationError
from pydantic import ValidationError

from alert_lambda.settings import SettingsError
from contracts.retry import is_retryable

logger = logging.getLogger(__name__)

Kind = Literal["retryable", "permanent"]

# Client errors that say the request itself is wrong: sending it again gets the same answer.
PERMANENT_CODES = frozenset(
    {
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidParameterException",
        "ParameterValueInvalid",
        "ValidationError",
        "ValidationException",
        "MalformedQueryString",
    }
)


class PermanentFailure(Exception):
    """A record that no retry can deliver (raised with the reason a person reads in the DLQ)."""


def classify(exc: BaseException | None) -> Kind:
    """`permanent` when no retry can fix `exc`, `retryable` otherwise (the default: never lose)."""
    if isinstance(exc, SettingsError):  # the function's environment: an operator fixes it
        return "retryable"
    if isinstance(
        exc,
        ValidationError
        | PermanentFailure
        | IdempotencyKeyError
        | IdempotencyValidationError
        | ParamValidationError
        | OverflowError
        | UnicodeError,
    ):
        return "permanent"
    if isinstance(exc, ClientError):
        if is_retryable(exc):
            return "retryable"
        return (
            "permanent" if exc.response.get("Error", {}).get("Code", "") in PERMANENT_CODES else "retryable"
        )
    # A ValueError from our own code is bad data (an unserialisable value); botocore's and the
    # idempotency layer's own errors are not ValueErrors.
    if isinstance(exc, ValueError | TypeError) and not isinstance(exc, ClientError):
        return "permanent"
    return "retryable"
