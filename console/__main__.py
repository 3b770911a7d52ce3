"""`python -m console`: serve the operator console on 127.0.0.1.

    python -m console [--host 127.0.0.1] [--port 8080] [--demo] [--sites SITES] [--operator NAME]

Locally (`VIGIL_CONSOLE_AUTH=token`, the default) it prints the URL to open, with a login token;
AWS clients follow the environment (`AWS_ENDPOINT_URL` for a moto server). `--demo` starts its own
moto server, creates the tables, seeds alerts with real snapshots and clips cut from the bundled
sample video (`console.demo`), and serves them. On AWS (`VIGIL_CONSOLE_AUTH=alb`) it listens on
`--host 0.0.0.0` behind the internal ALB, which authenticates operators with Cognito.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import ExitStack

import uvicorn
from botocore.exceptions import BotoCoreError, ClientError

from console import env as names
from console.access import SiteAccess
from console.app import create_app
from console.settings import ConsoleSettings, SettingsError
from worker.local.stack import LocalStack, PortInUseError, ensure_port_free, free_port

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8080


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on, 0 = any free port (default {DEFAULT_PORT})")
    parser.add_argument("--demo", action="store_true",
                        help="start a moto server seeded with alerts from the bundled sample video (default off)")
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


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides: dict[str, object] = {}
    if args.sites is not None:
        overrides["local_access"] = SiteAccess.parse(args.sites)
    if args.operator:
        overrides["local_operator"] = args.operator
    try:
        settings = ConsoleSettings.from_env(**overrides)
        port = args.port or free_port(args.host)
        ensure_port_free(port, args.host)
    except (SettingsError, PortInUseError) as exc:
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
        app = create_app(settings)
        base = f"http://{args.host}:{port}"
        if settings.auth_mode == "token":
            print(f"==> Vigil console: {base}/alerts?token={settings.token}", flush=True)
            if first_alert:
                print(f"    newest alert:  {base}/alerts/{first_alert}?token={settings.token}", flush=True)
        else:
            print(f"==> Vigil console on {base} (operators sign in through the load balancer)", flush=True)
        uvicorn.run(app, host=args.host, port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
