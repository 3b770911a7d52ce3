"""`python -m alert_lambda.local_esm`: run the local event source mapping until SIGTERM / SIGINT (or until
the stream has been idle `--exit-when-idle-s`). The mapping itself: `alert_lambda.local_esm.mapping`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from pydantic import ValidationError

from alert_lambda.local_esm.mapping import EventSourceMapping, EventSourceMappingError, MappingConfig
from alert_lambda.settings import Settings, SettingsError

logger = logging.getLogger("alert_lambda.local_esm")  # the package's logger: the mapping's lines too


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m alert_lambda.local_esm",
        description="Local Kinesis event source mapping: poll a stream and invoke alert_lambda in-process.",
    )
    parser.add_argument("--stream", required=True, help="Kinesis Data Stream name (required), e.g. alerts.")
    parser.add_argument(
        "--batch-size", type=int, default=100, help="Most records per invocation (default 100)."
    )
    parser.add_argument(
        "--batch-window-s", type=float, default=0.5, help="Seconds to wait to fill a batch (default 0.5)."
    )
    parser.add_argument(
        "--starting-position",
        choices=["TRIM_HORIZON", "LATEST"],
        default="TRIM_HORIZON",
        help="Where to start reading each shard (default TRIM_HORIZON).",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="Retries of a failed batch before discarding it; -1: forever (default 3).",
    )
    parser.add_argument(
        "--maximum-record-age-s",
        type=int,
        default=-1,
        help="Discard a failing record once it is older than this; -1: no limit (default -1).",
    )
    parser.add_argument(
        "--bisect-on-error",
        action="store_true",
        help="Split a batch in two on a function error (default off).",
    )
    parser.add_argument(
        "--retry-backoff-s",
        type=float,
        default=0.2,
        help="Wait before retrying a failed batch, doubled per retry up to 5 s (default 0.2).",
    )
    parser.add_argument(
        "--on-failure-queue-url",
        default=None,
        help="SQS queue URL for discarded batches (default: log only).",
    )
    parser.add_argument(
        "--exit-when-idle-s",
        type=float,
        default=None,
        help="Exit once nothing has arrived for this many seconds (default: run until SIGTERM/SIGINT).",
    )
    parser.add_argument(
        "--poll-interval-s",
        type=float,
        default=0.2,
        help="Pause between polls of an idle stream (default 0.2).",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="Log level of the mapping's own lines (default INFO)."
    )
    return parser


def _configure_logging(level: str) -> None:
    """The mapping's lines, plain, on stderr; the function's own logs stay powertools JSON on stdout."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s local_esm: %(message)s"))
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(level.upper())


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        _configure_logging(args.log_level)
    except ValueError:
        print(f"error: unknown --log-level {args.log_level!r}", file=sys.stderr)
        return 2
    try:
        config = MappingConfig(
            stream=args.stream,
            batch_size=args.batch_size,
            batch_window_s=args.batch_window_s,
            starting_position=args.starting_position,
            max_retries=args.max_retries,
            maximum_record_age_s=args.maximum_record_age_s,
            bisect_on_error=args.bisect_on_error,
            retry_backoff_s=args.retry_backoff_s,
            on_failure_queue_url=args.on_failure_queue_url,
            poll_interval_s=args.poll_interval_s,
        )
    except ValidationError as exc:
        problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        print(f"error: {problems}", file=sys.stderr)
        return 2
    stop_event = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        logger.info("%s received; stopping after the current invocation", signal.Signals(signum).name)
        stop_event.set()

    # Installed before anything is logged, so a signal sent once the mapping speaks is always handled.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        settings = Settings.from_env()
        settings.require_topic()
        mapping = EventSourceMapping(config, settings=settings).start()
    except (SettingsError, EventSourceMappingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mapping.run(stop_event, exit_when_idle_s=args.exit_when_idle_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
