"""The live scene against a real DynamoDB API (a moto server on 127.0.0.1): an operator's change to
the camera's scene item applies at the first call after `refresh_s`; a bad item is refused with the
field named, the last good scene stays; two writers with the same revision: the second is a conflict."""

from __future__ import annotations

import json
import logging
import time

import pytest

from contracts.camera_scene import CameraScene, Zone
from contracts.camera_scene_item import SceneConflict, scene_json
from local.stack import LocalStack
from worker.live_scene import LiveScene, SceneTable

INITIAL = CameraScene()
FENCE = CameraScene(zones=[Zone(name="fence", polygon=[(0.1, 0.5), (0.9, 0.5), (0.9, 1.0), (0.1, 1.0)])])
YARD = CameraScene(
    zones=[Zone(name="yard", polygon=[(0, 0), (0.5, 0), (0.5, 0.5)], event_type="loitering", dwell_s=20)]
)


def wait_for(scene: LiveScene, expected: CameraScene, timeout_s: float = 3.0) -> CameraScene:
    deadline = time.monotonic() + timeout_s
    while (current := scene()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return current


def test_a_change_applies_after_refresh_s_and_a_bad_item_is_refused(local_stack: LocalStack, caplog) -> None:
    # GIVEN a worker's live scene of gate-north, refreshed every 0.3 s, and no item yet
    table = SceneTable(local_stack.names.state_table, local_stack.client("dynamodb"))
    scene = LiveScene(table, "gate-north", INITIAL, 0.3)
    assert (scene(), scene.revision) == (INITIAL, None)
    # WHEN an operator saves a zone THEN the scene in use is it, after one refresh
    assert table.write("gate-north", FENCE, 0, "alice") == 1
    time.sleep(0.3)
    assert wait_for(scene, FENCE) == FENCE
    assert scene.revision == 1
    # WHEN someone writes an item with a 2-point polygon (by hand: the console and CLI refuse it)
    caplog.set_level(logging.WARNING, logger="worker.live_scene")
    bad = json.loads(scene_json(FENCE))
    bad["zones"][0]["polygon"] = [[0, 0], [1, 1]]
    local_stack.client("dynamodb").put_item(
        TableName=local_stack.names.state_table,
        Item={
            "id": {"S": "camera-scene#gate-north"},
            "scene": {"S": json.dumps(bad)},
            "revision": {"N": "2"},
        },
    )
    time.sleep(0.7)
    for _ in range(5):
        scene()
        time.sleep(0.1)
    # THEN the last good scene stays, and one WARNING line names the camera and the field
    assert (scene(), scene.revision) == (FENCE, 1)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == [
        (
            "scene refused camera=gate-north revision=2 (keeping revision 1): "
            "zones.0.polygon: a polygon needs at least 3 points, got 2"
        )
    ]
    # WHEN a good revision 3 replaces it THEN it applies
    table.write("gate-north", YARD, 2, "bob")
    assert wait_for(scene, YARD) == YARD
    assert (scene.revision, scene.refusal) == (3, None)


def test_two_saves_from_the_same_revision_the_second_is_a_conflict(local_stack: LocalStack) -> None:
    # GIVEN two operators who both loaded revision 1
    table = SceneTable(local_stack.names.state_table, local_stack.client("dynamodb"))
    table.write("dock-3", FENCE, 0, "terraform")
    # WHEN both save THEN the first makes revision 2 and the second is refused, nothing overwritten
    assert table.write("dock-3", YARD, 1, "alice") == 2
    with pytest.raises(SceneConflict, match="changed since revision 1 was read"):
        table.write("dock-3", FENCE, 1, "bob")
    stored = table.read("dock-3", consistent=True)
    assert (stored.scene, stored.revision, stored.updated_by) == (YARD, 2, "alice")
    # AND a first save over an existing item (expected 0) is a conflict too
    with pytest.raises(SceneConflict):
        table.write("dock-3", FENCE, 0, "carol")
