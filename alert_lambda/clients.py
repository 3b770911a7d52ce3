"""boto3 clients, created lazily and once per container.

A client is cached per (service, endpoint, region): on Lambda that is once per container; in a test
process that starts a new moto server per test, each server gets its own client instead of a stale one.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from alert_lambda.settings import Settings

logger = logging.getLogger(__name__)

# Short timeouts and standard retries (throttling, 5xx): a stuck call must not eat the invocation.
_BOTO_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
# Presigned S3 links with SigV4 (botocore may otherwise presign with the deprecated SigV2). SNS makes
# one attempt per call: botocore would resend a Publish whose response was lost (a second
# notification); `notifier.publish` retries itself, knowing which failures may have been delivered.
_SERVICE_CONFIG = {
    "s3": Config(signature_version="s3v4"),
    "sns": Config(retries={"mode": "standard", "total_max_attempts": 1}),
}


@lru_cache(maxsize=16)
def _client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    logger.debug("creating %s client (endpoint %s, region %s)", service, endpoint_url or "default", region)
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        config=_BOTO_CONFIG.merge(_SERVICE_CONFIG[service]) if service in _SERVICE_CONFIG else _BOTO_CONFIG,
    )


def client(service: str, settings: Settings) -> Any:
    """The cached boto3 client for `service` as `settings` (endpoint, region) describe it."""
    return _client(service, settings.endpoint_url, settings.region)
