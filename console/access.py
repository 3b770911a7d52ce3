"""Which sites an operator may see, and what they may change. An operator limited to one site never
sees another site's alerts or cameras: every query is built from `SiteAccess`, and every item read is
checked against it.

Roles: every operator reviews alerts of their sites; a `supervisor` also edits the scenes (zones,
privacy masks, arming schedule) of their sites' cameras. The role comes from the operators file
(`role`), from a Cognito group named in `VIGIL_CONSOLE_SUPERVISOR_GROUPS` (ALB mode), and is
`supervisor` for the one start-up token without an operators file (who started the console owns it)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

ALL_SITES = "*"

Role = Literal["operator", "supervisor"]
SCENE_EDITORS: frozenset[Role] = frozenset({"supervisor"})
"""Roles that may change a camera's scene."""


class SiteAccess(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all_sites: bool = Field(default=False, description="Sees every site.")
    sites: frozenset[str] = Field(default_factory=frozenset, description="The sites seen when not all.")

    @classmethod
    def everything(cls) -> SiteAccess:
        return cls(all_sites=True)

    @classmethod
    def parse(cls, value: str | Iterable[str] | None) -> SiteAccess:
        """`"*"` -> every site; `"hq,port-2"` or `["hq", "port-2"]` -> those; empty -> none."""
        if value is None:
            return cls()
        parts = value.split(",") if isinstance(value, str) else list(value)
        sites = {part.strip() for part in parts if part and part.strip()}
        if ALL_SITES in sites:
            return cls.everything()
        return cls(sites=frozenset(sites))

    def union(self, other: SiteAccess) -> SiteAccess:
        if self.all_sites or other.all_sites:
            return SiteAccess.everything()
        return SiteAccess(sites=self.sites | other.sites)

    @property
    def empty(self) -> bool:
        return not self.all_sites and not self.sites

    def allows(self, site: str | None) -> bool:
        return self.all_sites or (site is not None and site in self.sites)

    def describe(self) -> str:
        return "all sites" if self.all_sites else ", ".join(sorted(self.sites)) or "no site"


def access_from_claims(
    claims: Mapping[str, object], sites_claim: str, group_sites: Mapping[str, list[str]]
) -> SiteAccess:
    """The sites named by the `sites_claim` claim plus those of the operator's groups."""
    access = SiteAccess.parse(_strings(claims.get(sites_claim)))
    for group in _strings(claims.get("cognito:groups")):
        access = access.union(SiteAccess.parse(group_sites.get(group, [])))
    return access


def role_from_claims(claims: Mapping[str, object], supervisor_groups: Iterable[str]) -> Role:
    """`supervisor` when one of the operator's `cognito:groups` is a supervisor group."""
    return "supervisor" if set(_strings(claims.get("cognito:groups"))) & set(supervisor_groups) else "operator"


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(part) for part in value]
    return []
