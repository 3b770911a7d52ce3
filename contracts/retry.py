"""Which AWS errors are worth retrying, and how long to wait before the next attempt."""

from __future__ import annotations

import logging
import random

from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

logger = logging.getLogger(__name__)

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
        "ModelNotReadyException",
        "KMSThrottlingException",
    }
)

# The worker retries itself (it must count and log what it gives up on); botocore makes one attempt.
NO_BOTOCORE_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and connection failures are retryable; other client errors are not."""
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or code in THROTTLING_CODES
    return False


def backoff_delay(attempt: int, base_s: float, cap_s: float = 5.0) -> float:
    """Exponential backoff with equal jitter: attempt 0 waits base/2..base, attempt 1 base..2*base..."""
    ceiling = min(cap_s, base_s * 2 ** min(attempt, 30))  # no OverflowError after 1,024 failures
    return ceiling / 2 + random.uniform(0, ceiling / 2)
