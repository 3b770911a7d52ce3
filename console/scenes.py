"""A camera's scene as the console's scene page shows and saves it: the camera (its status item, which
names its site), the scene item (`contracts.camera_scene_item`), and the save, conditional on the
revision the page was loaded with.

- The camera must have a status item of one of the operator's sites (a camera is known to the console
  through its status, as on the Cameras page); otherwise the page is a 404, as for another site's alert.
- A stored item that is not valid (written by hand) is shown with its errors and its JSON, so a
  supervisor can fix it; the worker keeps its last good scene meanwhile.
- A save validates with `CameraScene` (errors name the field) and puts the item only if it is still
  at the page's revision (`SceneConflict` otherwise): nothing is written on either refusal.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from pydantic import ValidationError

from console.access import SiteAccess
from contracts.camera_scene import CameraScene
from contracts.camera_scene_item import (
    SceneConflict,
    SceneItemError,
    from_item,
    get_request,
    item_revision,
    parse_scene,
    put_scene,
    validation_errors,
)
from contracts.camera_status import CameraStatus, status_id

logger = logging.getLogger(__name__)

__all__ = ["SceneConflict", "SceneInvalid", "SceneView", "camera_status", "read_scene", "save_scene"]

_deserializer = TypeDeserializer()


class SceneInvalid(ValueError):
    """The submitted scene is not a valid `CameraScene`; `errors` name each field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class SceneView:
    """What the scene page shows of the stored item."""

    revision: int
    """0: no item (the worker runs its configured scene)."""
    scene: CameraScene | None
    """None when there is no item or it is not valid."""
    text: str
    """The JSON the editor starts from: the stored scene (every field), or an invalid item's own text."""
    updated_at: str | None = None
    updated_by: str | None = None
    errors: tuple[str, ...] = ()
    """Why the stored item is not valid (the worker refuses it too)."""


def camera_status(dynamodb: Any, state_table: str, camera_id: str, access: SiteAccess) -> CameraStatus | None:
    """The camera's status item, or None when there is none or it is another site's camera."""
    item = dynamodb.get_item(TableName=state_table, Key={"id": {"S": status_id(camera_id)}}).get("Item")
    if item is None:
        return None
    plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
    plain.pop("id", None)
    plain = {name: float(v) if isinstance(v, Decimal) else v for name, v in plain.items()}
    try:
        status = CameraStatus.model_validate(plain)
    except ValidationError as exc:
        logger.warning("camera status item of %s unreadable: %s", camera_id, exc.errors()[0]["msg"])
        return None
    return status if access.allows(status.site) else None


def read_scene(dynamodb: Any, state_table: str, camera_id: str) -> SceneView:
    """The camera's stored scene (consistent read: the page's revision is the one a save checks)."""
    item = dynamodb.get_item(**get_request(state_table, camera_id, consistent=True)).get("Item")
    if item is None:
        return SceneView(0, None, json.dumps(CameraScene().model_dump(mode="json"), indent=2))
    try:
        stored = from_item(camera_id, item)
    except SceneItemError as exc:
        text = item.get("scene", {}).get("S", "{}")
        return SceneView(
            item_revision(item), None, text, _s(item, "updated_at"), _s(item, "updated_by"), tuple(exc.errors)
        )
    return SceneView(
        stored.revision,
        stored.scene,
        json.dumps(stored.scene.model_dump(mode="json"), indent=2),
        stored.updated_at,
        stored.updated_by,
    )


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {})
    return value.get("S") if isinstance(value, dict) else None


def validate(text: str) -> CameraScene:
    """The submitted JSON as a scene; `SceneInvalid` naming each bad field."""
    try:
        return parse_scene(text)
    except ValidationError as exc:
        raise SceneInvalid(validation_errors(exc)) from None


def save_scene(
    dynamodb: Any, state_table: str, camera_id: str, scene: CameraScene, expected_revision: int, operator: str
) -> int:
    """Put the scene if the item is still at `expected_revision`; the new revision. `SceneConflict`
    when someone saved since the page was loaded: nothing is written."""
    revision = put_scene(dynamodb, state_table, camera_id, scene, expected_revision, operator)
    logger.info("scene saved camera=%s revision=%d by=%s", camera_id, revision, operator)
    return revision
