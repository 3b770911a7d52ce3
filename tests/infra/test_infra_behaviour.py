"""What the resources are configured to do: the alert path's failure handling, KVS retention, the archive
lifecycle, scaling signals, alarms, and the domain rules in validation blocks (regexes run in Python)."""

from __future__ import annotations

import re

import infra_hcl
import pytest


def validation_regex(module_name: str, variable: str) -> re.Pattern[str]:
    """The pattern inside `can(regex("...", var.<variable>))` of the variable's first regex validation."""
    for validation in infra_hcl.module(module_name).variables[variable]["validation"]:
        match = re.search(r'regex\("((?:[^"\\]|\\.)*)", var\.' + variable + r"\)", validation["condition"])
        if match:
            return re.compile(infra_hcl.hcl_string(match.group(1)))
    raise AssertionError(f"{module_name}.{variable} has no regex validation")


# --- alerts: the event source mapping says what the handler does -----------------------------------


def test_event_source_mapping_reports_item_failures_bisects_and_dead_letters():
    alerts = infra_hcl.module("alerts")
    mapping = alerts.resource("aws_lambda_event_source_mapping", "this")
    assert mapping == {
        "event_source_arn": "${aws_kinesis_stream.this.arn}",
        "function_name": "${aws_lambda_function.this.arn}",
        "starting_position": "${var.event_source.starting_position}",
        "batch_size": "${var.event_source.batch_size}",
        "maximum_batching_window_in_seconds": "${var.event_source.maximum_batching_window_s}",
        "parallelization_factor": "${var.event_source.parallelization_factor}",
        "maximum_retry_attempts": "${var.event_source.maximum_retry_attempts}",
        "maximum_record_age_in_seconds": "${var.event_source.maximum_record_age_s}",
        "bisect_batch_on_function_error": True,
        "function_response_types": ["ReportBatchItemFailures"],
        "destination_config": [{"on_failure": [{"destination_arn": "${aws_sqs_queue.this.arn}"}]}],
    }


def test_event_source_retries_through_an_outage_but_never_past_the_record_age():
    # Issue 15: an SNS outage must not discard alerts, so the mapping retries until a record is
    # maximum_record_age_s old (-1 retries); the age is bounded, and within the stream's retention.
    variable = infra_hcl.module("alerts").variables["event_source"]
    conditions = [v["condition"] for v in variable["validation"]]
    assert (
        "${var.event_source.maximum_retry_attempts >= -1 && var.event_source.maximum_retry_attempts <= 10000}"
        in conditions
    )
    assert (
        "${var.event_source.maximum_record_age_s >= 60 && var.event_source.maximum_record_age_s <= 604800}"
        in conditions
    )
    assert "${try(var.event_source.maximum_record_age_s <= var.stream.retention_hours * 3600, false)}" in conditions
    assert "maximum_retry_attempts = optional(number, -1)" in variable["type"]
    assert "maximum_record_age_s = optional(number, 21600)" in variable["type"]


def test_alert_lambda_runs_the_powertools_handler_with_its_environment():
    function = infra_hcl.module("alerts").resource("aws_lambda_function", "this")
    assert (function["handler"], function["runtime"], function["filename"]) == (
        "alert_lambda.handler.lambda_handler",
        "python3.12",
        "${var.lambda_zip_path}",
    )
    assert function["source_code_hash"] == "${filebase64sha256(var.lambda_zip_path)}"
    assert function["environment"] == [
        {
            "variables": {
                "VIGIL_ALERT_TOPIC_ARN": "${aws_sns_topic.this.arn}",
                "VIGIL_IDEMPOTENCY_TABLE": "${aws_dynamodb_table.idempotency.name}",
                "VIGIL_IDEMPOTENCY_TTL_S": "${tostring(local.idempotency_ttl_s)}",
                "VIGIL_LINK_EXPIRY_S": "${tostring(var.link_expiry_s)}",
                "VIGIL_SITE_TIMEZONES": "${jsonencode(var.site_timezones)}",
                "VIGIL_DEAD_LETTER_QUEUE_URL": "${aws_sqs_queue.this.url}",
                "VIGIL_ALERT_HISTORY_TABLE": "${aws_dynamodb_table.history.name}",
                "VIGIL_CONSOLE_URL": "${var.console_url}",
                "POWERTOOLS_SERVICE_NAME": "vigil-alerts",
                "POWERTOOLS_LOG_LEVEL": "${var.lambda.log_level}",
            }
        }
    ]
    assert function["logging_config"] == [
        {"log_format": "JSON", "log_group": "${aws_cloudwatch_log_group.this.name}"}
    ]


def test_idempotency_ttl_is_never_shorter_than_the_stream_keeps_records():
    alerts = infra_hcl.module("alerts")
    assert alerts.locals["idempotency_ttl_s"] == "${coalesce(var.idempotency_ttl_s, var.stream.retention_hours * 3600)}"
    (validation,) = alerts.variables["idempotency_ttl_s"]["validation"]
    assert "var.idempotency_ttl_s >= var.stream.retention_hours * 3600" in validation["condition"]


def test_history_table_has_the_keys_and_indexes_alert_lambda_history_writes():
    # GIVEN the layout alert_lambda/history.py documents and writes
    table = infra_hcl.module("alerts").resource("aws_dynamodb_table", "history")
    # THEN the table has exactly those keys and indexes
    assert (table["hash_key"], table["range_key"]) == ("camera_id", "sk")
    assert {(i["name"], i["hash_key"], i.get("range_key"), i["projection_type"]) for i in table["global_secondary_index"]} == {
        ("by-site", "site", "sk", "ALL"),
        ("by-month", "month", "sk", "ALL"),
        ("by-alert-id", "alert_id", None, "KEYS_ONLY"),
    }
    assert table["point_in_time_recovery"] == [{"enabled": True}]


def test_idempotency_table_has_key_id_and_ttl_on_expiration():
    table = infra_hcl.module("alerts").resource("aws_dynamodb_table", "idempotency")
    assert (table["hash_key"], table["attribute"], table["ttl"]) == (
        "id",
        [{"name": "id", "type": "S"}],
        [{"attribute_name": "expiration", "enabled": True}],
    )


def test_state_table_has_key_id_and_point_in_time_recovery():
    table = infra_hcl.module("worker").resource("aws_dynamodb_table", "this")
    assert (table["hash_key"], table["attribute"], table["point_in_time_recovery"]) == (
        "id",
        [{"name": "id", "type": "S"}],
        [{"enabled": True}],
    )


def test_alert_stream_defaults_to_on_demand():
    alerts = infra_hcl.module("alerts")
    assert 'mode = optional(string, "ON_DEMAND")' in alerts.variables["stream"]["type"]
    stream = alerts.resource("aws_kinesis_stream", "this")
    assert stream["stream_mode_details"] == [{"stream_mode": "${var.stream.mode}"}]
    assert stream["shard_count"] == '${var.stream.mode == "PROVISIONED" ? var.stream.shard_count : null}'


def test_subscriptions_carry_their_filter_policy_on_message_attributes():
    subscription = infra_hcl.module("alerts").resource("aws_sns_topic_subscription", "this")
    assert (
        subscription["filter_policy"]
        == "${each.value.filter_policy == null ? null : jsonencode(each.value.filter_policy)}"
    )
    assert (
        subscription["filter_policy_scope"]
        == '${each.value.filter_policy == null ? null : "MessageAttributes"}'
    )


# --- video ingest --------------------------------------------------------------------------------------


def test_kvs_retention_is_validated_to_at_least_24_hours_and_used_per_camera():
    video = infra_hcl.module("video_ingest")
    conditions = [v["condition"] for v in video.variables["cameras"]["validation"]]
    assert (
        "${alltrue([for camera in values(var.cameras) : camera.retention_hours >= 24 && camera.retention_hours <= 87600])}"
        in conditions
    )
    assert "retention_hours = optional(number, 24)" in video.variables["cameras"]["type"]
    assert 'media_type = optional(string, "video/h264")' in video.variables["cameras"]["type"]
    stream = video.resource("aws_kinesis_video_stream", "this")
    assert (stream["for_each"], stream["data_retention_in_hours"], stream["media_type"]) == (
        "${var.cameras}",
        "${each.value.retention_hours}",
        "${each.value.media_type}",
    )


def test_tfvars_example_cameras_keep_media_at_least_a_day():
    example = infra_hcl.parse_file(infra_hcl.INFRA_DIR / "terraform.tfvars.example")
    assert all(camera.get("retention_hours", 24) >= 24 for camera in example["cameras"].values())


# --- training data lifecycle -----------------------------------------------------------------------------


def test_archive_lifecycle_rules_by_prefix():
    lifecycle = infra_hcl.module("training_data").resource("aws_s3_bucket_lifecycle_configuration", "archive")
    rules = {rule["id"]: {k: v for k, v in rule.items() if k != "id"} for rule in lifecycle["rule"]}
    assert rules == {
        "normal-clips": {
            "status": "Enabled",
            "filter": [{"prefix": "clips/"}],
            "transition": [
                {"days": "${local.days.clip_transition}", "storage_class": "${var.clip_storage_class}"}
            ],
            "expiration": [{"days": "${local.days.clip_expiration}"}],
        },
        "alert-clips": {
            "status": "Enabled",
            "filter": [{"prefix": "alerts/"}],
            "transition": [
                {"days": "${local.days.alert_clip_transition}", "storage_class": "${var.clip_storage_class}"}
            ],
            "expiration": [{"days": "${local.days.alert_clip_expiration}"}],
        },
        "snapshots": {
            "status": "Enabled",
            "filter": [{"prefix": "snapshots/"}],
            "expiration": [{"days": "${local.days.snapshot_expiration}"}],
        },
        "temporary-uploads": {"status": "Enabled", "filter": [{"prefix": "tmp/"}], "expiration": [{"days": 1}]},
        "noncurrent-versions-and-uploads": {
            "status": "Enabled",
            "filter": [{}],
            "noncurrent_version_expiration": [
                {"noncurrent_days": "${local.days.noncurrent_version_expiration}"}
            ],
            "abort_incomplete_multipart_upload": [{"days_after_initiation": 7}],
        },
    }


def test_alert_clips_are_kept_longer_than_normal_footage():
    variable = infra_hcl.module("training_data").variables["lifecycle_days"]
    conditions = [v["condition"] for v in variable["validation"]]
    assert "${var.lifecycle_days.alert_clip_expiration >= var.lifecycle_days.clip_expiration}" in conditions
    defaults = dict(re.findall(r"(\w+) = optional\(number, (\d+)\)", variable["type"]))
    assert (
        int(defaults["alert_clip_expiration"])
        > int(defaults["clip_expiration"])
        > int(defaults["clip_transition"])
    )
    assert int(defaults["clip_transition"]) >= 30  # STANDARD_IA, the default class, needs 30 days


# --- scaling -----------------------------------------------------------------------------------------------


def test_endpoint_scales_on_invocations_per_instance():
    model = infra_hcl.module("model")
    target = model.resource("aws_appautoscaling_target", "this")
    assert (target["service_namespace"], target["scalable_dimension"], target["resource_id"]) == (
        "sagemaker",
        "sagemaker:variant:DesiredInstanceCount",
        "endpoint/${aws_sagemaker_endpoint.this.name}/variant/${local.variant_name}",
    )
    (configuration,) = model.resource("aws_appautoscaling_policy", "this")[
        "target_tracking_scaling_policy_configuration"
    ]
    assert configuration["predefined_metric_specification"] == [
        {"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"}
    ]


def test_worker_service_scales_on_cpu_and_leaves_desired_count_to_scaling():
    worker = infra_hcl.module("worker")
    (configuration,) = worker.resource("aws_appautoscaling_policy", "cpu")[
        "target_tracking_scaling_policy_configuration"
    ]
    assert configuration["predefined_metric_specification"] == [
        {"predefined_metric_type": "ECSServiceAverageCPUUtilization"}
    ]
    assert worker.resource("aws_ecs_service", "this")["lifecycle"] == [{"ignore_changes": ["desired_count"]}]


def test_worker_service_scales_on_the_worst_cameras_frame_lag():
    # GIVEN the worker's second scaling policy
    worker = infra_hcl.module("worker")
    policy = worker.resource("aws_appautoscaling_policy", "lag")
    (configuration,) = policy["target_tracking_scaling_policy_configuration"]
    (custom,) = configuration["customized_metric_specification"]
    # THEN it tracks the Maximum of the fleet-wide series the metric filter derives from every camera's
    # FrameLagSeconds, the metric the alarms watch per camera
    assert custom == {
        "namespace": "${aws_cloudwatch_log_metric_filter.this.metric_transformation[0].namespace}",
        "metric_name": "${aws_cloudwatch_log_metric_filter.this.metric_transformation[0].name}",
        "statistic": "Maximum",
        "unit": "Seconds",
    }
    assert worker.locals["lag_metric"] == {
        "namespace": "Vigil", "name": "FrameLagSeconds", "dimension": "CameraId", "fleet_name": "FleetFrameLagSeconds"
    }
    alarm = infra_hcl.module("observability").resource("aws_cloudwatch_metric_alarm", "frame_lag")
    assert (alarm["namespace"], alarm["metric_name"], alarm["dimensions"]) == (
        "Vigil", "FrameLagSeconds", {"CameraId": "${each.key}"}
    )
    assert configuration["target_value"] == "${var.autoscaling.target_frame_lag_s}"


def test_worker_repository_is_immutable_and_scanned_and_cluster_has_insights():
    worker = infra_hcl.module("worker")
    repository = worker.resource("aws_ecr_repository", "this")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert repository["image_scanning_configuration"] == [{"scan_on_push": True}]
    assert worker.resource("aws_ecs_cluster", "this")["setting"] == [
        {"name": "containerInsights", "value": "enabled"}
    ]


def test_worker_task_is_fargate_with_sized_cpu_memory_and_logs():
    task = infra_hcl.module("worker").resource("aws_ecs_task_definition", "this")
    assert (task["requires_compatibilities"], task["network_mode"], task["cpu"], task["memory"]) == (
        ["FARGATE"],
        "awsvpc",
        "${var.cpu}",
        "${var.memory}",
    )
    assert "awslogs-group = aws_cloudwatch_log_group.this.name" in task["container_definitions"]
    assert "readonlyRootFilesystem = true" in task["container_definitions"]


def test_console_repository_is_immutable_and_its_task_reads_its_secret_from_secrets_manager():
    console = infra_hcl.module("console")
    repository = console.resource("aws_ecr_repository", "this")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert repository["image_scanning_configuration"] == [{"scan_on_push": True}]
    task = console.resource("aws_ecs_task_definition", "this")
    assert (task["requires_compatibilities"], task["network_mode"]) == (["FARGATE"], "awsvpc")
    definitions = task["container_definitions"]
    assert "readonlyRootFilesystem = true" in definitions
    assert '[{name = "VIGIL_CONSOLE_SECRET", valueFrom = aws_secretsmanager_secret.signing.arn}]' in definitions
    assert (
        '[for secret in aws_secretsmanager_secret.token : {name = "VIGIL_CONSOLE_TOKEN", valueFrom = secret.arn}]'
        in definitions
    )
    # the secrets' values are write-only: generated by an ephemeral resource, never stored in the state
    for name in ("signing", "token"):
        version = console.resource("aws_secretsmanager_secret_version", name)
        assert "secret_string" not in version
        assert version["secret_string_wo"].startswith(f"${{ephemeral.aws_secretsmanager_random_password.{name}")


# --- network -----------------------------------------------------------------------------------------------


def test_network_endpoints_cover_every_api_the_private_subnets_call():
    network = infra_hcl.module("network")
    assert sorted(network.variables["interface_endpoint_services"]["default"]) == [
        "ecr.api",
        "ecr.dkr",
        "kinesis-streams",
        "kinesisvideo",
        "logs",
        "sagemaker.runtime",
        "secretsmanager",  # the console's signing secret, injected by the ECS agent at task start
        "sts",
    ]
    assert network.resource("aws_vpc_endpoint", "gateway")["for_each"] == '${toset(["s3", "dynamodb"])}'
    assert network.resource("aws_vpc_endpoint", "interface")["private_dns_enabled"] is True


# --- observability ----------------------------------------------------------------------------------------


def test_alarms_watch_each_stage_and_notify_the_ops_topic():
    observability = infra_hcl.module("observability")
    assert observability.locals["actions"] == ["${aws_sns_topic.this.arn}"]
    alarms = observability.resources["aws_cloudwatch_metric_alarm"]
    assert {name: (alarm["namespace"], alarm["metric_name"]) for name, alarm in alarms.items()} == {
        "lambda_errors": ("AWS/Lambda", "Errors"),
        "iterator_age": ("AWS/Lambda", "IteratorAge"),
        "dlq_depth": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "endpoint_5xx": ("AWS/SageMaker", "Invocation5XXErrors"),
        "model_latency": ("AWS/SageMaker", "ModelLatency"),
        "frame_lag": ("Vigil", "FrameLagSeconds"),
    }
    assert all(
        alarm["alarm_actions"] == alarm["ok_actions"] == "${local.actions}" for alarm in alarms.values()
    )
    # ModelLatency is reported in microseconds; the threshold variable is in milliseconds
    assert alarms["model_latency"]["threshold"] == "${var.thresholds.model_latency_p90_ms * 1000}"
    assert alarms["frame_lag"]["dimensions"] == {"CameraId": "${each.key}"}
    assert alarms["frame_lag"]["treat_missing_data"] == "breaching"


def test_cloudwatch_may_publish_to_the_encrypted_ops_topic():
    observability = infra_hcl.module("observability")
    key_statement = infra_hcl.statements_by_sid(observability.policy_document("kms"))["CloudWatchAlarms"]
    assert key_statement["principals"] == [{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}]
    topic_statement = infra_hcl.statements_by_sid(observability.policy_document("topic"))["CloudWatchAlarms"]
    assert topic_statement["actions"] == ["sns:Publish"]


# --- validation rules, run on examples ---------------------------------------------------------------------

EXAMPLE = infra_hcl.parse_file(infra_hcl.INFRA_DIR / "terraform.tfvars.example")


@pytest.mark.parametrize(
    ("module_name", "variable", "value", "valid"),
    [
        ("model", "image_uri", EXAMPLE["model_image_uri"], True),
        (
            "model",
            "image_uri",
            "123456789012.dkr.ecr.eu-west-2.amazonaws.com/vigil/inference@sha256:" + "a" * 64,
            True,
        ),
        ("model", "image_uri", "pytorch/pytorch:latest", False),
        ("model", "image_uri", "123456789012.dkr.ecr.eu-west-2.amazonaws.com/vigil", False),
        ("model", "model_data_url", EXAMPLE["model_data_url"], True),
        ("model", "model_data_url", "s3://bucket/model.tar.gz", False),
        ("model", "model_data_url", "https://bucket.s3.amazonaws.com/models/model.tar.gz", False),
        ("model", "instance_type", "ml.g4dn.xlarge", True),
        ("model", "instance_type", "g4dn.xlarge", False),
        ("worker", "image_tag", EXAMPLE["worker_image_tag"], True),
        ("worker", "image_tag", "-bad", False),
        ("network", "name_prefix", "vigil", True),
        ("network", "name_prefix", "Vigil_Prod", False),
    ],
)
def test_validation_regexes_accept_good_values_and_reject_bad_ones(module_name, variable, value, valid):
    assert bool(validation_regex(module_name, variable).fullmatch(value)) is valid


def test_worker_image_tag_may_not_be_latest():
    (validation,) = infra_hcl.module("worker").variables["image_tag"]["validation"]
    assert 'var.image_tag != "latest"' in validation["condition"]


@pytest.mark.parametrize(
    ("instance_type", "has_local_storage"),
    [
        ("ml.g4dn.xlarge", True),
        ("ml.g5.2xlarge", True),
        ("ml.c6i.xlarge", False),
        ("ml.m5.large", False),
        ("ml.m5d.large", True),
    ],
)
def test_volume_key_is_skipped_only_for_instances_with_nvme_storage(instance_type, has_local_storage):
    expression = infra_hcl.module("model").locals["instance_has_local_storage"]
    pattern = re.search(r'regex\("((?:[^"\\]|\\.)*)", var\.instance_type\)', expression).group(1)
    assert bool(re.match(infra_hcl.hcl_string(pattern), instance_type)) is has_local_storage


def test_subscription_examples_satisfy_the_module_rules():
    # the module's filter_policy keys and protocols, applied to the example file's subscriptions
    conditions = " ".join(
        v["condition"] for v in infra_hcl.module("alerts").variables["subscriptions"]["validation"]
    )
    protocols = set(
        re.search(r'contains\(\[("email".*?)\], s\.protocol\)', conditions)
        .group(1)
        .replace('"', "")
        .split(", ")
    )
    keys = set(
        re.search(r'contains\(\[("severity".*?)\], key\)', conditions).group(1).replace('"', "").split(", ")
    )
    assert "http" not in protocols
    for subscription in EXAMPLE["alert_subscriptions"]:
        assert subscription["protocol"] in protocols
        assert set(subscription.get("filter_policy", {})) <= keys


def test_worker_fleet_batch_variable_mirrors_the_workers_fleet_batch_config():
    # GIVEN the worker's FleetBatchConfig: its defaults and its pydantic bounds
    from annotated_types import Ge, Le

    from worker.config import FleetBatchConfig

    fields = FleetBatchConfig.model_fields
    bounds = {
        name: (
            next(m.ge for m in fields[name].metadata if isinstance(m, Ge)),
            next(m.le for m in fields[name].metadata if isinstance(m, Le)),
        )
        for name in ("max_batch", "max_wait_ms")
    }
    (lo_batch, hi_batch), (lo_wait, hi_wait) = bounds["max_batch"], bounds["max_wait_ms"]
    # WHEN the worker module's fleet_batch variable is read
    variable = infra_hcl.module("worker").variables["fleet_batch"]
    # THEN its attribute defaults are the config's, and its validation blocks enforce the same bounds
    # (max_batch whole: the worker parses $VIGIL_FLEET_BATCH_MAX as an int)
    assert {key: variable[key] for key in ("type", "default", "nullable")} == {
        "type": f"${{object({{enabled = optional(bool, {str(fields['enabled'].default).lower()}), "
        f"max_batch = optional(number, {fields['max_batch'].default:g}), "
        f"max_wait_ms = optional(number, {fields['max_wait_ms'].default:g})}})}}",
        "default": {},
        "nullable": False,
    }
    assert [v["condition"] for v in variable["validation"]] == [
        (
            f"${{var.fleet_batch.max_batch >= {lo_batch:g} && var.fleet_batch.max_batch <= {hi_batch:g} && "
            "floor(var.fleet_batch.max_batch) == var.fleet_batch.max_batch}"
        ),
        f"${{var.fleet_batch.max_wait_ms >= {lo_wait:g} && var.fleet_batch.max_wait_ms <= {hi_wait:g}}}",
    ]
    # AND the task definition hands each attribute to the worker in its environment variable
    environment = infra_hcl.module("worker").locals["environment"]
    for name, attribute in (
        ("VIGIL_FLEET_BATCH_ENABLED", "enabled"),
        ("VIGIL_FLEET_BATCH_MAX", "max_batch"),
        ("VIGIL_FLEET_BATCH_WAIT_MS", "max_wait_ms"),
    ):
        assert re.search(rf"\b{name} += tostring\(var\.fleet_batch\.{attribute}\)", environment), name
