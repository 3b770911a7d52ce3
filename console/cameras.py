"""Camera health: the status item each worker writes for each camera it owns, in the state table.

The item (`VIGIL_STATE_TABLE`, key `id` = `camera-status#<camera_id>`) is the contract
`contracts.camera_status.CameraStatus`: the worker (`worker.camera_status`) writes it with `PutItem`
every heartbeat (`camera_status.interval_s`, 10 s by default) and on every state change.

The worker's checkpoint items (`checkpoint#<camera_id>`, `worker.checkpoints`) add when the
camera's last fully analysed fragment was produced; they carry no site, so a camera is listed only
through its status item (which does), never from a checkpoint alone.

The console lists them with a `Scan` filtered on the `camera-status#` prefix: the state table holds a
few items per camera (checkpoint, lease, status), not per frame or alert, so this stays small. A
status not updated for `stale_after_s` is shown as "no heartbeat" whatever it last said, except
`stopped`: the worker's last word on a camera it let go of, which no heartbeat follows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from pydantic import ValidationError

from console.access import SiteAccess
from contracts.camera_status import STATUS_PREFIX, CameraState, CameraStatus, status_id

logger = logging.getLogger(__name__)

__all__ = ["STATUS_PREFIX", "CameraRow", "CameraState", "CameraStatus", "camera_row", "read_statuses", "status_id"]

CHECKPOINT_PREFIX = "checkpoint#"
"""`worker.checkpoints` items: the last fully analysed fragment per camera (`producer_timestamp`)."""
DEFAULT_STALE_AFTER_S = 60.0

_deserializer = TypeDeserializer()


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
    stale = status.state != "stopped" and age > stale_after_s
    return CameraRow(status=status, alerts_today=alerts_today, stale=stale, heartbeat_age_s=age,
                     checkpoint_at=checkpoint_at)
