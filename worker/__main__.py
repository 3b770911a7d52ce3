"""`python -m worker`: watch one camera until its source ends or SIGTERM / SIGINT.

    python -m worker --camera-id cam-1 --site hq --source clip.mp4 --speed 0 --stats-out stats.json

Fleet mode (`--fleet`, and automatically when `$VIGIL_CAMERAS` is set and neither `--source` nor
`--camera-id` is given, as on Fargate): watch the cameras of `$VIGIL_CAMERAS` whose leases this
task holds, one worker per camera (`worker.supervisor`), until SIGTERM / SIGINT.

Exit codes: 0 done (or stopped by a signal), 1 the reader failed, 2 bad config or source."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from worker.camera_status import default_worker_id
from worker.config import ConfigError, WorkerConfig, load_config
from worker.env import (
    ENV_CAMERAS,
    ENV_ENDPOINT_NAME,
    ENV_FLEET_BATCH_ENABLED,
    ENV_FLEET_BATCH_MAX,
    ENV_FLEET_BATCH_WAIT_MS,
    ENV_FRAME_SAMPLE_FPS,
)
from worker.leases import LeaseManager, LeaseSettings
from worker.live_scene import live_scene
from worker.metrics import MetricsReporter, TimedDetector
from worker.pipeline import build_worker
from worker.sources import SourceError
from worker.spool import SpoolError
from worker.supervisor import (
    CamerasError,
    Supervisor,
    camera_configs,
    fleet_batcher,
    parse_cameras,
)

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def get_args_parser() -> argparse.ArgumentParser:
    defaults = {name: field.default for name, field in WorkerConfig.model_fields.items()}
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Vigil worker: one camera -> motion gate -> SageMaker endpoint -> alerts on Kinesis.",
        epilog=f"Fleet mode: with ${ENV_CAMERAS} set and no --source / --camera-id (or with --fleet), the "
        f'worker reads every camera of ${ENV_CAMERAS} ({{"<camera_id>": {{"site": ..., "stream_name": ...}}}}, '
        "source kvs://<stream_name>) whose lease it holds in the state table, sharing them fairly with the "
        f"other worker tasks. ${ENV_ENDPOINT_NAME} and ${ENV_FRAME_SAMPLE_FPS} set the defaults of "
        f"--endpoint-name and --sample-fps, ${ENV_FLEET_BATCH_ENABLED}, ${ENV_FLEET_BATCH_MAX} and "
        f"${ENV_FLEET_BATCH_WAIT_MS} those of fleet_batch (enabled, max_batch, max_wait_ms); --config "
        "(fleet_batch key by key) and flags win.",
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help=f"watch the cameras of ${ENV_CAMERAS} this task holds leases for (default when ${ENV_CAMERAS} "
        "is set and no --source / --camera-id is given)",
    )
    parser.add_argument(
        "--lease-s", type=float, default=30.0, help="fleet mode: camera lease duration, seconds (default 30)"
    )
    parser.add_argument("--camera-id", help="camera id (required, here or in --config)")
    parser.add_argument("--site", help="site of the camera (required, here or in --config)")
    parser.add_argument(
        "--source", help="video file path, rtsp:// / http(s):// URL, or kvs://<stream-name> (required)"
    )
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
    parser.add_argument(
        "--metrics-interval-s",
        type=float,
        default=60.0,
        help="seconds between CloudWatch EMF metric lines on stdout, 0 = none (default 60)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _config_errors(exc: ValidationError) -> str:
    lines = [f"invalid worker config ({exc.error_count()} error(s)):"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "config"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)



def _flag_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The per-run flags that override the config file, the same for one camera or a fleet."""
    return {
        "endpoint_name": args.endpoint_name,
        "speed": args.speed,
        "start_s": args.start_s,
        "end_s": args.end_s,
        "sample_fps": args.sample_fps,
    }

def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    for chatty in ("botocore", "boto3", "urllib3"):  # their INFO lines cannot carry the camera id
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.fleet or (os.environ.get(ENV_CAMERAS) and args.source is None and args.camera_id is None):
        return run_fleet(args)
    try:
        config = load_config(
            args.config, camera_id=args.camera_id, site=args.site, source=args.source, **_flag_overrides(args)
        )
    except ConfigError as exc:
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
        worker = build_worker(config, stop_event, scene=live_scene(config))
    except (SourceError, SpoolError) as exc:
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
    reporter = None
    if args.metrics_interval_s > 0:
        worker.detector = TimedDetector(worker.detector)
        reporter = MetricsReporter(worker, interval_s=args.metrics_interval_s)
        reporter.start()
    stats = worker.run()
    if reporter is not None:
        reporter.stop()
    if args.stats_out is not None:
        args.stats_out.write_text(json.dumps(stats.to_dict(), indent=2) + "\n", encoding="utf-8")
    return EXIT_FAILED if worker.failed else EXIT_OK


def run_fleet(args: argparse.Namespace) -> int:
    """Fleet mode: a `Supervisor` over the cameras of $VIGIL_CAMERAS, until SIGTERM / SIGINT."""
    if args.source is not None or args.camera_id is not None or args.site is not None:
        print("error: --source, --camera-id and --site do not go with fleet mode", file=sys.stderr)
        return EXIT_USAGE
    if args.stats_out is not None:
        print("error: --stats-out is for one camera, not fleet mode", file=sys.stderr)
        return EXIT_USAGE
    if not args.lease_s > 0:
        print(f"error: --lease-s must be positive, got {args.lease_s}", file=sys.stderr)
        return EXIT_USAGE

    def load(**camera: str) -> WorkerConfig:
        return load_config(args.config, **camera, **_flag_overrides(args))

    try:
        configs = camera_configs(parse_cameras(os.environ.get(ENV_CAMERAS)), load)
    except (CamerasError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        print(_config_errors(exc), file=sys.stderr)
        return EXIT_USAGE
    if args.validate_config:
        print(json.dumps({cam: config.model_dump(mode="json") for cam, config in configs.items()}, indent=2))
        return EXIT_OK
    tables = {config.kvs.state_table for config in configs.values()}
    try:
        batcher = fleet_batcher(configs)
        leases = LeaseManager(
            default_worker_id(),
            configs,
            table_name=tables.pop(),
            settings=LeaseSettings(lease_s=args.lease_s, margin_s=args.lease_s / 10),
        )
    except ValueError as exc:  # the cameras' configs disagree on the shared endpoint settings
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BotoCoreError as exc:
        print(f"error: AWS client setup failed: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop_event = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        logger.info("signal %s worker=%s: stopping", signal.Signals(signum).name, leases.worker_id)
        stop_event.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    Supervisor(
        configs, leases, stop_event=stop_event, metrics_interval_s=args.metrics_interval_s, batcher=batcher,
        scenes=live_scene,
    ).run()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
