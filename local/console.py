"""`python -m local.console`: the operator console over a moto server of its own (`make console`).

    python -m local.console (--demo | --from-demo DIR) [--host 127.0.0.1] [--port 8080] [--sites SITES] [--operator NAME]

`--demo` starts a moto server, creates the tables, seeds alerts with real snapshots and clips cut
from the bundled sample video (`local.console_seed`), and serves them. `--from-demo out/demo` starts
a moto server with what a `make demo` run saved (`local.state`: the run's real alerts, snapshots and
clips) and uses the login token that run printed; when the console stops (Ctrl+C or SIGTERM) it saves
that moto server back to the same folder, so the reviews made meanwhile (feedback labels, manifest
`events`, history and audit rows) are kept for the next `--from-demo` and for `make train DATA=out/demo`.
The console itself is `console` (`python -m
console` against AWS or `AWS_ENDPOINT_URL`); this module only builds its world.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from console import env as names
from console import server
from console.settings import ConsoleSettings, SettingsError
from local.stack import LocalStack
from local.state import (
    CONSOLE_FILE,
    RUN_STATE_DIR,
    STATE_FILE,
    SavedState,
    StateError,
    read_state,
    restore_state,
    save_state,
)

logger = logging.getLogger(__name__)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.console", description=__doc__.splitlines()[0])
    world = parser.add_mutually_exclusive_group(required=True)
    world.add_argument("--demo", action="store_true",
                       help="start a moto server seeded with alerts from the bundled sample video")
    world.add_argument("--from-demo", metavar="DIR", default=None,
                       help="start a moto server with the alerts a `make demo` run saved in DIR "
                            "(its --out, e.g. out/demo)")
    return server.add_server_arguments(parser)


def _start_demo_world(stack: LocalStack, settings: ConsoleSettings) -> str:
    """Start the moto server, seed it, point this process at it; returns the newest alert's id."""
    from local.console_seed import create_console_tables, seed  # PyAV and OpenCV only when seeding

    stack.start()
    os.environ.update(stack.env())
    dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
    create_console_tables(dynamodb, settings.history_table, settings.audit_table)
    alerts = seed(s3, dynamodb, bucket=stack.names.bucket, history_table=settings.history_table,
                  state_table=stack.names.state_table)
    return max(alerts, key=lambda a: a.started_at).alert_id


def _keep_seeded_cameras_alive(stack: LocalStack, cleanup: ExitStack) -> None:
    """The seeded cameras' heartbeat (a worker would write it), until the console stops."""
    from local.console_seed import keep_alive

    stop = threading.Event()
    beat = threading.Thread(target=keep_alive, args=(stack.client("dynamodb"), stack.names.state_table, stop),
                            name="seed-heartbeat", daemon=True)
    beat.start()
    cleanup.callback(beat.join, 5)
    cleanup.callback(stop.set)


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


def _save_back(stack: LocalStack, folder: Path) -> None:
    """Save the moto server the console ran on back to the demo's state folder (the reviews)."""
    try:
        state = save_state(stack, folder)
    except (StateError, ClientError, BotoCoreError, OSError) as exc:
        print(f"console: could not save the reviews back to {folder}: {exc}", file=sys.stderr, flush=True)
        return
    print(f"==> saved this console's alerts and reviews back to {folder} "
          f"({sum(state.objects.values())} objects, {sum(state.items.values())} items): "
          f"`make train DATA={folder.parent}` learns from the reviews", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl+C: uvicorn re-raises the signal once it has shut down, and the clean-up
    (saving the reviews, stopping the moto server) must run then, not be cut short."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    server.configure_logging(args.log_level)
    overrides = server.settings_overrides(args)
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
        listener = server.checked_listener(args.host, args.port)
    except (SettingsError, server.PortInUseError, StateError) as exc:
        return server.fail(str(exc))
    except OSError as exc:
        return server.fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    links: dict[str, str] = {}
    with ExitStack() as cleanup:
        if args.demo:
            stack = LocalStack()
            cleanup.callback(stack.stop)
            try:
                links["newest alert"] = _start_demo_world(stack, settings)
                _keep_seeded_cameras_alive(stack, cleanup)
            except (ClientError, BotoCoreError, OSError, ValueError) as exc:
                return server.fail(f"could not seed the demo world: {exc}")
            print(f"==> moto server {stack.endpoint_url} seeded with alerts from the bundled sample video", flush=True)
        else:
            try:
                stack, state = _start_saved_world(state_folder)
            except (ClientError, BotoCoreError, OSError, ValueError, StateError) as exc:
                return server.fail(f"could not load the demo run saved in {state_folder}: {exc}")
            cleanup.callback(stack.stop)
            cleanup.callback(_save_back, stack, state_folder)  # runs first: the server is still up
            history = state.items.get(stack.names.alert_history_table, 0)
            print(f"==> moto server {stack.endpoint_url} with the demo run saved in {state_folder} at "
                  f"{state.saved_at}: {history} alerts", flush=True)
            if saved.get("first_alert_id"):
                links["first alert"] = saved["first_alert_id"]
        server.print_banner(settings, listener, links)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.serve(settings, listener)
        except KeyboardInterrupt:
            print("==> console stopped", flush=True)
        finally:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
