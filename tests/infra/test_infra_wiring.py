"""The root wires the modules: every module it calls exists, every argument it passes is declared, every
required input is passed, and every reference (var., local., module., resource, data) resolves."""

from __future__ import annotations

import re
from pathlib import Path

import infra_hcl
import pytest

CONFIG_FOLDERS = [infra_hcl.INFRA_DIR, *(infra_hcl.MODULES_DIR / name for name in infra_hcl.module_names())]

DEPLOY_OUTPUTS = {
    "region",
    "ecr_repository_url",
    "ecs_cluster_name",
    "ecs_service_name",
    "worker_task_definition_family",
    "worker_container_name",
    "sagemaker_endpoint_name",
    "sagemaker_training_role_arn",
    "archive_bucket_name",
    "archive_kms_key_arn",
    "alert_stream_name",
    "alert_stream_arn",
    "alert_topic_arn",
    "alert_function_name",
    "state_table_name",
    "idempotency_table_name",
    "camera_stream_names",
    "ops_topic_arn",
    "alert_history_table_name",
    "console_url",
    "console_ecr_repository_url",
    "console_service_name",
}


def code_text(folder: Path) -> str:
    """All .tf code of a folder without comments (no '#' appears inside our strings)."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.tf")))
    return re.sub(r"#[^\n]*", "", text)


def folder_id(folder: Path) -> str:
    return "root" if folder == infra_hcl.INFRA_DIR else folder.name


@pytest.mark.parametrize("name", sorted(infra_hcl.root().modules))
def test_root_module_sources_exist_and_arguments_are_declared(name):
    # GIVEN a module block of the root
    block = infra_hcl.root().modules[name]
    source = infra_hcl.INFRA_DIR / block["source"]
    # THEN its source is a local module folder named like the block
    assert block["source"] == f"./modules/{name}"
    assert source.is_dir()
    module = infra_hcl.load_config(source.resolve())
    passed = infra_hcl.module_arguments(block)
    # AND every argument is a variable of the module, and every required variable is passed
    assert sorted(passed - set(module.variables)) == []
    assert sorted(module.required_variables() - passed) == []


@pytest.mark.parametrize("folder", CONFIG_FOLDERS, ids=folder_id)
def test_every_reference_resolves(folder):
    config = infra_hcl.load_config(folder)
    code = code_text(folder)
    undeclared = {
        "var": set(re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", code)) - set(config.variables),
        "local": set(re.findall(r"\blocal\.([a-z_][a-z0-9_]*)", code)) - set(config.locals),
        "data": {
            f"{t}.{n}"
            for t, n in re.findall(r"\bdata\.(aws_[a-z0-9_]+)\.([a-z0-9_]+)", code)
            if n not in config.data.get(t, {})
        },
        "resource": {
            f"{t}.{n}"
            for t, n in re.findall(r"(?<![\w.\"])(aws_[a-z0-9_]+)\.([a-z0-9_]+)", code)
            if n not in config.resources.get(t, {})
        },
    }
    assert {kind: sorted(names) for kind, names in undeclared.items() if names} == {}


def test_every_module_output_the_root_reads_exists():
    code = code_text(infra_hcl.INFRA_DIR)
    missing = sorted(
        f"{name}.{output}"
        for name, output in set(re.findall(r"\bmodule\.([a-z_]+)\.([a-z_]+)", code))
        if output not in infra_hcl.module(name).outputs
    )
    assert missing == []


def test_root_outputs_what_the_deploy_reads():
    assert sorted(DEPLOY_OUTPUTS - set(infra_hcl.root().outputs)) == []


def test_worker_gets_its_stages_wired_from_the_other_modules():
    root = infra_hcl.root().modules["worker"]
    assert {
        key: root[key] for key in sorted(root) if key.endswith(("_arn", "_name", "_ids", "camera_streams"))
    } == {
        "alert_kms_key_arn": "${module.alerts.alert_kms_key_arn}",
        "alert_stream_arn": "${module.alerts.alert_stream_arn}",
        "alert_stream_name": "${module.alerts.alert_stream_name}",
        "archive_bucket_arn": "${module.training_data.archive_bucket_arn}",
        "archive_bucket_name": "${module.training_data.archive_bucket_name}",
        "archive_kms_key_arn": "${module.training_data.archive_kms_key_arn}",
        "camera_streams": "${module.video_ingest.camera_streams}",
        "endpoint_arn": "${module.model.endpoint_arn}",
        "endpoint_name": "${module.model.endpoint_name}",
        "security_group_ids": ["${module.network.worker_security_group_id}"],
        "subnet_ids": "${module.network.private_subnet_ids}",
        "video_kms_key_arn": "${module.video_ingest.video_kms_key_arn}",
    }


def test_worker_environment_names_match_the_extra_environment_guard():
    # GIVEN the environment the worker module builds
    worker = infra_hcl.module("worker")
    wired = set(re.findall(r"\b([A-Z][A-Z0-9_]+) = ", worker.locals["environment"]))
    # THEN it is exactly the expected set, and extra_environment may not override any of it
    assert wired == {
        "AWS_REGION",
        "VIGIL_ALERT_STREAM",
        "VIGIL_ARCHIVE_BUCKET",
        "VIGIL_CAMERAS",
        "VIGIL_ENDPOINT_NAME",
        "VIGIL_FLEET_BATCH_ENABLED",
        "VIGIL_FLEET_BATCH_MAX",
        "VIGIL_FLEET_BATCH_WAIT_MS",
        "VIGIL_FRAME_SAMPLE_FPS",
        "VIGIL_STATE_TABLE",
    }
    guard = worker.variables["extra_environment"]["validation"][0]["condition"]
    assert set(re.findall(r'"([A-Z][A-Z0-9_]+)"', guard)) == wired


def test_aws_environment_uses_the_names_the_local_twin_sets():
    # GIVEN the environment LocalStack gives every Vigil process on a laptop
    from local.stack import LocalStack

    local_names = {name for name in LocalStack().env() if name.startswith("VIGIL_")}
    worker_env = set(re.findall(r"\b(VIGIL_[A-Z0-9_]+) = ", infra_hcl.module("worker").locals["environment"]))
    lambda_env = set(
        infra_hcl.module("alerts").resource("aws_lambda_function", "this")["environment"][0]["variables"]
    )
    console_env = set(infra_hcl.module("console").locals["environment"])
    # THEN AWS sets the same names for the resources both have (the AWS side adds endpoint and cameras)
    assert worker_env | console_env | {n for n in lambda_env if n.startswith("VIGIL_")} >= local_names
    assert sorted(worker_env - local_names) == [
        "VIGIL_CAMERAS",
        "VIGIL_ENDPOINT_NAME",
        "VIGIL_FLEET_BATCH_ENABLED",
        "VIGIL_FLEET_BATCH_MAX",
        "VIGIL_FLEET_BATCH_WAIT_MS",
        "VIGIL_FRAME_SAMPLE_FPS",
    ]


def test_camera_streams_output_has_the_shape_the_worker_declares():
    output = infra_hcl.module("video_ingest").outputs["camera_streams"]["value"]
    declared = infra_hcl.module("worker").variables["camera_streams"]["type"]
    for attribute in ("site", "stream_name", "stream_arn"):
        assert f"{attribute} = " in output
        assert f"{attribute} = string" in declared


def test_lambda_zip_default_is_the_same_at_root_and_module():
    assert infra_hcl.root().variables["alert_lambda_zip_path"]["default"] == "../dist/alert_lambda.zip"
    assert infra_hcl.module("alerts").variables["lambda_zip_path"]["default"] == "../dist/alert_lambda.zip"


@pytest.mark.parametrize(
    ("root_variable", "module_name", "module_variable"),
    [
        ("cameras", "video_ingest", "cameras"),
        ("archive_lifecycle_days", "training_data", "lifecycle_days"),
        ("endpoint_autoscaling", "model", "autoscaling"),
        ("endpoint_data_capture", "model", "data_capture"),
        ("worker_autoscaling", "worker", "autoscaling"),
        ("worker_fleet_batch", "worker", "fleet_batch"),
        ("alert_stream", "alerts", "stream"),
        ("alert_lambda", "alerts", "lambda"),
        ("alert_event_source", "alerts", "event_source"),
        ("alert_subscriptions", "alerts", "subscriptions"),
        ("alarm_thresholds", "observability", "thresholds"),
        ("console_cognito", "console", "cognito"),
    ],
)
def test_root_object_variables_repeat_the_module_type(root_variable, module_name, module_variable):
    # a pass-through object typed differently at the root would silently drop or default attributes
    root_type = infra_hcl.root().variables[root_variable]["type"]
    assert root_type == infra_hcl.module(module_name).variables[module_variable]["type"]
    assert infra_hcl.module_arguments(infra_hcl.root().modules[module_name])
    assert infra_hcl.root().modules[module_name][module_variable] == f"${{var.{root_variable}}}"


def test_the_alert_history_table_has_one_home_and_the_console_reads_it_from_there():
    # GIVEN every DynamoDB table of every module
    tables = {
        (module_name, name): body["name"]
        for module_name in infra_hcl.module_names()
        for name, body in infra_hcl.module(module_name).resources.get("aws_dynamodb_table", {}).items()
    }
    # THEN the history is one table, the alerts module's (its writer), and no two tables share a name
    assert [key for key, name in tables.items() if name.endswith("-alert-history")] == [("alerts", "history")]
    assert len(set(tables.values())) == len(tables)
    # AND the Lambda and the console are given that table, and the console its key
    lambda_env = infra_hcl.module("alerts").resource("aws_lambda_function", "this")["environment"][0]["variables"]
    assert lambda_env["VIGIL_ALERT_HISTORY_TABLE"] == "${aws_dynamodb_table.history.name}"
    assert infra_hcl.module("console").locals["environment"]["VIGIL_ALERT_HISTORY_TABLE"] == (
        "${var.alert_history_table_name}"
    )
    console = infra_hcl.root().modules["console"]
    assert {key: console[key] for key in sorted(console) if key.startswith("alert_history_")} == {
        "alert_history_kms_key_arn": "${module.alerts.alert_kms_key_arn}",
        "alert_history_table_arn": "${module.alerts.alert_history_table_arn}",
        "alert_history_table_name": "${module.alerts.alert_history_table_name}",
    }


def test_console_gets_the_network_cluster_and_data_of_the_other_modules():
    console = infra_hcl.root().modules["console"]
    assert {
        key: console[key]
        for key in sorted(console)
        if key.endswith(("_arn", "_name", "_id", "_ids")) and not key.startswith("alert_history_")
    } == {
        "archive_bucket_arn": "${module.training_data.archive_bucket_arn}",
        "archive_bucket_name": "${module.training_data.archive_bucket_name}",
        "archive_kms_key_arn": "${module.training_data.archive_kms_key_arn}",
        "certificate_arn": "${var.console_certificate_arn}",
        "cluster_arn": "${module.worker.cluster_arn}",
        "domain_name": "${var.console_domain_name}",
        "endpoints_security_group_id": "${module.network.endpoints_security_group_id}",
        "gateway_prefix_list_ids": "${module.network.gateway_prefix_list_ids}",
        "state_kms_key_arn": "${module.worker.worker_kms_key_arn}",
        "state_table_arn": "${module.worker.state_table_arn}",
        "state_table_name": "${module.worker.state_table_name}",
        "subnet_ids": "${module.network.private_subnet_ids}",
        "vpc_id": "${module.network.vpc_id}",
    }
