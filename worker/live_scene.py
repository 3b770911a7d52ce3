"""The camera's scene as operators change it, without a redeploy: `LiveScene` re-reads the camera's
scene item (`contracts.camera_scene_item`) in the state table at most every `refresh_s` (the
worker's heartbeat), so an edit in the console, the CLI or Terraform's seed applies within one.

    scene = LiveScene("vigil-state", "gate-north", initial=config_scene, refresh_s=10)
    scene()          # the current CameraScene; never raises, never waits on DynamoDB after the first call

- no item: the `initial` scene (the config file's);
- an item that fails validation: the last good scene stays; one WARNING line naming the camera, the
  revision and each bad field (`zones.0.polygon: a polygon needs at least 3 points, got 2`), once per
  bad revision; `refusal` holds it for the camera's status item (the console's Cameras page);
- DynamoDB unreachable or throttling: the last good scene stays, a WARNING line, tried again at the
  next refresh.

The first call reads synchronously (a worker starts with the operators' scene, not the file's); later
reads run on a short-lived thread of their own, so the analyser that calls `scene()` never waits
for DynamoDB: a change applies at the first call after its read returned (milliseconds after the
refresh is due). `refresh()` reads now, on the caller's thread (the CLI, tests).

`SceneTable` is the item's read and conditional write with a boto3 client (the CLI's too)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from contracts.camera_scene import CameraScene
from contracts.camera_scene_item import (
    SceneItemError,
    StoredScene,
    from_item,
    get_request,
    put_scene,
)
from worker.config import WorkerConfig

logger = logging.getLogger(__name__)

_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 2}
)


class SceneTable:
    """The scene items of one state table."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb", config=_CLIENT_CONFIG)

    def raw(self, camera_id: str, consistent: bool = False) -> dict[str, Any] | None:
        """The camera's item as stored (attribute values), or None."""
        response = self.client.get_item(**get_request(self.table_name, camera_id, consistent))
        item: dict[str, Any] | None = response.get("Item")
        return item

    def read(self, camera_id: str, consistent: bool = False) -> StoredScene | None:
        """The camera's valid scene, None without an item, `SceneItemError` when it is not valid."""
        item = self.raw(camera_id, consistent)
        return None if item is None else from_item(camera_id, item)

    def write(self, camera_id: str, scene: CameraScene, expected_revision: int, updated_by: str) -> int:
        """Write `scene` if the item is still at `expected_revision` (0: no item); the new revision.
        `SceneConflict` when someone wrote in between: nothing is written."""
        revision = put_scene(self.client, self.table_name, camera_id, scene, expected_revision, updated_by)
        logger.info("scene written camera=%s revision=%d by=%s", camera_id, revision, updated_by)
        return revision


@dataclass(frozen=True)
class SceneRefusal:
    """A scene item the worker did not apply, and why (one line per bad field)."""

    revision: int
    errors: tuple[str, ...]

    @property
    def message(self) -> str:
        return f"revision {self.revision} refused: {'; '.join(self.errors)}"


class LiveScene:
    def __init__(
        self,
        table: str | SceneTable,
        camera_id: str,
        initial: CameraScene,
        refresh_s: float,
        *,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table if isinstance(table, SceneTable) else SceneTable(table)
        self.camera_id = camera_id
        self.initial = initial
        self.refresh_s = refresh_s
        self.background = background
        self.clock = clock
        self.revision: int | None = None
        """Revision of the item in use; None: the initial scene (no item, or none readable yet)."""
        self.refusal: SceneRefusal | None = None
        """The newest item's refusal while that item is refused; None once a good one is applied."""
        self.read_failures = 0
        self._scene = initial
        self._next_at: float | None = None  # None: the first call reads now, synchronously
        self._lock = threading.Lock()
        self._reading = False

    def __call__(self) -> CameraScene:
        now = self.clock()
        if self._next_at is None:
            self._next_at = now + self.refresh_s
            self.refresh()
        elif now >= self._next_at and not self._reading:
            self._next_at = now + self.refresh_s
            if self.background:
                self._reading = True
                threading.Thread(
                    target=self._refresh_in_background, name=f"scene-{self.camera_id}", daemon=True
                ).start()
            else:
                self.refresh()
        return self._scene

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        finally:
            self._reading = False

    def refresh(self) -> bool:
        """Read the item now and apply it if it is valid; whether the scene in use changed."""
        with self._lock:
            try:
                stored = self.table.read(self.camera_id)
            except SceneItemError as exc:
                self._refuse(exc)
                return False
            except (ClientError, BotoCoreError) as exc:
                self.read_failures += 1
                logger.warning(
                    "scene not read camera=%s table=%s (keeping %s, next try in %.0f s): %s",
                    self.camera_id, self.table.table_name, self._describe(), self.refresh_s, exc,
                )  # fmt: skip
                return False
            except Exception:  # a bug here must not stop the camera: keep the scene in use
                logger.exception(
                    "scene refresh failed camera=%s (keeping %s)", self.camera_id, self._describe()
                )
                return False
            if stored is None:
                return self._apply(self.initial, None)
            return self._apply(stored.scene, stored.revision)

    def _apply(self, scene: CameraScene, revision: int | None) -> bool:
        self.refusal = None
        if revision == self.revision and scene == self._scene:
            return False
        before = self._describe()
        self._scene, self.revision = scene, revision
        logger.info(
            "scene applied camera=%s %s (was %s): %d zone(s), %d privacy mask(s), schedule %s",
            self.camera_id, self._describe(), before, len(scene.zones), len(scene.privacy_masks),
            scene.schedule.timezone if scene.schedule else "none (always armed)",
        )  # fmt: skip
        return True

    def _refuse(self, exc: SceneItemError) -> None:
        if self.refusal is not None and self.refusal.revision == exc.revision:
            return  # said once for this revision
        self.refusal = SceneRefusal(exc.revision, tuple(exc.errors))
        logger.warning(
            "scene refused camera=%s revision=%d (keeping %s): %s",
            self.camera_id, exc.revision, self._describe(), "; ".join(exc.errors),
        )  # fmt: skip

    def _describe(self) -> str:
        return "the configured scene" if self.revision is None else f"revision {self.revision}"


def live_scene(config: WorkerConfig, initial: CameraScene | None = None) -> LiveScene:
    """The live scene of a `WorkerConfig`: its state table, refreshed every status heartbeat
    (`camera_status.interval_s`); `initial` or the config's own scene until the table has one.
    Read once now, so the worker starts with the operators' scene."""
    start = initial or config.scene
    scene = LiveScene(config.kvs.state_table, config.camera_id, start, config.camera_status.interval_s)
    scene()
    return scene
