"""The camera status item: written by `worker/` (`worker.camera_status`), read by `console/`
(`console.cameras`, the Cameras page). One item per camera in the worker's state table
(`VIGIL_STATE_TABLE`, key `id`), replaced with `PutItem` every heartbeat and on every state change;
`schema_version` "1":

    {"id": "camera-status#<camera_id>", "schema_version": "1", "camera_id": "...", "site": "...",
     "state": "analysing" | "silent" | "reconnecting" | "stopped",
     "last_frame_at": "<ISO Z: capture (producer) time of the last analysed frame>",
     "lag_ms": <capture -> analysed of that frame>, "model_version": "...", "threshold": <number>,
     "worker_id": "<task id>", "updated_at": "<ISO Z>",
     "scene_revision": <the camera scene item's revision in use>, "scene_error": "<why the newest was refused>"}

`scene_revision` and `scene_error` are optional (absent in items written before live scenes, and
when the worker runs its configured scene): the console shows a refused scene item on the Cameras page.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

from contracts.alert import utc_iso

SCHEMA_VERSION: Literal["1"] = "1"
STATUS_PREFIX = "camera-status#"

CameraState = Literal["analysing", "silent", "reconnecting", "stopped"]


def status_id(camera_id: str) -> str:
    return f"{STATUS_PREFIX}{camera_id}"


class CameraStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = SCHEMA_VERSION
    camera_id: str = Field(min_length=1)
    site: str = Field(min_length=1)
    state: CameraState = Field(description="What the worker is doing with the camera.")
    last_frame_at: AwareDatetime | None = Field(
        default=None, description="Capture (producer) time of the last analysed frame (UTC)."
    )
    lag_ms: float | None = Field(
        default=None,
        ge=0,
        description="Capture -> analysed of the last analysed frame, ms (the FrameLagSeconds metric).",
    )
    model_version: str | None = Field(default=None, description="Model version the endpoint answered with.")
    threshold: float | None = Field(default=None, description="Alert threshold in use for the camera.")
    worker_id: str | None = Field(default=None, description="The worker task that owns the camera.")
    updated_at: AwareDatetime = Field(description="When the worker wrote this status (UTC).")
    scene_revision: int | None = Field(
        default=None, ge=0, description="Revision of the camera's scene item in use; none: the configured scene."
    )
    scene_error: str | None = Field(
        default=None,
        max_length=2000,
        description="Why the newest scene item was refused (field: message); the worker keeps the last good one.",
    )

    @field_serializer("last_frame_at", "updated_at")
    def _iso(self, value: datetime | None) -> str | None:
        return utc_iso(value) if value else None

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (plain values, numbers as Decimal) for `Table.put_item(Item=...)`, or
        `TypeSerializer` for the low-level client."""
        item: dict[str, Any] = {"id": status_id(self.camera_id)}
        for name, value in self.model_dump(mode="json").items():
            if value is None:
                continue
            item[name] = Decimal(repr(value)) if isinstance(value, float) else value
        return item
