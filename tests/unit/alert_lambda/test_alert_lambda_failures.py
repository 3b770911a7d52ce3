"""alert_lambda.failures and notifier.outcome_unknown: what a failure means, pure."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyKeyError,
    IdempotencyPersistenceLayerError,
)
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from pydantic import ValidationError

from alert_lambda.failures import PermanentFailure, classify
from alert_lambda.notifier import SnsUnavailable, outcome_unknown
from alert_lambda.settings import SettingsError
from contracts.alert import AlertRecord


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Publish"
    )


def validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        AlertRecord.model_validate({})
    return caught.value


URL = "https://sns.us-east-1.amazonaws.com/"
CASES = [
    # (exception, kind, SNS may have published it)
    (client_error("Throttling", 400), "retryable", False),
    (client_error("ServiceUnavailable", 503), "retryable", True),
    (client_error("InternalError", 500), "retryable", True),
    (client_error("AuthorizationError", 403), "retryable", False),  # an operator fixes the policy
    (client_error("NotFound", 404), "retryable", False),  # ... or the topic
    (client_error("KMSDisabled", 400), "retryable", False),
    (client_error("InvalidParameter", 400), "permanent", False),  # e.g. message too long
    (client_error("InvalidParameterValue", 400), "permanent", False),
    (ReadTimeoutError(endpoint_url=URL), "retryable", True),
    (ConnectionClosedError(endpoint_url=URL), "retryable", True),
    (EndpointConnectionError(endpoint_url=URL), "retryable", False),
    (ConnectTimeoutError(endpoint_url=URL), "retryable", False),
    (IdempotencyPersistenceLayerError("store down"), "retryable", False),
    (IdempotencyAlreadyInProgressError("busy"), "retryable", False),
    (SnsUnavailable("earlier in this invocation"), "retryable", False),
    (SettingsError("VIGIL_ALERT_TOPIC_ARN is not set"), "retryable", False),
    (IdempotencyKeyError("no alert_id"), "permanent", False),
    (ParamValidationError(report="bad"), "permanent", False),
    (OverflowError("date value out of range"), "permanent", False),
    (PermanentFailure("SNS refused it"), "permanent", False),
]


@pytest.mark.parametrize(
    ("exc", "kind", "unknown"), CASES, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None
)
def test_each_failure_is_retryable_or_permanent_and_says_whether_sns_may_have_published(exc, kind, unknown):
    assert (classify(exc), outcome_unknown(exc)) == (kind, unknown)


def test_a_contract_refusal_is_permanent():
    assert classify(validation_error()) == "permanent"
