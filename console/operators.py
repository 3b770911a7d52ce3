"""Named operators in token mode: one login token each, stored hashed, from a file.

The file (`VIGIL_CONSOLE_OPERATORS_FILE`, JSON, mode 0600) lists each operator's name, the SHA-256
of their token and their sites:

    {"operators": [{"name": "alice", "token_sha256": "9f86d0...", "sites": "*", "role": "supervisor"},
                   {"name": "bob", "token_sha256": "60303a...", "sites": "demo-hq"}]}

`role` is `operator` (the default: reviews alerts) or `supervisor` (also edits camera scenes).

Tokens are 32 random bytes (`secrets.token_urlsafe`), so a plain SHA-256 is enough to keep them from
being read off the file (no password to brute-force). `python -m console.operators add NAME [--sites S]`
makes a token, prints it once and writes its hash (`--role supervisor` for one who edits scenes); without the file the console keeps one start-up
token for one operator (`--operator`, `local-operator` by default).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.access import Role, SiteAccess

logger = logging.getLogger(__name__)


class OperatorsFileError(ValueError):
    """The operators file is missing, unreadable or not in the expected shape."""


class OperatorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\s<>\"'&]+$", description="Shown and audited.")
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of the operator's token.")
    sites: str = Field(default="*", description="Comma-separated sites, or * for all.")
    role: Role = Field(default="operator", description="operator, or supervisor (also edits camera scenes).")


class OperatorsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operators: list[OperatorEntry] = Field(default_factory=list)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NamedOperator:
    name: str
    access: SiteAccess
    role: Role = "operator"


class OperatorRegistry:
    """Who a token belongs to, compared in constant time against every hash."""

    def __init__(self, entries: list[OperatorEntry]) -> None:
        names = [entry.name for entry in entries]
        if len(set(names)) != len(names):
            raise OperatorsFileError("operator names must be unique")
        self.entries = entries
        self.by_name = {entry.name: NamedOperator(entry.name, SiteAccess.parse(entry.sites), entry.role) for entry in entries}

    @classmethod
    def load(cls, path: str | Path) -> OperatorRegistry:
        try:
            parsed = OperatorsFile.model_validate_json(Path(path).read_text())
        except OSError as exc:
            raise OperatorsFileError(f"cannot read operators file {path}: {exc.strerror or exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise OperatorsFileError(f"operators file {path}: {where}: {first['msg']}") from exc
        return cls(parsed.operators)

    def match(self, token: str) -> NamedOperator | None:
        digest = token_hash(token)
        found = None
        for entry in self.entries:  # no early exit: the time does not say which entry matched
            if hmac.compare_digest(digest, entry.token_sha256):
                found = self.by_name[entry.name]
        return found

    def get(self, name: str) -> NamedOperator | None:
        return self.by_name.get(name)


def add_operator(path: Path, name: str, sites: str, role: Role = "operator") -> str:
    """Add (or re-key) an operator; returns their new token (shown once, stored hashed)."""
    entries = OperatorRegistry.load(path).entries if path.exists() else []
    token = secrets.token_urlsafe(32)
    entry = OperatorEntry(name=name, token_sha256=token_hash(token), sites=sites, role=role)
    kept = [e for e in entries if e.name != name] + [entry]
    body = OperatorsFile(operators=kept).model_dump_json(indent=2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(body + "\n")
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.operators", description="Manage named operators.")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add an operator (or give them a new token); prints the token once")
    add.add_argument("name")
    add.add_argument("--sites", default="*", help="comma-separated sites, or * for all (default *)")
    add.add_argument("--role", choices=["operator", "supervisor"], default="operator",
                     help="operator reviews alerts; supervisor also edits camera scenes (default operator)")
    add.add_argument("--file", type=Path, default=Path(os.environ.get("VIGIL_CONSOLE_OPERATORS_FILE", "operators.json")),
                     help="operators file (default $VIGIL_CONSOLE_OPERATORS_FILE or operators.json)")
    args = parser.parse_args(argv)
    try:
        token = add_operator(args.file, args.name, args.sites, args.role)
    except (OperatorsFileError, ValidationError) as exc:
        print(f"console.operators: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"operator": args.name, "role": args.role, "token": token, "file": str(args.file)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
