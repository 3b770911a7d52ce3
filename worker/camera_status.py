"""The camera's status item (`contracts.camera_status`) in the state table, which the console's
Cameras page lists: state (analysing, silent, reconnecting, stopped), last analysed frame, lag,
model version and threshold in use, and the camera's live scene: the revision in use and why a newer
one was refused (`worker.live_scene`).

`CameraStatusReporter` is a thread of its own beside the worker's reader and analyser. Every
`poll_s` it reads what the worker keeps anyway (`Worker.last_analysed`, replaced once per analysed
batch; the state from `camera_state(worker)`) and writes the item with `PutItem` when `interval_s`
has passed since the last write or the state changed; `stop()` writes a last one, state `stopped`.
The analyser never waits for DynamoDB: it only replaces one attribute. A failed write (throttling,
DynamoDB unreachable) is logged with the camera id and tried again next period; it never stops the
camera."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from contracts.camera_status import CameraState, CameraStatus
from kvs.reader import ReaderState

logger = logging.getLogger(__name__)

POLL_S = 1.0
"""How often the reporter looks at the worker's state (a change is written within this)."""
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2})
_serializer = TypeSerializer()

READER_STATES: dict[ReaderState, CameraState] = {
    ReaderState.STREAMING: "analysing",
    ReaderState.CONNECTING: "reconnecting",
    ReaderState.BACKING_OFF: "reconnecting",
    ReaderState.SILENT: "silent",
    ReaderState.STOPPED: "stopped",
}
"""`kvs.reader.ReaderState` -> the state shown."""


SceneState = tuple[int | None, str | None]
"""The live scene's revision in use (None: the configured scene) and its refusal message (None: none)."""


def scene_state(scene: Any) -> SceneState:
    """What a `worker.live_scene.LiveScene` says for the status item (nothing for a plain callable)."""
    refusal = getattr(scene, "refusal", None)
    return getattr(scene, "revision", None), refusal.message if refusal is not None else None


@dataclass(frozen=True)
class LastAnalysed:
    """The newest frame the analyser scored, and what it was scored with."""

    captured_at: datetime
    lag_s: float
    """Capture -> analysed (the FrameLagSeconds metric)."""
    model_version: str
    threshold: float


def camera_state(worker: Any) -> CameraState:
    """`stopped` once the worker is stopping or its threads ended; else what its source's reader
    says (a KVS stream: silent, reconnecting); else `analysing`."""
    if worker.stop_event.is_set() or not worker.running():
        return "stopped"
    reader_state = getattr(getattr(worker.source, "reader", None), "state", None)
    if reader_state is None:
        return "analysing"
    return READER_STATES.get(str(reader_state), "analysing")


def default_worker_id() -> str:
    """Unique per process: host (the Fargate task's ENI host name), pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class CameraStatusReporter:
    def __init__(
        self,
        camera_id: str,
        site: str,
        *,
        table_name: str,
        state: Callable[[], CameraState],
        last_analysed: Callable[[], LastAnalysed | None],
        interval_s: float = 10.0,
        worker_id: str | None = None,
        client: Any = None,
        poll_s: float = POLL_S,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        scene: Callable[[], SceneState] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.site = site
        self.table_name = table_name
        self.state = state
        self.last_analysed = last_analysed
        self.interval = timedelta(seconds=interval_s)
        self.worker_id = worker_id or default_worker_id()
        self.client = client or boto3.client("dynamodb", config=_CLIENT_CONFIG)
        self.poll_s = min(poll_s, interval_s)
        self.now = now
        self.scene = scene
        self.writes = 0
        self.failures = 0
        self._written_state: CameraState | None = None
        self._next_at: datetime | None = None  # the next periodic write; None: at once
        self._retry_at: datetime | None = None  # after a failure, not before this (state changes too)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"status-{camera_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and write the last status, state `stopped` (one attempt)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.write("stopped")

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # a bug here must not end the status, nor ever the camera
                logger.exception("camera status tick failed camera=%s", self.camera_id)
            if self._stop.wait(self.poll_s):
                return

    def tick(self) -> bool:
        """Write the status if a period has passed or the state changed (not before the retry time
        of a failed write); whether it wrote."""
        state, now = self.state(), self.now()
        periodic = self._next_at is None or now >= self._next_at
        changed = state != self._written_state and (self._retry_at is None or now >= self._retry_at)
        if not (periodic or changed):
            return False
        if self.write(state, now):
            self._next_at, self._retry_at = now + self.interval, None
            return True
        self._next_at = self._retry_at = now + self.interval
        return False

    def status(self, state: CameraState, now: datetime | None = None) -> CameraStatus:
        last = self.last_analysed()
        scene_revision, scene_error = self.scene() if self.scene is not None else (None, None)
        return CameraStatus(
            camera_id=self.camera_id,
            site=self.site,
            state=state,
            last_frame_at=last.captured_at if last else None,
            lag_ms=round(max(0.0, last.lag_s) * 1000, 1) if last else None,
            model_version=last.model_version if last else None,
            threshold=last.threshold if last else None,
            worker_id=self.worker_id,
            updated_at=now or self.now(),
            scene_revision=scene_revision,
            scene_error=scene_error,
        )

    def write(self, state: CameraState, now: datetime | None = None) -> bool:
        """PutItem the status; False (logged with the camera id) when DynamoDB refused or was unreachable.
        `stopped` is written only over this worker's own status: a camera handed over to another
        worker (lease lost or released) keeps the new owner's."""
        item = self.status(state, now).to_item()
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": {name: _serializer.serialize(value) for name, value in item.items()},
        }
        if state == "stopped":
            request["ConditionExpression"] = "attribute_not_exists(#id) OR worker_id = :me"
            request["ExpressionAttributeNames"] = {"#id": "id"}
            request["ExpressionAttributeValues"] = {":me": {"S": self.worker_id}}
        try:
            self.client.put_item(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                return self._failed(state, exc)
            logger.info("camera status camera=%s: another worker owns it now, not marking it stopped", self.camera_id)
            return True
        except BotoCoreError as exc:
            return self._failed(state, exc)
        if state != self._written_state:
            logger.info("camera status camera=%s state=%s", self.camera_id, state)
        self._written_state = state
        self.writes += 1
        return True

    def _failed(self, state: CameraState, exc: Exception) -> bool:
        self.failures += 1
        logger.warning(
            "camera status not written camera=%s state=%s table=%s (next try in %.0f s): %s",
            self.camera_id, state, self.table_name, self.interval.total_seconds(), exc,
        )  # fmt: skip
        return False


def status_reporter(worker: Any, worker_id: str | None = None, scene: Any = None) -> CameraStatusReporter:
    """The reporter of a `worker.pipeline.Worker`, to the state table of its config; `scene`: the
    worker's live scene (`worker.live_scene.LiveScene`), whose revision and refusal it reports."""
    config = worker.config
    return CameraStatusReporter(
        config.camera_id,
        config.site,
        table_name=config.kvs.state_table,
        state=lambda: camera_state(worker),
        last_analysed=lambda: worker.last_analysed,
        interval_s=config.camera_status.interval_s,
        worker_id=worker_id,
        scene=(lambda: scene_state(scene)) if scene is not None else None,
    )
