"""Parse the Terraform under infra/ with python-hcl2 into plain dicts the infra tests can query.

python-hcl2 (8.x) returns every block type as a list of one-key dicts (`resource: [{type: {name: body}}]`)
and keeps expressions as strings wrapped in `${...}`. `load_config(folder)` merges all `*.tf` files of a
folder into one `TerraformConfig` with block maps keyed by name; string literals come back unquoted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
MODULES_DIR = INFRA_DIR / "modules"

_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False, preserve_heredocs=False
)
_MODULE_META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}


def parse_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


@dataclass
class TerraformConfig:
    """All blocks of one Terraform folder (root or module)."""

    folder: Path
    resources: dict[str, dict[str, dict]] = field(default_factory=dict)  # type -> name -> body
    data: dict[str, dict[str, dict]] = field(default_factory=dict)  # type -> name -> body
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict] = field(default_factory=list)
    providers: dict[str, dict] = field(default_factory=dict)

    def resource(self, type_: str, name: str) -> dict:
        return self.resources[type_][name]

    def policy_document(self, name: str) -> dict:
        return self.data["aws_iam_policy_document"][name]

    def required_providers(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for block in self.terraform:
            for providers in block.get("required_providers", []):
                found.update(providers)
        return found

    def required_variables(self) -> set[str]:
        return {name for name, body in self.variables.items() if "default" not in body}


def _merge_named(target: dict, entries: list[dict], depth: int) -> None:
    for entry in entries:
        for key, body in entry.items():
            if depth == 2:
                for name, inner in body.items():
                    target.setdefault(key, {})[name] = inner
            else:
                target[key] = body


@cache
def load_config(folder: Path) -> TerraformConfig:
    config = TerraformConfig(folder=folder)
    for path in sorted(folder.glob("*.tf")):
        parsed = parse_file(path)
        _merge_named(config.resources, parsed.get("resource", []), depth=2)
        _merge_named(config.data, parsed.get("data", []), depth=2)
        _merge_named(config.variables, parsed.get("variable", []), depth=1)
        _merge_named(config.outputs, parsed.get("output", []), depth=1)
        _merge_named(config.modules, parsed.get("module", []), depth=1)
        _merge_named(config.providers, parsed.get("provider", []), depth=1)
        for block in parsed.get("locals", []):
            config.locals.update(block)
        config.terraform.extend(parsed.get("terraform", []))
    return config


def module_names() -> list[str]:
    return sorted(path.name for path in MODULES_DIR.iterdir() if path.is_dir())


def root() -> TerraformConfig:
    return load_config(INFRA_DIR)


def module(name: str) -> TerraformConfig:
    return load_config(MODULES_DIR / name)


def all_configs() -> dict[str, TerraformConfig]:
    return {"root": root(), **{name: module(name) for name in module_names()}}


def statements(document: dict) -> list[dict]:
    """Every statement of an aws_iam_policy_document, static ones and the content of dynamic ones."""
    found = list(document.get("statement", []))
    for dynamic in document.get("dynamic", []):
        found.extend(dynamic.get("statement", {}).get("content", []))
    return found


def statements_by_sid(document: dict) -> dict[str, dict]:
    """Statements keyed by sid; a dynamic statement whose sid is `statement.value` is keyed by the one
    literal name in its for_each (`var.x ? ["Name"] : []`) and marked with `"dynamic": True`."""
    by_sid: dict[str, dict] = {}
    for statement in document.get("statement", []):
        assert "sid" in statement, f"statement without sid: {statement}"
        by_sid[statement["sid"]] = statement
    for dynamic in document.get("dynamic", []):
        body = dynamic["statement"]
        names = re.findall(r'\["([A-Za-z0-9]+)"\]', body["for_each"])
        assert len(names) == 1, f"dynamic statement needs one literal sid in its for_each: {body['for_each']}"
        for content in body["content"]:
            assert content.get("sid") == "${statement.value}", (
                f"dynamic statement sid must be statement.value: {content}"
            )
            by_sid[names[0]] = {**content, "sid": names[0], "dynamic": True}
    return by_sid


def module_arguments(block: dict) -> set[str]:
    return set(block) - _MODULE_META_ARGUMENTS


def block_list(body: dict, key: str) -> list[dict]:
    """A nested block (list of dicts) or [] when absent."""
    value = body.get(key, [])
    return value if isinstance(value, list) else [value]


def hcl_string(value: str) -> str:
    """An HCL string literal's text as Terraform sees it (python-hcl2 keeps `\\\\` escapes verbatim)."""
    return value.encode("utf-8").decode("unicode_escape")
