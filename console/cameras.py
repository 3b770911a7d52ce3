"""Camera health: the status item each worker writes for each camera it owns, in the state table.

Item (`VIGIL_STATE_TABLE`, key `id`), written with `PutItem` by the worker on every heartbeat
(e.g. every 10 s) and on every state change; `CameraStatus.to_item()` builds it:

    {"id": "camera-status#<camera_id>", "camera_id": "...", "site": "...",
     "state": "analysing" | "silent" | "reconnecting" | "stopped",
     "last_frame_at": "<ISO Z: producer timestamp of the last analysed frame>",
     "lag_ms": <now - last_frame_at when written>, "model_version": "...", "threshold": <number>,
     "worker_id": "<task id>", "updated_at": "<ISO Z>"}

The worker's checkpoint items (`checkpoint#<camera_id>`, `worker.checkpoints`) add when the
camera's last fully analysed fragment was produced; they carry no site, so a camera is listed only
through its status item (which does), never from a checkpoint alone.

The console lists them with a `Scan` filtered on the `camera-status#` prefix: the state table holds a
few items per camera (checkpoint, lease, status), not per frame or alert, so this stays small. A
status not updated for `stale_after_s` is shown as "no heartbeat" whatever it last said.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_serializer

from console.access import SiteAccess
from contracts.alert import utc_iso

logger = logging.getLogger(__name__)

STATUS_PREFIX = "camera-status#"
CHECKPOINT_PREFIX = "checkpoint#"
"""`worker.checkpoints` items: the last fully analysed fragment per camera (`producer_timestamp`)."""
DEFAULT_STALE_AFTER_S = 60.0

CameraState = Literal["analysing", "silent", "reconnecting", "stopped"]
_deserializer = TypeDeserializer()


def status_id(camera_id: str) -> str:
    return f"{STATUS_PREFIX}{camera_id}"


class CameraStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(min_length=1)
    site: str = Field(min_length=1)
    state: CameraState = Field(description="What the worker is doing with the camera.")
    last_frame_at: AwareDatetime | None = Field(
        default=None, description="Producer timestamp of the last analysed frame (UTC)."
    )
    lag_ms: float | None = Field(default=None, ge=0, description="Now - last_frame_at when written, ms.")
    model_version: str | None = Field(default=None, description="Model version the endpoint answered with.")
    threshold: float | None = Field(default=None, description="Alert threshold in use for the camera.")
    worker_id: str | None = Field(default=None, description="The worker task that owns the camera.")
    updated_at: AwareDatetime = Field(description="When the worker wrote this status (UTC).")

    @field_serializer("last_frame_at", "updated_at")
    def _iso(self, value: datetime | None) -> str | None:
        return utc_iso(value) if value else None

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (plain values, numbers as Decimal) for `Table.put_item(Item=...)`."""
        item: dict[str, Any] = {"id": status_id(self.camera_id)}
        for name, value in self.model_dump(mode="json").items():
            if value is None:
                continue
            item[name] = Decimal(repr(value)) if isinstance(value, float) else value
        return item


@dataclass(frozen=True)
class CameraRow:
    status: CameraStatus
    alerts_today: int
    stale: bool
    heartbeat_age_s: float
    checkpoint_at: datetime | None = None

    @property
    def shown_state(self) -> str:
        return "no heartbeat" if self.stale else self.status.state


def read_statuses(
    dynamodb: Any, state_table: str, access: SiteAccess
) -> tuple[list[CameraStatus], dict[str, datetime]]:
    """Every camera status the operator may see (by site then camera), and the checkpoint time
    (producer timestamp of the last fully analysed fragment) of each camera that has one."""
    if access.empty:
        return [], {}
    kwargs: dict[str, Any] = {
        "TableName": state_table,
        "FilterExpression": "begins_with(#id, :status) OR begins_with(#id, :checkpoint)",
        "ExpressionAttributeNames": {"#id": "id"},
        "ExpressionAttributeValues": {":status": {"S": STATUS_PREFIX}, ":checkpoint": {"S": CHECKPOINT_PREFIX}},
    }
    statuses: list[CameraStatus] = []
    checkpoints: dict[str, datetime] = {}
    while True:
        response = dynamodb.scan(**kwargs)
        for item in response["Items"]:
            plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
            item_id = str(plain.pop("id", ""))
            if item_id.startswith(CHECKPOINT_PREFIX):
                if plain.get("producer_timestamp") is not None:
                    checkpoints[item_id.removeprefix(CHECKPOINT_PREFIX)] = datetime.fromtimestamp(
                        float(plain["producer_timestamp"]), UTC
                    )
                continue
            plain = {name: float(v) if isinstance(v, Decimal) else v for name, v in plain.items()}
            try:
                status = CameraStatus.model_validate(plain)
            except ValidationError as exc:
                logger.warning("camera status item %s unreadable: %s", item.get("id"), exc.errors()[0]["msg"])
                continue
            if access.allows(status.site):
                statuses.append(status)
        if "LastEvaluatedKey" not in response:
            break
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    statuses.sort(key=lambda s: (s.site, s.camera_id))
    return statuses, {s.camera_id: checkpoints[s.camera_id] for s in statuses if s.camera_id in checkpoints}


def camera_row(status: CameraStatus, alerts_today: int, now: datetime | None = None,
               stale_after_s: float = DEFAULT_STALE_AFTER_S, checkpoint_at: datetime | None = None) -> CameraRow:
    age = ((now or datetime.now(UTC)) - status.updated_at).total_seconds()
    return CameraRow(status=status, alerts_today=alerts_today, stale=age > stale_after_s, heartbeat_age_s=age,
                     checkpoint_at=checkpoint_at)
