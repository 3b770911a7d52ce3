"""`python -m console`: serve the operator console.

    python -m console [--host 127.0.0.1] [--port 8080] [--sites SITES] [--operator NAME]

Locally (`VIGIL_CONSOLE_AUTH=token`, the default) it prints the URL to open, with a login token;
AWS clients follow the environment (`AWS_ENDPOINT_URL` for a moto server). On AWS
(`VIGIL_CONSOLE_AUTH=alb`) it listens on `--host 0.0.0.0` behind the internal ALB, which
authenticates operators with Cognito. With a moto server of its own, seeded with sample alerts or
loaded with what a `make demo` run saved: `python -m local.console --demo | --from-demo DIR`.
"""

from __future__ import annotations

import argparse
import sys

from console import server
from console.settings import ConsoleSettings, SettingsError


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__.splitlines()[0])
    return server.add_server_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    server.configure_logging(args.log_level)
    try:
        settings = ConsoleSettings.from_env(**server.settings_overrides(args))
        listener = server.checked_listener(args.host, args.port)
    except (SettingsError, server.PortInUseError) as exc:
        return server.fail(str(exc))
    except OSError as exc:
        return server.fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    server.print_banner(settings, listener)
    server.serve(settings, listener)
    return 0


if __name__ == "__main__":
    sys.exit(main())
