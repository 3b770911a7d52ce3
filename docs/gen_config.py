"""The configuration reference (`configuration.md`), generated from the pydantic models themselves.

Every field's name, type, default, bounds and description come from the model (`Field(...,
description=...)`), so they are written once, in the code. Two ways to run it:

- as an MkDocs hook (`hooks:` in `mkdocs.yml`): `mkdocs build` adds the page to the site, nothing is
  written into `docs/`;
- as a script: `python docs/gen_config.py [--out FILE]` prints the page (or writes it), to read it
  without building the site.

`tests/unit/layout/test_config_reference.py` fails when a field of these models has no description.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

PAGE = "configuration.md"
REPO = Path(__file__).resolve().parents[1]


def _models() -> list[tuple[str, type[BaseModel], str, dict[tuple[str, ...], str]]]:
    """(title, model, how it is set, {field path: environment variable}) for each documented root."""
    if str(REPO) not in sys.path:  # the code beside these docs, not another checkout's installed copy
        sys.path.insert(0, str(REPO))
    from console.settings import FIELD_ENVIRONMENT, ConsoleSettings
    from worker import env as worker_names
    from worker.config import ENVIRONMENT_DEFAULTS, WorkerConfig

    worker_env = dict(ENVIRONMENT_DEFAULTS)
    worker_env.update({
        ("archive_bucket",): worker_names.ENV_ARCHIVE_BUCKET,
        ("alert_stream",): worker_names.ENV_ALERT_STREAM,
        ("kvs", "state_table"): worker_names.ENV_STATE_TABLE,
    })
    return [
        (
            "Worker (`python -m worker`)",
            WorkerConfig,
            ("A JSON file (`python -m worker --config camera.json`; check one with `--validate-config`), "
            "command-line flags over it (`--help`), and for the fields with a variable the environment "
            "under both (the Fargate task definition sets those). Unknown keys are refused."),
            worker_env,
        ),
        (
            "Console (`python -m console`)",
            ConsoleSettings,
            ("Environment variables (Terraform sets them on AWS); a few flags of `python -m console` "
            "(`--help`) win over them. Unknown keys are refused."),
            {(name,): variable for name, variable in FIELD_ENVIRONMENT.items()},
        ),
    ]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Every field of `model` and of the models nested in it, depth first, with its dotted path."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        yield path, info
        nested = _nested_model(info.annotation)
        if nested is not None:
            yield from fields(nested, path)


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(type_name(arg) for arg in typing.get_args(annotation) if arg is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return "object" if issubclass(annotation, BaseModel) else annotation.__name__
    return str(annotation)


def default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        factory = info.default_factory
        if _nested_model(factory) is not None:
            return "(its fields' defaults)"
        if getattr(factory, "__name__", "") == "<lambda>":
            return "set at start (see the description)"
        value = factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return f"`{value.model_dump_json()}`"
        return f"`{json.dumps(sorted(value) if isinstance(value, set | frozenset) else value)}`"
    if info.default is PydanticUndefined:
        return "**required**"
    value = info.default
    if isinstance(value, Path):
        value = str(value)
    return f"`{json.dumps(value)}`"


def bounds_text(info: FieldInfo) -> str:
    parts = []
    symbols = {annotated_types.Gt: ("gt", ">"), annotated_types.Ge: ("ge", "≥"),
               annotated_types.Lt: ("lt", "<"), annotated_types.Le: ("le", "≤")}
    for item in info.metadata:
        for kind, (attribute, symbol) in symbols.items():
            if isinstance(item, kind):
                parts.append(f"{symbol} {getattr(item, attribute)}")
        if isinstance(item, annotated_types.MinLen):
            parts.append(f"length ≥ {item.min_length}")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"length ≤ {item.max_length}")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        ("Generated from the pydantic models by `docs/gen_config.py` (run by `make docs`): each field's "
        "type, default, bounds and description are the code's own. A nested field is written with dots "
        "here (`policy.min_frames`) and as a nested object in JSON (`{\"policy\": {\"min_frames\": 3}}`)."),
        "",
        ("The environment variables that are not model fields (resource names, the inference server's "
        "settings, the alert Lambda's) are listed in [Configuration: environment](environment.md)."),
        "",
    ]
    for title, model, how, environment in _models():
        out += [f"## {title}", "", how, "", "| field | type | default | bounds | environment | description |",
                "| --- | --- | --- | --- | --- | --- |"]
        for path, info in fields(model):
            variable = environment.get(path)
            out.append(
                f"| `{'.'.join(path)}` | {_cell(type_name(info.annotation))} | {_cell(default_text(info))} "
                f"| {_cell(bounds_text(info))} | {f'`{variable}`' if variable else ''} "
                f"| {_cell(info.description or '')} |"
            )
        out.append("")
    return "\n".join(out)


# --- MkDocs hook -----------------------------------------------------------------------------------------


def on_files(files, config):  # MkDocs calls it with the site's files and config
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/gen_config.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the page to this file (default: print it)")
    args = parser.parse_args(argv)
    page = render()
    if args.out is None:
        sys.stdout.write(page)
    else:
        args.out.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
