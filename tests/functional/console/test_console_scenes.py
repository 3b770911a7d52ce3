"""The scene page (`/cameras/{camera_id}/scene`) over the seeded world: the camera's latest snapshot
under the editor, a save conditional on the page's revision, a refusal that names the field and
writes nothing, a conflict between two supervisors, roles, sites and CSRF."""

from __future__ import annotations

import html
import json
import re

import pytest
from console_world import World

from console.operators import add_operator
from contracts.camera_scene import CameraScene
from contracts.camera_scene_item import get_request, item_revision, parse_scene

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
REVISION = re.compile(r'name="revision" value="(\d+)"')
FENCE = {
    "zones": [
        {
            "name": "fence",
            "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0], [0.1, 1.0]],
            "event_type": "intrusion",
        }
    ],
    "schedule": {
        "timezone": "Europe/London",
        "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "06:00"}],
    },
}


def form(client, camera_id: str) -> dict[str, str]:
    page = client.get(f"/cameras/{camera_id}/scene")
    assert page.status_code == 200, page.text
    return {"csrf_token": CSRF.search(page.text).group(1), "revision": REVISION.search(page.text).group(1)}


def stored(world: World, camera_id: str) -> tuple[int, CameraScene | None]:
    item = world.dynamodb.get_item(**get_request(world.stack.names.state_table, camera_id, True)).get("Item")
    return (0, None) if item is None else (item_revision(item), parse_scene(item["scene"]["S"]))


def test_the_page_shows_the_latest_snapshot_and_a_save_applies(world: World, client) -> None:
    # GIVEN lobby-1 with alerts and no scene yet WHEN its page opens
    page = client.get("/cameras/lobby-1/scene")
    newest = [a for a in world.by_camera("lobby-1") if a.snapshot is not None][-1]
    # THEN the editor sits over the newest alert's snapshot (through the console's media route), revision 0
    assert page.status_code == 200
    assert f'<img id="scene-still" src="/alerts/{newest.alert_id}/media/snapshot"' in page.text
    assert REVISION.search(page.text).group(1) == "0"
    assert "nothing yet: the worker runs its configured scene" in page.text
    # WHEN the supervisor saves a zone and a night schedule
    response = client.post(
        "/cameras/lobby-1/scene", data={**form(client, "lobby-1"), "scene": json.dumps(FENCE)}
    )
    # THEN it is stored as revision 1, and the page says so
    assert (response.status_code, response.headers["location"]) == (303, "/cameras/lobby-1/scene?saved=1")
    assert stored(world, "lobby-1") == (1, CameraScene.model_validate(FENCE))
    again = client.get(response.headers["location"]).text
    assert 'id="scene-saved">Saved as revision 1.' in again
    assert REVISION.search(again).group(1) == "1"
    assert "revision 1, by local-operator" in again


def test_an_invalid_scene_names_the_field_and_writes_nothing(world: World, client) -> None:
    client.post("/cameras/lobby-1/scene", data={**form(client, "lobby-1"), "scene": json.dumps(FENCE)})
    # WHEN the supervisor submits a 2-point polygon and an unknown time zone
    bad = {
        "zones": [{"name": "gate", "polygon": [[0.2, 0.2], [0.4, 0.4]]}],
        "schedule": {"timezone": "Mars/Base"},
    }
    response = client.post(
        "/cameras/lobby-1/scene", data={**form(client, "lobby-1"), "scene": json.dumps(bad)}
    )
    # THEN a 400 page names each field, keeps their JSON to fix, and the stored scene is unchanged
    assert response.status_code == 400
    errors = re.search(
        r'<div class="scene-problem" id="scene-errors".*?</div>', response.text, re.DOTALL
    ).group(0)
    assert [html.unescape(line) for line in re.findall(r'<li class="mono">(.*?)</li>', errors)] == [
        "zones.0.polygon: a polygon needs at least 3 points, got 2",
        "schedule.timezone: unknown time zone 'Mars/Base' (an IANA name such as 'Europe/Berlin')",
    ]
    assert (
        json.loads(
            html.unescape(
                re.search(r'id="scene-json"[^>]*>(.*?)</textarea>', response.text, re.DOTALL).group(1)
            )
        )
        == bad
    )
    assert REVISION.search(response.text).group(1) == "1"
    assert stored(world, "lobby-1") == (1, CameraScene.model_validate(FENCE))
    # AND text that is not JSON is refused the same way
    response = client.post("/cameras/lobby-1/scene", data={**form(client, "lobby-1"), "scene": "{zones"})
    assert response.status_code == 400 and "scene: Invalid JSON" in response.text


def test_two_supervisors_saving_the_same_revision_the_second_is_a_conflict(
    world: World, console_client
) -> None:
    first, second = console_client(), console_client()
    loaded_first, loaded_second = form(first, "lobby-1"), form(second, "lobby-1")
    # WHEN both save from revision 0
    assert (
        first.post("/cameras/lobby-1/scene", data={**loaded_first, "scene": json.dumps(FENCE)}).status_code
        == 303
    )
    response = second.post(
        "/cameras/lobby-1/scene", data={**loaded_second, "scene": json.dumps({"zones": []})}
    )
    # THEN the second is a 409 that says who saved, keeps their JSON, and the first's scene stands
    assert response.status_code == 409
    assert "someone else saved this scene after you opened the page" in response.text
    assert "You started from\n  revision 0; it is now revision 1, saved by local-operator" in response.text
    assert stored(world, "lobby-1") == (1, CameraScene.model_validate(FENCE))


def test_an_operator_sees_the_scene_but_only_a_supervisor_saves_it(
    world: World, console_client, tmp_path
) -> None:
    path = tmp_path / "operators.json"
    bob = add_operator(path, "bob", "demo-hq")
    carol = add_operator(path, "carol", "demo-hq", role="supervisor")
    operator, supervisor = (
        console_client(sign_in=False, operators_file=str(path)),
        console_client(sign_in=False, operators_file=str(path)),
    )
    operator.get(f"/alerts?token={bob}")
    supervisor.get(f"/alerts?token={carol}")
    # GIVEN bob (operator) WHEN he opens the page THEN he sees it read-only; his POST is a 403, nothing written
    page = operator.get("/cameras/lobby-1/scene").text
    assert 'data-editable="false"' in page and 'id="save-scene"' not in page
    assert ">Zones</a>" in operator.get("/cameras").text
    refused = operator.post(
        "/cameras/lobby-1/scene", data={**form(operator, "lobby-1"), "scene": json.dumps(FENCE)}
    )
    assert refused.status_code == 403 and "not change a camera&#39;s scene" in refused.text
    assert stored(world, "lobby-1") == (0, None)
    # AND carol (supervisor) may
    assert ">Edit zones</a>" in supervisor.get("/cameras").text
    saved = supervisor.post(
        "/cameras/lobby-1/scene", data={**form(supervisor, "lobby-1"), "scene": json.dumps(FENCE)}
    )
    assert saved.status_code == 303
    assert stored(world, "lobby-1")[0] == 1
    # AND another site's camera is a 404 to both, as if it did not exist
    assert supervisor.get("/cameras/dock-2/scene").status_code == 404
    assert (
        supervisor.post(
            "/cameras/dock-2/scene", data={**form(supervisor, "lobby-1"), "scene": json.dumps(FENCE)}
        ).status_code
        == 404
    )
    assert supervisor.get("/cameras/no-such-camera/scene").status_code == 404


@pytest.mark.parametrize("headers", [{"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}])
def test_a_cross_site_save_is_refused(world: World, client, headers) -> None:
    data = {**form(client, "lobby-1"), "scene": json.dumps(FENCE)}
    assert client.post("/cameras/lobby-1/scene", data=data, headers=headers).status_code == 403
    assert (
        client.post(
            "/cameras/lobby-1/scene", data={k: v for k, v in data.items() if k != "csrf_token"}
        ).status_code
        == 403
    )
    assert stored(world, "lobby-1") == (0, None)


def test_names_are_escaped_and_a_refused_item_shows_on_the_cameras_page(world: World, client) -> None:
    # GIVEN a stored item written by hand with markup in a zone name and a 2-point polygon
    hostile = {"zones": [{"name": "<script>alert(1)</script>", "polygon": [[0, 0], [1, 1]]}]}
    world.dynamodb.put_item(
        TableName=world.stack.names.state_table,
        Item={
            "id": {"S": "camera-scene#lobby-1"},
            "scene": {"S": json.dumps(hostile)},
            "revision": {"N": "4"},
        },
    )
    # AND the worker's status says it refused it
    world.dynamodb.update_item(
        TableName=world.stack.names.state_table,
        Key={"id": {"S": "camera-status#lobby-1"}},
        UpdateExpression="SET scene_revision = :r, scene_error = :e",
        ExpressionAttributeValues={
            ":r": {"N": "3"},
            ":e": {"S": "revision 4 refused: zones.0.polygon: a polygon needs at least 3 points, got 2"},
        },
    )
    # WHEN the scene page and the Cameras page open THEN nothing is executable, and both say what is wrong
    page = client.get("/cameras/lobby-1/scene").text
    assert "<script>alert(1)" not in page
    assert "The stored scene (revision 4) is not valid" in page
    assert REVISION.search(page).group(1) == "4"
    cameras = client.get("/cameras").text
    assert "uses revision 3" in cameras and "refused: revision 4 refused: zones.0.polygon" in cameras


def test_alb_supervisor_groups_may_save_and_other_groups_only_look(
    world: World, console_client, alb_signer
) -> None:
    from console_world import ALB_ARN

    client = console_client(
        sign_in=False,
        key_source=alb_signer.key_source,
        auth_mode="alb",
        alb_arn=ALB_ARN,
        group_sites={"hq-guards": ["demo-hq"]},
        supervisor_groups=("hq-supervisors",),
    )
    guard = {"x-amzn-oidc-data": alb_signer.token({"sub": "u-2", "cognito:groups": ["hq-guards"]})}
    chief = {
        "x-amzn-oidc-data": alb_signer.token(
            {"sub": "u-3", "cognito:groups": ["hq-guards", "hq-supervisors"]}
        )
    }
    # GIVEN a guard (sites from hq-guards) and their chief (also in hq-supervisors) WHEN each opens lobby-1's scene
    # THEN the guard's page is read-only, the chief's editable
    assert 'data-editable="false"' in client.get("/cameras/lobby-1/scene", headers=guard).text
    page = client.get("/cameras/lobby-1/scene", headers=chief)
    assert 'data-editable="true"' in page.text
    data = {"csrf_token": CSRF.search(page.text).group(1), "revision": "0", "scene": json.dumps(FENCE)}
    assert client.post("/cameras/lobby-1/scene", data=data, headers=guard).status_code == 403
    assert client.post("/cameras/lobby-1/scene", data=data, headers=chief).status_code == 303
    assert stored(world, "lobby-1") == (1, CameraScene.model_validate(FENCE))


def test_the_alert_page_shows_the_zone_of_a_record_that_names_one(world: World, client, monkeypatch) -> None:
    import console.store
    from contracts.alert import AlertRecord

    class ZonedAlert(AlertRecord):  # the v2 record names the zone; v1 records have none
        zone: str | None = None

    monkeypatch.setattr(console.store, "AlertRecord", ZonedAlert)
    # GIVEN a v1 alert (no zone) THEN its page has no Zone line
    plain = world.by_camera("lobby-1")[0]
    assert 'id="alert-zone"' not in client.get(f"/alerts/{plain.alert_id}").text
    # GIVEN the history item of a record in zone "loading bay" WHEN its page opens THEN the zone is shown
    key = world.dynamodb.query(
        TableName="vigil-alert-history",
        IndexName="by-alert-id",
        KeyConditionExpression="alert_id = :a",
        ExpressionAttributeValues={":a": {"S": plain.alert_id}},
    )["Items"][0]
    zoned = json.loads(plain.model_dump_json()) | {"zone": "loading bay"}
    world.dynamodb.update_item(
        TableName="vigil-alert-history",
        Key={"camera_id": key["camera_id"], "sk": key["sk"]},
        UpdateExpression="SET alert = :a",
        ExpressionAttributeValues={":a": {"S": json.dumps(zoned)}},
    )
    assert '<dd id="alert-zone">loading bay</dd>' in client.get(f"/alerts/{plain.alert_id}").text
