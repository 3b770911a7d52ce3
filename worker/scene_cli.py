"""`python -m worker.scene_cli`: a camera's live scene for operators without the console.

    python -m worker.scene_cli validate --file scene.json                 # offline: errors name the field
    python -m worker.scene_cli show --camera gate-north                   # the stored scene, its revision
    python -m worker.scene_cli set --camera gate-north --file scene.json [--revision N] [--by NAME]

`set` validates first (nothing is written when the scene is not valid) and writes conditionally on
the revision it read, or on `--revision N` (the one you showed and edited): when someone saved in
between, it fails with exit 3 and writes nothing. The worker applies the new scene within one
heartbeat (`worker.live_scene`). The table is `--table`, else `$VIGIL_STATE_TABLE`, else
`vigil-state`; AWS credentials and `AWS_ENDPOINT_URL` (a moto server) come from the environment.

Exit codes: 0 done, 1 DynamoDB failed, 2 usage or invalid scene, 3 conflict (changed meanwhile)."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from contracts.camera_scene import CameraScene
from contracts.camera_scene_item import (
    SceneConflict,
    SceneItemError,
    item_revision,
    parse_scene,
    pretty,
    validation_errors,
)
from worker.config import CAMERA_ID_PATTERN
from worker.env import ENV_STATE_TABLE
from worker.live_scene import SceneTable

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFLICT = 0, 1, 2, 3
DEFAULT_TABLE = "vigil-state"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker.scene_cli",
        description="Show, validate or set a camera's live scene (zones, privacy masks, arming schedule, "
        "tamper) in the worker's state table.",
        epilog="Exit codes: 0 done, 1 DynamoDB failed, 2 usage or invalid scene, 3 conflict (the scene "
        "changed since the revision you read: nothing written).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    table_help = f"state table (default ${ENV_STATE_TABLE}, else {DEFAULT_TABLE})"
    validate = sub.add_parser("validate", help="check a scene file offline; errors name the field")
    validate.add_argument("--file", type=Path, required=True, help="scene JSON file, - for stdin")
    show = sub.add_parser("show", help="print the camera's stored scene and its revision as JSON")
    show.add_argument("--camera", required=True, help="camera id")
    show.add_argument("--table", help=table_help)
    put = sub.add_parser("set", help="validate a scene file and write it, conditional on the revision")
    put.add_argument("--camera", required=True, help="camera id")
    put.add_argument("--file", type=Path, required=True, help="scene JSON file, - for stdin")
    put.add_argument(
        "--revision",
        type=int,
        help="the revision your edit started from (default: the one stored now; 0: none)",
    )
    put.add_argument("--by", help="who writes it, shown in the console (default cli:<login name>)")
    put.add_argument("--table", help=table_help)
    return parser


def _read_text(path: Path) -> str:
    return sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")


def _scene_or_errors(path: Path) -> tuple[CameraScene | None, list[str]]:
    try:
        text = _read_text(path)
    except OSError as exc:
        return None, [f"cannot read {path}: {exc.strerror or exc}"]
    try:
        return parse_scene(text), []
    except ValidationError as exc:
        return None, validation_errors(exc)


def _errors(path: Path, errors: list[str]) -> int:
    print(f"invalid scene {path} ({len(errors)} error(s)):", file=sys.stderr)
    for line in errors:
        print(f"  {line}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if getattr(args, "camera", None) is not None and re.fullmatch(CAMERA_ID_PATTERN, args.camera) is None:
        print(f"error: invalid camera id {args.camera!r}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "validate":
        scene, errors = _scene_or_errors(args.file)
        if errors:
            return _errors(args.file, errors)
        print(pretty(scene))  # type: ignore[arg-type]
        return EXIT_OK
    try:
        table = SceneTable(args.table or os.environ.get(ENV_STATE_TABLE) or DEFAULT_TABLE)
        if args.command == "show":
            return _show(table, args.camera)
        return _set(table, args)
    except (ClientError, BotoCoreError) as exc:
        print(f"error: DynamoDB: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _show(table: SceneTable, camera_id: str) -> int:
    try:
        stored = table.read(camera_id, consistent=True)
    except SceneItemError as exc:
        print(
            f"the stored scene of {camera_id} (revision {exc.revision}) is not valid; the worker keeps "
            "its last good one:",
            file=sys.stderr,
        )
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return EXIT_USAGE
    if stored is None:
        print(
            json.dumps(
                {
                    "camera_id": camera_id,
                    "revision": 0,
                    "scene": None,
                    "note": "no scene item: the worker runs its configured scene",
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(
        json.dumps(
            {
                "camera_id": camera_id,
                "revision": stored.revision,
                "updated_at": stored.updated_at,
                "updated_by": stored.updated_by,
                "scene": json.loads(pretty(stored.scene)),
            },
            indent=2,
        )
    )
    return EXIT_OK


def _set(table: SceneTable, args: argparse.Namespace) -> int:
    scene, errors = _scene_or_errors(args.file)
    if errors or scene is None:
        return _errors(args.file, errors)
    expected = args.revision
    if expected is None:
        raw = table.raw(args.camera, consistent=True)
        expected = item_revision(raw) if raw is not None else 0
    by = args.by or f"cli:{_login()}"
    try:
        revision = table.write(args.camera, scene, expected, by)
    except SceneConflict as exc:
        print(f"conflict: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    print(json.dumps({"camera_id": args.camera, "revision": revision, "updated_by": by}))
    return EXIT_OK


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
