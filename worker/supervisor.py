"""The fleet: one worker task (an ECS service scales 1..N of them) watches the cameras whose leases
it holds, one `Worker` (reader + analyser threads) per camera, all in this process.

The cameras come from `$VIGIL_CAMERAS` (JSON `{"<camera_id>": {"site": ..., "stream_name": ...}}`,
set by Terraform); each is read from `kvs://<stream_name>`. Every heartbeat (`lease_s / 3`) the
supervisor ticks its `LeaseManager`, starts a worker for each camera it now owns, stops the worker of
each camera it lost or released (stop = finish the batch in hand, flush alerts, advance the
checkpoint), and starts again a worker whose reader ended or failed. On the stop event (SIGTERM) it
stops every worker, then `release_all()`, so another task takes the cameras over at its next tick.

With a `BatchingDetector` (`fleet_batch` in the config, on by default) the cameras' frames share
InvokeEndpoint calls: each worker gets its camera's `CameraDetector`; the dispatcher starts with
`run()` and stops after the workers (their last batches answered), before the leases go back."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.batching import BatchingDetector, build_batching_detector
from worker.config import CAMERA_ID_PATTERN, WorkerConfig
from worker.env import ENV_CAMERAS
from worker.leases import LeaseManager, TickResult
from worker.metrics import MetricsReporter, TimedDetector
from worker.pipeline import SceneProvider, Worker, build_worker
from worker.sources import SourceError

logger = logging.getLogger(__name__)

KVS_SCHEME = "kvs://"


class CamerasError(ValueError):
    """`$VIGIL_CAMERAS` is missing or not a valid camera map (the message is one line)."""


class CameraSpec(BaseModel):
    """One camera of the fleet, as Terraform writes it into `$VIGIL_CAMERAS`."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=128, description="Site the camera belongs to.")
    stream_name: str = Field(
        min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.-]+$", description="Its Kinesis video stream."
    )


def parse_cameras(raw: str | None) -> dict[str, CameraSpec]:
    """`$VIGIL_CAMERAS` -> camera id -> spec; `CamerasError` with a one-line reason."""
    if not raw or not raw.strip():
        raise CamerasError(f"${ENV_CAMERAS} is not set: it must hold the cameras as JSON")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CamerasError(f"${ENV_CAMERAS} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise CamerasError(
            f'${ENV_CAMERAS} must be a non-empty JSON object {{"<camera_id>": {{"site": ..., "stream_name": ...}}}}'
        )
    cameras: dict[str, CameraSpec] = {}
    for camera_id, spec in data.items():
        if re.fullmatch(CAMERA_ID_PATTERN, camera_id) is None:
            raise CamerasError(f"${ENV_CAMERAS}: invalid camera id {camera_id!r}")
        try:
            cameras[camera_id] = CameraSpec.model_validate(spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "camera"
            raise CamerasError(f"${ENV_CAMERAS}: camera {camera_id}: {where}: {first['msg']}") from None
    return cameras


def camera_configs(
    cameras: dict[str, CameraSpec], load: Callable[..., WorkerConfig]
) -> dict[str, WorkerConfig]:
    """One validated config per camera: `load(camera_id=, site=, source=)` (the shared config
    file, flags and environment defaults are the caller's; may raise `ValidationError`)."""
    return {
        camera_id: load(camera_id=camera_id, site=spec.site, source=KVS_SCHEME + spec.stream_name)
        for camera_id, spec in sorted(cameras.items())
    }


def fleet_batcher(configs: dict[str, WorkerConfig]) -> BatchingDetector | None:
    """The dispatcher the cameras share (None when `fleet_batch.enabled` is false). The fleet's
    configs come from one file and one set of flags, so they agree on the endpoint and its settings."""
    first = next(iter(configs.values()))
    differing = {
        field for config in configs.values()
        for field in ("fleet_batch", "endpoint_name", "max_attempts", "retry_base_s")
        if getattr(config, field) != getattr(first, field)
    }
    if differing:
        raise ValueError(f"the fleet's cameras must agree on {sorted(differing)}")
    settings = first.fleet_batch
    if not settings.enabled:
        return None
    return build_batching_detector(
        first.endpoint_name,
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_ms / 1000,
        max_attempts=first.max_attempts,
        retry_base_s=first.retry_base_s,
    )


class Supervisor:
    def __init__(
        self,
        configs: dict[str, WorkerConfig],
        leases: LeaseManager,
        *,
        stop_event: threading.Event | None = None,
        build: Callable[[WorkerConfig, threading.Event], Worker] | None = None,
        metrics_interval_s: float = 0.0,
        batcher: BatchingDetector | None = None,
        scenes: Callable[[WorkerConfig], SceneProvider] | None = None,
    ) -> None:
        """`configs`: camera id -> its worker config (the cameras `leases` shares). `build`: a
        worker for a config with its own stop event (the production wiring by default). `batcher`:
        the calls the cameras share (started by `run()`, stopped by `shutdown()`). `scenes`: the
        scene provider of a camera's worker (default: its config's scene)."""
        unknown = set(leases.cameras) ^ set(configs)
        if unknown:
            raise ValueError(f"leases and configs name different cameras: {sorted(unknown)}")
        self.configs = configs
        self.leases = leases
        self.stop_event = stop_event or threading.Event()
        self.batcher = batcher
        self.scenes = scenes
        self.build = build or self._build_worker
        self.metrics_interval_s = metrics_interval_s
        self.workers: dict[str, Worker] = {}
        self._reporters: dict[str, MetricsReporter] = {}
        self.started: list[str] = []
        """Every worker start, in order (a camera appears again when it was restarted)."""
        self.start_failures = 0

    # -- one heartbeat ---------------------------------------------------------------------------

    def tick(self) -> TickResult:
        """Renew leases, then make the running workers match the cameras owned now."""
        result = self.leases.tick()
        owned = self.leases.owned
        for camera_id in sorted(set(self.workers) - owned):
            logger.info("camera handed over camera=%s worker=%s", camera_id, self.leases.worker_id)
            self._stop_worker(camera_id)
        for camera_id in sorted(owned & set(self.workers)):
            if not self.workers[camera_id].running():  # the source ended or the reader failed
                logger.warning("worker ended camera=%s: starting it again", camera_id)
                self._stop_worker(camera_id)
        for camera_id in sorted(owned - set(self.workers)):
            if self.stop_event.is_set():
                break
            self._start_worker(camera_id)
        return result

    def run(self) -> None:
        """Tick every heartbeat until the stop event is set (SIGTERM); then `shutdown()`."""
        logger.info(
            "supervisor started worker=%s cameras=%d lease_s=%.1f",
            self.leases.worker_id,
            len(self.configs),
            self.leases.settings.lease_s,
        )
        if self.batcher is not None:
            self.batcher.start()
        try:
            while not self.stop_event.is_set():
                try:
                    self.tick()
                except (ClientError, BotoCoreError) as exc:  # DynamoDB hiccup: leases expire safely
                    logger.warning("lease tick failed worker=%s: %s", self.leases.worker_id, exc)
                self.stop_event.wait(self.leases.settings.heartbeat_s)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop every worker (in parallel: each flushes its alerts and checkpoint), then hand every
        lease back."""
        cameras = sorted(self.workers)
        if cameras:
            with ThreadPoolExecutor(max_workers=len(cameras), thread_name_prefix="stop") as pool:
                list(pool.map(self._stop_worker, cameras))
        if self.batcher is not None:  # after the workers: their last batches are answered
            self.batcher.stop()
        try:
            self.leases.release_all()
        except (ClientError, BotoCoreError) as exc:  # they expire within one lease period anyway
            logger.warning("releasing leases failed worker=%s: %s", self.leases.worker_id, exc)
        logger.info("supervisor stopped worker=%s", self.leases.worker_id)

    # -- workers ---------------------------------------------------------------------------------

    def _build_worker(self, config: WorkerConfig, stop_event: threading.Event) -> Worker:
        detector = None
        if self.batcher is not None:
            detector = self.batcher.for_camera(config.camera_id, max_side=config.inference_max_side)
        scene = self.scenes(config) if self.scenes is not None else None
        return build_worker(config, stop_event, detector=detector, worker_id=self.leases.worker_id, scene=scene)

    def _start_worker(self, camera_id: str) -> None:
        config = self.configs[camera_id]
        try:
            worker = self.build(config, threading.Event())
        except (SourceError, OSError, BotoCoreError, ClientError) as exc:  # OSError: SpoolError
            self.start_failures += 1
            logger.error("cannot start camera=%s (retrying next heartbeat): %s", camera_id, exc)
            return
        if self.metrics_interval_s > 0:
            worker.detector = TimedDetector(worker.detector)
            reporter = MetricsReporter(worker, interval_s=self.metrics_interval_s)
            reporter.start()
            self._reporters[camera_id] = reporter
        worker.start()
        self.workers[camera_id] = worker
        self.started.append(camera_id)

    def _stop_worker(self, camera_id: str) -> Any:
        worker = self.workers.pop(camera_id)
        stats = worker.stop()
        reporter = self._reporters.pop(camera_id, None)
        if reporter is not None:
            reporter.stop()
        return stats
