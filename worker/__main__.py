"""`python -m worker`: watch one camera until its source ends or SIGTERM / SIGINT.

    python -m worker --camera-id cam-1 --site hq --source clip.mp4 --speed 0 --stats-out stats.json

Exit codes: 0 done (or stopped by a signal), 1 the reader failed, 2 bad config or source."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from worker.config import ConfigFileError, WorkerConfig, load_config
from worker.pipeline import build_worker
from worker.sources import SourceError

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def get_args_parser() -> argparse.ArgumentParser:
    defaults = {name: field.default for name, field in WorkerConfig.model_fields.items()}
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Vigil worker: one camera -> motion gate -> SageMaker endpoint -> alerts on Kinesis.",
    )
    parser.add_argument("--camera-id", help="camera id (required, here or in --config)")
    parser.add_argument("--site", help="site of the camera (required, here or in --config)")
    parser.add_argument("--source", help="video file path or rtsp:// / http(s):// URL (required)")
    parser.add_argument("--endpoint-name", help=f"SageMaker endpoint (default {defaults['endpoint_name']})")
    parser.add_argument(
        "--speed",
        type=float,
        help=f"playback rate of file sources, 0 = as fast as possible (default {defaults['speed']})",
    )
    parser.add_argument("--start-s", type=float, help="media time to start at, seconds (default: the start)")
    parser.add_argument("--end-s", type=float, help="media time to stop at, seconds (default: the end)")
    parser.add_argument(
        "--sample-fps", type=float, help=f"frames analysed per second (default {defaults['sample_fps']})"
    )
    parser.add_argument("--config", type=Path, help="JSON file with a WorkerConfig; flags override it")
    parser.add_argument(
        "--stats-out", type=Path, help="write the run's counters here as JSON (default: none)"
    )
    parser.add_argument("--validate-config", action="store_true", help="check the config, print it and exit")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _config_errors(exc: ValidationError) -> str:
    lines = [f"invalid worker config ({exc.error_count()} error(s)):"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "config"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    for chatty in ("botocore", "boto3", "urllib3"):  # their INFO lines cannot carry the camera id
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        config = load_config(
            args.config,
            camera_id=args.camera_id,
            site=args.site,
            source=args.source,
            endpoint_name=args.endpoint_name,
            speed=args.speed,
            start_s=args.start_s,
            end_s=args.end_s,
            sample_fps=args.sample_fps,
        )
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        print(_config_errors(exc), file=sys.stderr)
        return EXIT_USAGE
    if args.validate_config:
        print(config.model_dump_json(indent=2))
        return EXIT_OK
    if args.stats_out is not None and not args.stats_out.parent.is_dir():
        print(f"error: folder for --stats-out does not exist: {args.stats_out.parent}", file=sys.stderr)
        return EXIT_USAGE

    stop_event = threading.Event()
    try:
        worker = build_worker(config, stop_event)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BotoCoreError as exc:
        print(f"error: AWS client setup failed: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def _on_signal(signum: int, _frame: object) -> None:
        logger.info("signal %s camera=%s: stopping", signal.Signals(signum).name, config.camera_id)
        stop_event.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    stats = worker.run()
    if args.stats_out is not None:
        args.stats_out.write_text(json.dumps(stats.to_dict(), indent=2) + "\n", encoding="utf-8")
    return EXIT_FAILED if worker.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
