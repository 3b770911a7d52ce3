"""`python -m console`: serve the operator console on 127.0.0.1.

    python -m console [--host 127.0.0.1] [--port 8080] [--demo | --from-demo DIR] [--sites SITES] [--operator NAME]

Locally (`VIGIL_CONSOLE_AUTH=token`, the default) it prints the URL to open, with a login token;
AWS clients follow the environment (`AWS_ENDPOINT_URL` for a moto server). `--demo` starts its own
moto server, creates the tables, seeds alerts with real snapshots and clips cut from the bundled
sample video (`console.demo`), and serves them. `--from-demo out/demo` starts its own moto server
with what a `make demo` run saved (`worker.local.state`: the run's real alerts, snapshots and clips)
and uses the login token that run printed. On AWS (`VIGIL_CONSOLE_AUTH=alb`) it listens on
`--host 0.0.0.0` behind the internal ALB, which authenticates operators with Cognito.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import uvicorn
from botocore.exceptions import BotoCoreError, ClientError

from console import env as names
from console.access import SiteAccess
from console.app import create_app
from console.settings import ConsoleSettings, SettingsError
from worker.local.stack import LocalStack, PortInUseError, ensure_port_free, free_port
from worker.local.state import (
    CONSOLE_FILE,
    RUN_STATE_DIR,
    STATE_FILE,
    SavedState,
    StateError,
    read_state,
    restore_state,
)

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8080


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on, 0 = any free port (default {DEFAULT_PORT})")
    world = parser.add_mutually_exclusive_group()
    world.add_argument("--demo", action="store_true",
                       help="start a moto server seeded with alerts from the bundled sample video (default off)")
    world.add_argument("--from-demo", metavar="DIR", default=None,
                       help="start a moto server with the alerts a `make demo` run saved in DIR "
                            "(its --out, e.g. out/demo; default off)")
    parser.add_argument("--sites", default=None,
                        help=f"local mode: sites the operator sees, comma-separated or * "
                             f"(default ${names.LOCAL_SITES_ENV} or *)")
    parser.add_argument("--operator", default=None, help="local mode: the operator's name (default local-operator)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default INFO)")
    return parser


def _start_demo_world(stack: LocalStack, settings: ConsoleSettings) -> str:
    """Start the moto server, seed it, point this process at it; returns the newest alert's id."""
    from console.demo import create_console_tables, seed  # PyAV and OpenCV only when seeding

    stack.start()
    os.environ.update(stack.env())
    dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
    create_console_tables(dynamodb, settings.history_table, settings.audit_table)
    alerts = seed(s3, dynamodb, bucket=stack.names.bucket, history_table=settings.history_table,
                  state_table=stack.names.state_table)
    return max(alerts, key=lambda a: a.started_at).alert_id


def _demo_folders(folder: str) -> tuple[Path, dict]:
    """(the saved state folder, the demo's console file or {}) of a demo's out folder (or of its
    state folder itself)."""
    root = Path(folder)
    if (root / RUN_STATE_DIR / STATE_FILE).is_file():
        state, console_file = root / RUN_STATE_DIR, root / CONSOLE_FILE
    else:
        state, console_file = root, root.parent / CONSOLE_FILE
    try:
        saved = json.loads(console_file.read_text()) if console_file.is_file() else {}
    except (OSError, ValueError) as exc:
        raise StateError(f"{console_file} cannot be read: {exc}") from exc
    return state, saved if isinstance(saved, dict) else {}


def _start_saved_world(folder: Path) -> tuple[LocalStack, SavedState]:
    """Start a moto server with the saved state of a demo run; point this process at it."""
    stack = LocalStack(names=read_state(folder).names)
    stack.start()
    try:
        state = restore_state(stack, folder)
    except BaseException:
        stack.stop()
        raise
    os.environ.update(stack.env())
    return stack, state


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides: dict[str, object] = {}
    if args.sites is not None:
        overrides["local_access"] = SiteAccess.parse(args.sites)
    if args.operator:
        overrides["local_operator"] = args.operator
    saved: dict = {}
    try:
        if args.from_demo:
            state_folder, saved = _demo_folders(args.from_demo)
            saved_names = read_state(state_folder).names  # fails early, before the port is taken
            overrides.update(history_table=saved_names.alert_history_table, audit_table=saved_names.audit_table,
                             state_table=saved_names.state_table, archive_bucket=saved_names.bucket)
            if saved.get("token") and not os.environ.get(names.TOKEN_ENV):
                overrides["token"] = saved["token"]  # the URL the demo printed works
        settings = ConsoleSettings.from_env(**overrides)
        port = args.port or free_port(args.host)
        ensure_port_free(port, args.host)
    except (SettingsError, PortInUseError, StateError) as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"console: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    with ExitStack() as cleanup:
        first_alert = None
        if args.demo:
            stack = LocalStack()
            cleanup.callback(stack.stop)
            try:
                first_alert = _start_demo_world(stack, settings)
            except (ClientError, BotoCoreError, OSError, ValueError) as exc:
                print(f"console: could not seed the demo world: {exc}", file=sys.stderr)
                return 2
            print(f"==> moto server {stack.endpoint_url} seeded with alerts from the bundled sample video", flush=True)
        elif args.from_demo:
            try:
                stack, state = _start_saved_world(state_folder)
            except (ClientError, BotoCoreError, OSError, ValueError, StateError) as exc:
                print(f"console: could not load the demo run saved in {state_folder}: {exc}", file=sys.stderr)
                return 2
            cleanup.callback(stack.stop)
            history = state.items.get(stack.names.alert_history_table, 0)
            print(f"==> moto server {stack.endpoint_url} with the demo run saved in {state_folder} at "
                  f"{state.saved_at}: {history} alerts", flush=True)
        app = create_app(settings)
        base = f"http://{args.host}:{port}"
        if settings.auth_mode == "token":
            print(f"==> Vigil console: {base}/alerts?token={settings.token}", flush=True)
            if first_alert:
                print(f"    newest alert:  {base}/alerts/{first_alert}?token={settings.token}", flush=True)
            if saved.get("first_alert_id"):
                print(f"    first alert:   {base}/alerts/{saved['first_alert_id']}?token={settings.token}", flush=True)
        else:
            print(f"==> Vigil console on {base} (operators sign in through the load balancer)", flush=True)
        uvicorn.run(app, host=args.host, port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
