"""`worker.live_scene.LiveScene` over an in-memory table: refresh timing, a missing item, a refused
item (kept out, said once per revision), and DynamoDB errors (the last good scene stays)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from contracts.camera_scene import CameraScene, PrivacyMask, Zone
from contracts.camera_scene_item import to_item
from worker.camera_status import scene_state
from worker.live_scene import LiveScene, SceneRefusal, SceneTable

INITIAL = CameraScene(outside_zones="ignore")
FENCE = CameraScene(zones=[Zone(name="fence", polygon=[(0.1, 0.5), (0.9, 0.5), (0.9, 1.0), (0.1, 1.0)])])
MASKED = FENCE.model_copy(
    update={"privacy_masks": [PrivacyMask(name="window", polygon=[(0, 0), (0.2, 0), (0, 0.2)])]}
)


class FakeClient:
    """`get_item` from a dict; `fail` makes the next reads raise it."""

    def __init__(self) -> None:
        self.item: dict[str, Any] | None = None
        self.fail: Exception | None = None
        self.reads = 0

    def get_item(self, **request: Any) -> dict[str, Any]:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return {"Item": self.item} if self.item is not None else {}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> tuple[FakeClient, Clock, LiveScene]:
    client, clock = FakeClient(), Clock()
    scene = LiveScene(
        SceneTable("vigil-state", client), "gate-north", INITIAL, 10.0, background=False, clock=clock
    )
    return client, clock, scene


def test_no_item_is_the_initial_scene_and_an_item_applies_after_refresh_s(world) -> None:
    client, clock, scene = world
    # GIVEN no item WHEN called THEN the configured scene, read once
    assert (scene(), scene.revision, client.reads) == (INITIAL, None, 1)
    # WHEN an operator writes revision 1, THEN calls within refresh_s do not read again
    client.item = to_item("gate-north", FENCE, 1, "alice")
    clock.now += 9.9
    assert (scene(), client.reads) == (INITIAL, 1)
    # AND the first call after refresh_s reads and returns the new scene
    clock.now += 0.1
    assert (scene(), scene.revision, client.reads) == (FENCE, 1, 2)
    # WHEN the item is deleted THEN the configured scene is back
    client.item = None
    clock.now += 10
    assert (scene(), scene.revision) == (INITIAL, None)


def test_a_refused_item_keeps_the_last_good_scene_and_is_said_once(world, caplog) -> None:
    client, clock, scene = world
    client.item = to_item("gate-north", FENCE, 1, "alice")
    assert scene() == FENCE
    # GIVEN revision 2 with a 2-point polygon
    bad = to_item("gate-north", FENCE, 2, "bob")
    bad["scene"] = {"S": '{"zones": [{"name": "fence", "polygon": [[0, 0], [1, 1]]}]}'}
    client.item = bad
    caplog.set_level(logging.WARNING, logger="worker.live_scene")
    # WHEN it is read on three refreshes
    for _ in range(3):
        clock.now += 10
        assert scene() == FENCE
    # THEN the last good scene stays, and one WARNING line names the camera, the revision and the field
    assert [r.getMessage() for r in caplog.records] == [
        (
            "scene refused camera=gate-north revision=2 (keeping revision 1): "
            "zones.0.polygon: a polygon needs at least 3 points, got 2"
        )
    ]
    assert scene.refusal == SceneRefusal(2, ("zones.0.polygon: a polygon needs at least 3 points, got 2",))
    assert scene_state(scene) == (
        1,
        "revision 2 refused: zones.0.polygon: a polygon needs at least 3 points, got 2",
    )
    # WHEN revision 3 fixes it THEN it applies and the refusal is gone
    client.item = to_item("gate-north", MASKED, 3, "bob")
    clock.now += 10
    assert (scene(), scene.revision, scene.refusal, scene_state(scene)) == (MASKED, 3, None, (3, None))


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "GetItem"
        ),
    ],
)
def test_dynamodb_errors_keep_the_last_good_scene_and_retry_next_refresh(world, caplog, error) -> None:
    client, clock, scene = world
    client.item = to_item("gate-north", FENCE, 1, "alice")
    assert scene() == FENCE
    # GIVEN DynamoDB fails WHEN the refresh is due THEN the scene stays, with a WARNING naming the camera
    client.fail = error
    clock.now += 10
    assert (scene(), scene.read_failures) == (FENCE, 1)
    assert "scene not read camera=gate-north" in caplog.text and "keeping revision 1" in caplog.text
    # AND it is tried again at the next refresh, not before
    client.fail, client.item = None, to_item("gate-north", MASKED, 2, "alice")
    clock.now += 5
    assert scene() == FENCE
    clock.now += 5
    assert scene() == MASKED


def test_background_refresh_never_blocks_the_caller() -> None:
    # GIVEN a live scene that reads in the background WHEN the refresh is due THEN the call returns the
    # scene in use at once, and the next one after the read the new scene
    client, clock = FakeClient(), Clock()
    scene = LiveScene(SceneTable("vigil-state", client), "cam", INITIAL, 10.0, clock=clock)
    assert scene() == INITIAL
    client.item = to_item("cam", FENCE, 1, "alice")
    clock.now += 10
    scene()
    for _ in range(200):
        if scene() == FENCE:
            break
        time.sleep(0.01)
    assert (scene(), scene.revision) == (FENCE, 1)
