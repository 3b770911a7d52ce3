"""What every way of starting the console shares: its command-line flags, the settings they give, and
serving the app with uvicorn after the port was checked (one clear line, never a traceback).

`python -m console` serves it against AWS (or whatever `AWS_ENDPOINT_URL` names); `python -m
local.console` starts a moto server first (the local deployment's own entry point)."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
from dataclasses import dataclass

import uvicorn

from console import env as names
from console.access import SiteAccess
from console.app import create_app
from console.settings import ConsoleSettings

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8080


class PortInUseError(RuntimeError):
    """The port asked for is taken by another process."""


def add_server_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on, 0 = any free port (default {DEFAULT_PORT})")
    parser.add_argument("--sites", default=None,
                        help=f"local mode: sites the operator sees, comma-separated or * "
                             f"(default ${names.LOCAL_SITES_ENV} or *)")
    parser.add_argument("--operator", default=None, help="local mode: the operator's name (default local-operator)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default INFO)")
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def settings_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings the flags set (the environment gives the rest)."""
    overrides: dict[str, object] = {}
    if args.sites is not None:
        overrides["local_access"] = SiteAccess.parse(args.sites)
    if args.operator:
        overrides["local_operator"] = args.operator
    return overrides


@dataclass
class Listener:
    host: str
    port: int
    sock: socket.socket | None = None
    """Bound and listening before the banner is printed: a browser (or a test) that opens the printed
    URL at once waits in the backlog instead of being refused while uvicorn starts."""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Raise `PortInUseError` with a readable message when `port` cannot be bound."""
    listening_socket(host, port).close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` and listening (`port` 0: a free one); `PortInUseError` with a
    readable message when the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use; stop what holds it or pick another port"
            ) from exc
        raise
    sock.listen(128)
    return sock


def checked_listener(host: str, port: int) -> Listener:
    """The address to serve on, bound and listening before anything else starts (`port` 0: a free one)."""
    sock = listening_socket(host, port)
    return Listener(host, int(sock.getsockname()[1]), sock)


def print_banner(settings: ConsoleSettings, listener: Listener, links: dict[str, str] | None = None) -> None:
    """How to open the console: in token mode the URL with its login token, plus named alert pages."""
    base = listener.base_url
    if settings.auth_mode == "token" and settings.operators_file:
        print(f"==> Vigil console: {base}/alerts?token=<your token> (operators of {settings.operators_file})",
              flush=True)
    elif settings.auth_mode == "token":
        print(f"==> Vigil console: {base}/alerts?token={settings.token}", flush=True)
        for label, alert_id in (links or {}).items():
            print(f"    {label + ':':<14} {base}/alerts/{alert_id}?token={settings.token}", flush=True)
    else:
        print(f"==> Vigil console on {base} (operators sign in through the load balancer)", flush=True)


def serve(settings: ConsoleSettings, listener: Listener) -> None:
    config = uvicorn.Config(create_app(settings), host=listener.host, port=listener.port, log_level="warning",
                            access_log=False)
    uvicorn.Server(config).run(sockets=[listener.sock] if listener.sock is not None else None)


def fail(message: str) -> int:
    print(f"console: {message}", file=sys.stderr)
    return 2

