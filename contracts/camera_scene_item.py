"""The camera scene item (`contracts.camera_scene`) as DynamoDB stores it, and the conditional put
that keeps two writers from overwriting each other. Pure: no boto3. The worker (`worker.live_scene`,
`worker.scene_cli`) and the console (`console.scene_store`) send these requests with their own client.

One item per camera in the worker's state table (`VIGIL_STATE_TABLE`, key `id`), in DynamoDB's
attribute-value form:

    {"id": {"S": "camera-scene#<camera_id>"}, "schema_version": {"S": "1"},
     "camera_id": {"S": "<camera_id>"}, "scene": {"S": "<CameraScene JSON>"},
     "revision": {"N": "<1, 2, ...>"}, "updated_at": {"S": "<ISO Z>"}, "updated_by": {"S": "<who>"}}

`revision` is the optimistic lock: a writer says which revision it read (0: none, no item yet) and
the put is conditional on it (`revision_condition`); the new item carries that + 1. Two operators who
both loaded revision 3: the first save makes 4, the second fails its condition (`SceneConflict`)
instead of silently replacing the first. Terraform's seed writes revision 1 (or an item without
`revision`, which reads as 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contracts.alert import utc_iso
from contracts.camera_scene import SCHEMA_VERSION, CameraScene, scene_id

UPDATED_BY_MAX = 128


class SceneItemError(ValueError):
    """The item is there but its scene is not a valid `CameraScene`; `errors` are one line each,
    `field.path: message` (e.g. `zones.0.polygon: a polygon needs at least 3 points, got 2`)."""

    def __init__(self, camera_id: str, revision: int, errors: list[str]) -> None:
        super().__init__(f"camera {camera_id} scene revision {revision}: {'; '.join(errors)}")
        self.camera_id = camera_id
        self.revision = revision
        self.errors = errors


class SceneConflict(RuntimeError):
    """The conditional put failed: the item's revision is no longer the one the writer read."""

    def __init__(self, camera_id: str, expected_revision: int) -> None:
        super().__init__(
            f"camera {camera_id}: the scene changed since revision {expected_revision} was read; "
            "nothing was written (load it again and redo the change)"
        )
        self.camera_id = camera_id
        self.expected_revision = expected_revision


@dataclass(frozen=True)
class StoredScene:
    """A valid scene item."""

    camera_id: str
    scene: CameraScene
    revision: int
    updated_at: str | None
    updated_by: str | None


def validation_errors(exc: ValidationError) -> list[str]:
    """Pydantic's errors as `field.path: message`, one per error, without pydantic's "Value error, "."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "scene"
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        lines.append(f"{where}: {message}")
    return lines


def parse_scene(text: str | bytes) -> CameraScene:
    """A scene from its JSON text; `ValidationError` (with field paths) when it is not one."""
    return CameraScene.model_validate_json(text)


def scene_json(scene: CameraScene) -> str:
    """The scene as the item stores it: compact JSON of every field (defaults included)."""
    return scene.model_dump_json()


def _string(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if isinstance(value, dict) and isinstance(value.get("S"), str) else None


def item_revision(item: dict[str, Any]) -> int:
    """The item's revision (0 when it has none: written by hand or by an old seed)."""
    value = item.get("revision")
    if not isinstance(value, dict) or "N" not in value:
        return 0
    try:
        return max(0, int(value["N"]))
    except ValueError:
        return 0


def from_item(camera_id: str, item: dict[str, Any]) -> StoredScene:
    """The stored scene of an item (GetItem's `Item`); `SceneItemError` naming each bad field."""
    revision = item_revision(item)
    text = _string(item, "scene")
    if text is None:
        raise SceneItemError(camera_id, revision, ["scene: missing (a JSON string of the camera's scene)"])
    try:
        scene = parse_scene(text)
    except ValidationError as exc:
        raise SceneItemError(camera_id, revision, validation_errors(exc)) from None
    return StoredScene(camera_id, scene, revision, _string(item, "updated_at"), _string(item, "updated_by"))


def to_item(
    camera_id: str, scene: CameraScene, revision: int, updated_by: str, now: datetime | None = None
) -> dict[str, Any]:
    """The item of `scene` at `revision`, in attribute-value form (for the low-level client)."""
    return {
        "id": {"S": scene_id(camera_id)},
        "schema_version": {"S": SCHEMA_VERSION},
        "camera_id": {"S": camera_id},
        "scene": {"S": scene_json(scene)},
        "revision": {"N": str(revision)},
        "updated_at": {"S": utc_iso(now or datetime.now(UTC))},
        "updated_by": {"S": updated_by[:UPDATED_BY_MAX] or "unknown"},
    }


def revision_condition(expected_revision: int) -> dict[str, Any]:
    """`PutItem` condition arguments: the item is still at `expected_revision` (0: it has none)."""
    if expected_revision <= 0:
        return {
            "ConditionExpression": "attribute_not_exists(#rev)",
            "ExpressionAttributeNames": {"#rev": "revision"},
        }
    return {
        "ConditionExpression": "#rev = :expected",
        "ExpressionAttributeNames": {"#rev": "revision"},
        "ExpressionAttributeValues": {":expected": {"N": str(expected_revision)}},
    }


def put_request(
    table: str,
    camera_id: str,
    scene: CameraScene,
    expected_revision: int,
    updated_by: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`PutItem` arguments that write `scene` as revision `expected_revision + 1`, only if the item
    is still at `expected_revision`. A refused condition is `ConditionalCheckFailedException`: the
    sender turns it into `SceneConflict`."""
    item = to_item(camera_id, scene, max(0, expected_revision) + 1, updated_by, now)
    return {"TableName": table, "Item": item, **revision_condition(expected_revision)}


def put_scene(
    client: Any, table: str, camera_id: str, scene: CameraScene, expected_revision: int, updated_by: str
) -> int:
    """Send `put_request` with a boto3 DynamoDB `client`; the new revision. `SceneConflict` when the
    item is no longer at `expected_revision` (someone wrote in between): nothing is written. Other
    errors are raised as they come (botocore's; this module imports no SDK)."""
    try:
        client.put_item(**put_request(table, camera_id, scene, expected_revision, updated_by))
    except Exception as exc:
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException":
            raise SceneConflict(camera_id, expected_revision) from None
        raise
    return max(0, expected_revision) + 1


def get_request(table: str, camera_id: str, consistent: bool = False) -> dict[str, Any]:
    """`GetItem` arguments for the camera's scene item."""
    return {"TableName": table, "Key": {"id": {"S": scene_id(camera_id)}}, "ConsistentRead": consistent}


def pretty(scene: CameraScene) -> str:
    """The scene as an operator edits it: indented JSON, defaults left out."""
    return json.dumps(scene.model_dump(mode="json", exclude_defaults=True), indent=2)


__all__ = [
    "SceneConflict",
    "SceneItemError",
    "StoredScene",
    "from_item",
    "get_request",
    "item_revision",
    "parse_scene",
    "pretty",
    "put_request",
    "put_scene",
    "revision_condition",
    "scene_json",
    "to_item",
    "validation_errors",
]
