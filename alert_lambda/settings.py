"""Environment variables the alert Lambda (and its local event source mapping) read: names and defaults.

All names live here and nowhere else. `Settings.from_env()` reads them; it is cheap and is called per
invocation, so a process whose environment changes (a test pointing at a new moto server) sees it.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

logger = logging.getLogger(__name__)

ALERT_TOPIC_ARN_ENV = "VIGIL_ALERT_TOPIC_ARN"
LINK_EXPIRY_ENV = "VIGIL_LINK_EXPIRY_S"
IDEMPOTENCY_TABLE_ENV = "VIGIL_IDEMPOTENCY_TABLE"
IDEMPOTENCY_TTL_ENV = "VIGIL_IDEMPOTENCY_TTL_S"
SERVICE_NAME_ENV = "POWERTOOLS_SERVICE_NAME"
SITE_TIMEZONES_ENV = "VIGIL_SITE_TIMEZONES"
DEAD_LETTER_QUEUE_URL_ENV = "VIGIL_DEAD_LETTER_QUEUE_URL"
CONSOLE_URL_ENV = "VIGIL_CONSOLE_URL"
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
    site_timezones: dict[str, str] = Field(
        default_factory=dict,
        description=f'IANA time zone per site, e.g. {{"hq": "Europe/Paris"}}, for the time in emails '
        f"and texts; a site not listed gets UTC (`{SITE_TIMEZONES_ENV}`, JSON).",
    )
    dead_letter_queue_url: str = Field(
        default="",
        description=f"SQS queue that receives each poison record with the reason it was refused, once; "
        f"empty: the reason is only logged (`{DEAD_LETTER_QUEUE_URL_ENV}`).",
    )
    console_url: str = Field(
        default="",
        description=f"Base URL of the operator console, e.g. https://vigil.example.org: each email links "
        f"to the alert's page there, which lasts (the presigned media links do not); empty: no link "
        f"(`{CONSOLE_URL_ENV}`).",
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
                site_timezones=_json_map(env.get(SITE_TIMEZONES_ENV) or "{}"),
                dead_letter_queue_url=env.get(DEAD_LETTER_QUEUE_URL_ENV, ""),
                console_url=env.get(CONSOLE_URL_ENV, ""),
                service_name=env.get(SERVICE_NAME_ENV) or DEFAULT_SERVICE_NAME,
                endpoint_url=env.get(ENDPOINT_URL_ENV) or None,
                region=next((env[name] for name in REGION_ENVS if env.get(name)), None),
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SettingsError(f"invalid alert_lambda environment: {problems}") from None
        except ValueError as exc:  # int() or a JSON map
            raise SettingsError(f"invalid alert_lambda environment: {exc}") from None

    @field_validator("site_timezones")
    @classmethod
    def _known_zones(cls, value: dict[str, str]) -> dict[str, str]:
        for site, zone in value.items():
            _zone(zone, site)
        return value

    def zone_for(self, site: str) -> tzinfo:
        """The site's time zone (UTC when the site is not configured)."""
        zone = self.site_timezones.get(site)
        return _zone(zone, site) if zone else UTC

    def require_topic(self) -> str:
        if not self.alert_topic_arn:
            raise SettingsError(f"{ALERT_TOPIC_ARN_ENV} is not set: no SNS topic to publish alerts to")
        return self.alert_topic_arn


def _zone(name: str, site: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"site {site!r}: unknown time zone {name!r} (use an IANA name such as 'Europe/Paris')"
        ) from None


def _json_map(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{SITE_TIMEZONES_ENV} is not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"{SITE_TIMEZONES_ENV} must be a JSON object of site -> time zone name")
    return value
