"""Environment variables the alert Lambda (and its local event source mapping) read: names and defaults.

All names live here and nowhere else. `Settings.from_env()` reads them; it is cheap and is called per
invocation, so a process whose environment changes (a test pointing at a new moto server) sees it.
"""

from __future__ import annotations

import logging
import os

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

ALERT_TOPIC_ARN_ENV = "VIGIL_ALERT_TOPIC_ARN"
LINK_EXPIRY_ENV = "VIGIL_LINK_EXPIRY_S"
IDEMPOTENCY_TABLE_ENV = "VIGIL_IDEMPOTENCY_TABLE"
IDEMPOTENCY_TTL_ENV = "VIGIL_IDEMPOTENCY_TTL_S"
SERVICE_NAME_ENV = "POWERTOOLS_SERVICE_NAME"
# Read by boto3 itself; named here because the local event source mapping reports it.
ENDPOINT_URL_ENV = "AWS_ENDPOINT_URL"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")

DEFAULT_SERVICE_NAME = "vigil-alerts"
DEFAULT_IDEMPOTENCY_TABLE = "vigil-idempotency"
METRICS_NAMESPACE = "Vigil"
# SigV4 presigned URLs live at most 7 days.
MAX_LINK_EXPIRY_S = 7 * 24 * 3600
# Kinesis keeps records 24 h by default, and an event source mapping may retry a record until it
# expires from the stream: remember every alert id at least that long.
DEFAULT_IDEMPOTENCY_TTL_S = 24 * 3600


class SettingsError(ValueError):
    """An environment variable holds a value the function cannot use."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_topic_arn: str = Field(
        default="", description=f"SNS topic to publish to (`{ALERT_TOPIC_ARN_ENV}`)."
    )
    link_expiry_s: int = Field(
        default=MAX_LINK_EXPIRY_S,
        gt=0,
        le=MAX_LINK_EXPIRY_S,
        description=f"Lifetime of presigned snapshot/clip links, seconds (`{LINK_EXPIRY_ENV}`).",
    )
    idempotency_table: str = Field(
        default=DEFAULT_IDEMPOTENCY_TABLE,
        description=f"DynamoDB table (key `id`) for idempotency on alert_id; empty turns it off "
        f"(`{IDEMPOTENCY_TABLE_ENV}`).",
    )
    idempotency_ttl_s: int = Field(
        default=DEFAULT_IDEMPOTENCY_TTL_S,
        gt=0,
        description=f"How long an alert id is remembered, seconds (`{IDEMPOTENCY_TTL_ENV}`).",
    )
    service_name: str = Field(
        default=DEFAULT_SERVICE_NAME, description=f"Service name in logs and metrics (`{SERVICE_NAME_ENV}`)."
    )
    endpoint_url: str | None = Field(
        default=None,
        description=f"AWS API endpoint override, e.g. a local moto server (`{ENDPOINT_URL_ENV}`).",
    )
    region: str | None = Field(default=None, description="AWS region (`AWS_REGION` or `AWS_DEFAULT_REGION`).")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        try:
            return cls(
                alert_topic_arn=env.get(ALERT_TOPIC_ARN_ENV, ""),
                link_expiry_s=int(env.get(LINK_EXPIRY_ENV) or MAX_LINK_EXPIRY_S),
                idempotency_table=env.get(IDEMPOTENCY_TABLE_ENV, DEFAULT_IDEMPOTENCY_TABLE),
                idempotency_ttl_s=int(env.get(IDEMPOTENCY_TTL_ENV) or DEFAULT_IDEMPOTENCY_TTL_S),
                service_name=env.get(SERVICE_NAME_ENV) or DEFAULT_SERVICE_NAME,
                endpoint_url=env.get(ENDPOINT_URL_ENV) or None,
                region=next((env[name] for name in REGION_ENVS if env.get(name)), None),
            )
        except ValueError as exc:  # int() or pydantic validation
            raise SettingsError(f"invalid alert_lambda environment: {exc}") from exc

    def require_topic(self) -> str:
        if not self.alert_topic_arn:
            raise SettingsError(f"{ALERT_TOPIC_ARN_ENV} is not set: no SNS topic to publish alerts to")
        return self.alert_topic_arn
