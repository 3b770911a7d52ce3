"""Terraform's camera scene seed against the code (issue 17): the example's scenes are valid
`CameraScene`s, the seeded item has the shape `contracts.camera_scene_item` reads, Terraform never
overwrites an operator's edit, and the console may write scene items only."""

from __future__ import annotations

import re

import infra_hcl
import pytest

from contracts.camera_scene import CameraScene
from contracts.camera_scene_item import from_item, parse_scene, to_item
from contracts.camera_status import STATUS_PREFIX

EXAMPLE = infra_hcl.parse_file(infra_hcl.INFRA_DIR / "terraform.tfvars.example")


def example_scenes() -> dict[str, str]:
    return {camera: infra_hcl.hcl_string(text) for camera, text in EXAMPLE["camera_scenes"].items()}


@pytest.mark.parametrize("camera_id", sorted(EXAMPLE["camera_scenes"]))
def test_the_example_seed_is_a_valid_camera_scene_of_a_known_camera(camera_id: str) -> None:
    # GIVEN the scene JSON terraform.tfvars.example seeds WHEN the worker's contract reads it THEN it is valid
    scene = parse_scene(example_scenes()[camera_id])
    assert isinstance(scene, CameraScene) and scene.zones and scene.schedule is not None
    assert camera_id in EXAMPLE["cameras"]


def seeded_item() -> dict:
    return infra_hcl.module("worker").resource("aws_dynamodb_table_item", "this")


def test_the_seeded_item_has_the_shape_the_worker_reads() -> None:
    # GIVEN the worker module's seed item (jsonencode of DynamoDB attribute values)
    expression = seeded_item()["item"]
    attributes = dict(re.findall(r"(\w+)\s*=\s*\{\s*(S|N)\s*=", expression))
    # THEN it names the same attributes, with the same types, as the contract's own item
    reference = to_item("gate-north", CameraScene(), 1, "terraform")
    assert attributes == {name: next(iter(value)) for name, value in reference.items()}
    assert 'id = {S = "camera-scene#${each.key}"}' in expression and 'revision = {N = "1"}' in expression
    # AND an item written that way from the example's JSON reads back as that scene, revision 1
    scene_text = example_scenes()["gate-north"]
    item = {**reference, "scene": {"S": scene_text}}
    assert (from_item("gate-north", item).scene, from_item("gate-north", item).revision) == (
        parse_scene(scene_text),
        1,
    )


def test_an_apply_never_overwrites_an_operators_edit() -> None:
    # GIVEN the seed WHEN an operator changed the item since THEN Terraform ignores the item's content
    assert seeded_item()["lifecycle"] in ([{"ignore_changes": ["${item}"]}], [{"ignore_changes": ["item"]}])
    assert seeded_item()["for_each"] == "${var.camera_scenes}"


def test_the_root_passes_the_scenes_to_the_worker_and_checks_their_cameras() -> None:
    root = infra_hcl.root()
    assert root.modules["worker"]["camera_scenes"] == "${var.camera_scenes}"
    conditions = [v["condition"] for v in root.variables["camera_scenes"]["validation"]]
    assert any("var.cameras" in condition for condition in conditions)
    assert any("jsondecode" in condition for condition in conditions)


def test_the_console_reads_status_and_scene_items_and_writes_scene_items_only() -> None:
    # GIVEN the console task role's state table statements
    statements = {
        s["sid"]: s for s in infra_hcl.statements(infra_hcl.module("console").policy_document("task"))
    }
    read, write = statements["DynamoDBSceneRead"], statements["DynamoDBSceneWrite"]
    # THEN GetItem is limited to status and scene items, PutItem to scene items (never checkpoints or leases)
    assert (read["actions"], read["condition"][0]["values"]) == (
        ["dynamodb:GetItem"],
        [f"{STATUS_PREFIX}*", "camera-scene#*"],
    )
    assert (write["actions"], write["condition"][0]["values"]) == (["dynamodb:PutItem"], ["camera-scene#*"])
    assert write["condition"][0]["variable"] == "dynamodb:LeadingKeys"
