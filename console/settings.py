"""Console settings, from the environment (`env`) and the command line."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
from collections.abc import Mapping
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from console import env as names
from console.access import SiteAccess

logger = logging.getLogger(__name__)

MAX_LINK_EXPIRY_S = 7 * 24 * 3600


# Settings read as they are from one environment variable each.
SIMPLE_ENVIRONMENT: dict[str, str] = {
    "history_table": names.HISTORY_TABLE_ENV,
    "audit_table": names.AUDIT_TABLE_ENV,
    "state_table": names.STATE_TABLE_ENV,
    "archive_bucket": names.ARCHIVE_BUCKET_ENV,
    "auth_mode": names.AUTH_MODE_ENV,
    "token": names.TOKEN_ENV,
    "secret": names.SECRET_ENV,
    "alb_arn": names.ALB_ARN_ENV,
    "sites_claim": names.SITES_CLAIM_ENV,
    "link_expiry_s": names.LINK_EXPIRY_ENV,
    "operators_file": names.OPERATORS_FILE_ENV,
}
# Every setting's variable (the reference, docs/gen_config.py): the simple ones, and those parsed
# (comma-separated lists, JSON objects) or taken from the first of several (the region).
FIELD_ENVIRONMENT: dict[str, str] = {
    **SIMPLE_ENVIRONMENT,
    "region": " or ".join(names.REGION_ENVS),
    "local_access": names.LOCAL_SITES_ENV,
    "trusted_proxies": names.TRUSTED_PROXIES_ENV,
    "site_timezones": names.SITE_TIMEZONES_ENV,
    "group_sites": names.GROUP_SITES_ENV,
    "supervisor_groups": names.SUPERVISOR_GROUPS_ENV,
}


class SettingsError(ValueError):
    """An environment variable holds a value the console cannot use."""


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    history_table: str = Field(default=names.DEFAULT_HISTORY_TABLE, description="Alert history table.")
    audit_table: str = Field(default=names.DEFAULT_AUDIT_TABLE, description="Review audit table.")
    state_table: str = Field(default=names.DEFAULT_STATE_TABLE, description="Worker state table.")
    archive_bucket: str = Field(
        default=names.DEFAULT_ARCHIVE_BUCKET, description="Bucket the feedback labels are written to."
    )
    auth_mode: Literal["token", "alb"] = Field(default="token", description="How operators sign in.")
    token: str = Field(
        default_factory=lambda: secrets.token_urlsafe(24),
        min_length=16,
        description="Local mode: the login token (random per start unless set).",
    )
    secret: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        min_length=16,
        description="Signs session cookies and CSRF tokens (random per start unless set).",
    )
    local_access: SiteAccess = Field(
        default_factory=SiteAccess.everything, description="Local mode: the sites the operator sees."
    )
    local_operator: str = Field(
        default="local-operator", min_length=1, max_length=128, description="Local mode: the operator's name."
    )
    alb_arn: str = Field(default="", description="ALB mode: expected `signer` of the OIDC token.")
    region: str = Field(default="us-east-1", description="AWS region (ALB public keys, presigning).")
    sites_claim: str = Field(default=names.DEFAULT_SITES_CLAIM, description="Claim listing the sites.")
    group_sites: dict[str, list[str]] = Field(
        default_factory=dict, description="Group (`cognito:groups`) -> sites its members see."
    )
    supervisor_groups: tuple[str, ...] = Field(
        default=(), description="Groups (`cognito:groups`) whose members are supervisors: they edit camera scenes."
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(), description="Addresses/CIDRs of proxies whose X-Forwarded-Host/-Proto are believed."
    )
    site_timezones: dict[str, str] = Field(default_factory=dict, description="Site -> IANA time zone.")
    operators_file: str = Field(default="", description="Token mode: named operators' file (hashed tokens).")
    link_expiry_s: int = Field(default=120, gt=0, le=MAX_LINK_EXPIRY_S,
                               description="Life of the presigned S3 link a media request is sent to.")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for part in value:
            ipaddress.ip_network(part, strict=False)  # ValueError names the bad one
        return value

    @field_validator("site_timezones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        for site, zone in value.items():
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"site {site}: unknown time zone {zone!r}") from exc
        return value

    @field_validator("operators_file")
    @classmethod
    def _operators(cls, value: str) -> str:
        if value:
            from console.operators import OperatorRegistry

            OperatorRegistry.load(value)  # OperatorsFileError (a ValueError) says what is wrong
        return value

    def trusts_proxy(self, address: str | None) -> bool:
        if not address or not self.trusted_proxies:
            return False
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(peer in ipaddress.ip_network(net, strict=False) for net in self.trusted_proxies)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> ConsoleSettings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field, variable in SIMPLE_ENVIRONMENT.items():
            if env.get(variable):
                values[field] = env[variable]
        region = next((env[name] for name in names.REGION_ENVS if env.get(name)), None)
        if region:
            values["region"] = region
        try:
            if env.get(names.LOCAL_SITES_ENV):
                values["local_access"] = SiteAccess.parse(env[names.LOCAL_SITES_ENV])
            if env.get(names.TRUSTED_PROXIES_ENV):
                values["trusted_proxies"] = tuple(
                    part.strip() for part in env[names.TRUSTED_PROXIES_ENV].split(",") if part.strip()
                )
            if env.get(names.SUPERVISOR_GROUPS_ENV):
                values["supervisor_groups"] = tuple(
                    part.strip() for part in env[names.SUPERVISOR_GROUPS_ENV].split(",") if part.strip()
                )
            if env.get(names.SITE_TIMEZONES_ENV):
                values["site_timezones"] = json.loads(env[names.SITE_TIMEZONES_ENV])
            if env.get(names.GROUP_SITES_ENV):
                values["group_sites"] = json.loads(env[names.GROUP_SITES_ENV])
            values.update(overrides)
            settings = cls.model_validate(values)
        except (ValidationError, ValueError) as exc:
            raise SettingsError(f"invalid console settings: {_one_line(exc)}") from exc
        if settings.auth_mode == "alb" and not settings.alb_arn:
            raise SettingsError(f"{names.ALB_ARN_ENV} must name the load balancer when {names.AUTH_MODE_ENV}=alb")
        return settings


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)
