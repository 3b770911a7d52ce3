"""The camera scene item (`contracts.camera_scene_item`): the model <-> item mapping, field-named
errors, and the revision condition that makes two concurrent saves a conflict, not an overwrite."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from contracts.camera_scene import CameraScene, Zone
from contracts.camera_scene_item import (
    SceneItemError,
    StoredScene,
    from_item,
    item_revision,
    parse_scene,
    pretty,
    put_request,
    to_item,
)

NOW = datetime(2026, 3, 1, 22, 15, tzinfo=UTC)
SCENE = CameraScene(zones=[Zone(name="fence", polygon=[(0.1, 0.5), (0.9, 0.5), (0.9, 1.0), (0.1, 1.0)])])


def test_an_item_round_trips_to_the_same_scene() -> None:
    # GIVEN a scene written as revision 3 WHEN the item is read back THEN it is the same scene, revision and author
    item = to_item("gate-north", SCENE, 3, "alice", NOW)
    assert from_item("gate-north", item) == StoredScene(
        "gate-north", SCENE, 3, "2026-03-01T22:15:00.000Z", "alice"
    )
    assert item["id"] == {"S": "camera-scene#gate-north"}
    assert json.loads(item["scene"]["S"])["zones"][0]["name"] == "fence"


def test_a_bad_item_names_each_field_without_pydantics_prefix() -> None:
    # GIVEN an item whose zone has 2 points and whose schedule names no real time zone
    scene = {
        "zones": [{"name": "fence", "polygon": [[0, 0], [1, 1]]}],
        "schedule": {"timezone": "Mars/Olympus"},
    }
    item = {"id": {"S": "camera-scene#gate-north"}, "scene": {"S": json.dumps(scene)}, "revision": {"N": "7"}}
    # WHEN it is read THEN the error says which camera, which revision and which fields
    with pytest.raises(SceneItemError) as refused:
        from_item("gate-north", item)
    assert (refused.value.camera_id, refused.value.revision, refused.value.errors) == (
        "gate-north",
        7,
        [
            "zones.0.polygon: a polygon needs at least 3 points, got 2",
            "schedule.timezone: unknown time zone 'Mars/Olympus' (an IANA name such as 'Europe/Berlin')",
        ],
    )


def test_an_item_without_scene_or_revision_is_refused_as_revision_0() -> None:
    with pytest.raises(SceneItemError) as refused:
        from_item("cam", {"id": {"S": "camera-scene#cam"}})
    assert (refused.value.revision, refused.value.errors) == (
        0,
        ["scene: missing (a JSON string of the camera's scene)"],
    )
    assert item_revision({"revision": {"N": "not a number"}}) == 0


def test_the_first_write_needs_no_item_and_later_ones_the_revision_read() -> None:
    # GIVEN nothing stored yet WHEN a scene is written THEN the put requires no revision and makes 1
    first = put_request("vigil-state", "cam", SCENE, 0, "alice", NOW)
    assert (first["Item"]["revision"], first["ConditionExpression"], first["ExpressionAttributeNames"]) == (
        {"N": "1"},
        "attribute_not_exists(#rev)",
        {"#rev": "revision"},
    )
    # GIVEN revision 4 was read WHEN written THEN the put requires 4 still and makes 5
    later = put_request("vigil-state", "cam", SCENE, 4, "bob", NOW)
    assert (later["Item"]["revision"], later["ConditionExpression"], later["ExpressionAttributeValues"]) == (
        {"N": "5"},
        "#rev = :expected",
        {":expected": {"N": "4"}},
    )


def test_pretty_leaves_defaults_out_and_parses_back() -> None:
    text = pretty(SCENE)
    assert json.loads(text) == {
        "zones": [{"name": "fence", "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0], [0.1, 1.0]]}]
    }
    assert parse_scene(text) == SCENE
