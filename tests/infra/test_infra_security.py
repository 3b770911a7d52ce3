"""Least privilege, encryption everywhere, no public data: the rules of DESIGN.md's infra row, checked on
the parsed configuration (no terraform binary or provider is needed)."""

from __future__ import annotations

import re

import infra_hcl
import pytest

MODULES = infra_hcl.module_names()

# A key reference: this module's customer managed key, or a CMK ARN another module passed in.
KEY_REFERENCE = re.compile(r"\$\{(aws_kms_key\.this\.arn|var\.[a-z_]*kms_key_arn)\}")


def _kms_key_of(type_: str, body: dict) -> str | None:
    """The attribute that names the customer managed key of a resource type that stores data."""
    if type_ == "aws_kinesis_stream":
        assert body["encryption_type"] == "KMS"
        return body["kms_key_id"]
    if type_ == "aws_dynamodb_table":
        (sse,) = body["server_side_encryption"]
        assert sse["enabled"] is True
        return sse["kms_key_arn"]
    if type_ == "aws_ecr_repository":
        (encryption,) = body["encryption_configuration"]
        assert encryption["encryption_type"] == "KMS"
        return encryption["kms_key"]
    if type_ == "aws_s3_bucket_server_side_encryption_configuration":
        (rule,) = body["rule"]
        (default,) = rule["apply_server_side_encryption_by_default"]
        assert default["sse_algorithm"] == "aws:kms"
        return default["kms_master_key_id"]
    attribute = {
        "aws_kinesis_video_stream": "kms_key_id",
        "aws_sqs_queue": "kms_master_key_id",
        "aws_sns_topic": "kms_master_key_id",
        "aws_cloudwatch_log_group": "kms_key_id",
        "aws_lambda_function": "kms_key_arn",
        "aws_secretsmanager_secret": "kms_key_id",
    }[type_]
    return body.get(attribute)


ENCRYPTED_TYPES = {
    "aws_cloudwatch_log_group",
    "aws_dynamodb_table",
    "aws_ecr_repository",
    "aws_kinesis_stream",
    "aws_kinesis_video_stream",
    "aws_lambda_function",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_sagemaker_endpoint_configuration",
    "aws_secretsmanager_secret",
    "aws_sns_topic",
    "aws_sqs_queue",
}
# Types that hold no data at rest of their own (or whose data is encrypted through another resource above).
NO_DATA_AT_REST = {
    "aws_appautoscaling_policy",
    "aws_appautoscaling_target",
    "aws_cloudwatch_dashboard",
    "aws_cloudwatch_log_metric_filter",
    "aws_ec2_transit_gateway_vpc_attachment",
    "aws_eip",
    "aws_internet_gateway",
    "aws_nat_gateway",
    "aws_route",  # a rule on an encrypted log group; its metric is CloudWatch's
    "aws_cloudwatch_metric_alarm",
    # An app client's settings; its secret is kept by Cognito (encrypted by the service, no key option).
    "aws_cognito_user_pool_client",
    "aws_default_security_group",
    "aws_dynamodb_table_item",  # an item of an encrypted aws_dynamodb_table (the camera scene seed)
    "aws_ecr_lifecycle_policy",
    "aws_ecs_cluster",
    "aws_ecs_service",
    "aws_ecs_task_definition",  # Fargate encrypts task ephemeral storage itself
    "aws_flow_log",  # writes to an encrypted log group
    "aws_iam_policy",
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_kms_alias",
    "aws_kms_key",
    "aws_lambda_event_source_mapping",
    "aws_lb",  # an internal load balancer (access logs, when on, go to an encrypted bucket)
    "aws_lb_listener",
    "aws_lb_target_group",
    "aws_route_table",
    "aws_route_table_association",
    "aws_s3_bucket",  # encrypted by its aws_s3_bucket_server_side_encryption_configuration
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_versioning",
    "aws_sagemaker_endpoint",  # encrypted through its endpoint configuration
    "aws_sagemaker_model",
    "aws_secretsmanager_secret_version",  # encrypted by its aws_secretsmanager_secret's key
    "aws_security_group",
    "aws_sns_topic_policy",
    "aws_sns_topic_subscription",
    "aws_subnet",
    "aws_vpc",
    "aws_vpc_endpoint",
    "aws_vpc_security_group_egress_rule",
    "aws_vpc_security_group_ingress_rule",
    "terraform_data",  # a plan-time value holder (the endpoint's instance type), in the state only
}


def all_resources() -> list[tuple[str, str, str, dict]]:
    return [
        (module_name, type_, name, body)
        for module_name in MODULES
        for type_, by_name in infra_hcl.module(module_name).resources.items()
        for name, body in by_name.items()
    ]


def all_policy_documents() -> list[tuple[str, str, dict]]:
    return [
        (module_name, name, document)
        for module_name in MODULES
        for name, document in infra_hcl.module(module_name).data.get("aws_iam_policy_document", {}).items()
    ]


def test_every_resource_type_is_classified_for_encryption():
    # GIVEN every resource type in the modules  THEN each is known to be encrypted or to hold no data,
    # so a new type (an EFS volume, an OpenSearch domain) fails here until someone decides
    used = {type_ for _, type_, _, _ in all_resources()}
    assert ENCRYPTED_TYPES.isdisjoint(NO_DATA_AT_REST)
    assert sorted(used - ENCRYPTED_TYPES - NO_DATA_AT_REST) == []


# The one store not under a customer managed key: S3 server access logging delivers only into a target
# bucket encrypted with SSE-S3 (with SSE-KMS the logs never arrive); it holds request metadata, no footage.
SSE_S3_ONLY = {("training_data", "aws_s3_bucket_server_side_encryption_configuration", "logs")}


@pytest.mark.parametrize(
    ("module_name", "type_", "name", "body"),
    [
        r
        for r in all_resources()
        if r[1] in ENCRYPTED_TYPES - {"aws_sagemaker_endpoint_configuration"} and r[:3] not in SSE_S3_ONLY
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_data_at_rest_is_encrypted_with_a_customer_managed_key(module_name, type_, name, body):
    assert KEY_REFERENCE.fullmatch(_kms_key_of(type_, body) or ""), f"{module_name}: {type_}.{name}"


def test_endpoint_volume_and_data_capture_use_customer_managed_keys():
    config = infra_hcl.module("model").resource("aws_sagemaker_endpoint_configuration", "this")
    # instance types with NVMe instance storage refuse a volume key: the module leaves it null only for those
    assert config["kms_key_arn"] == "${local.instance_has_local_storage ? null : aws_kms_key.this.arn}"
    (capture,) = config["dynamic"][0]["data_capture_config"]["content"]
    assert capture["kms_key_id"] == "${var.archive_kms_key_arn}"


def test_every_s3_bucket_has_encryption_versioning_and_a_public_access_block():
    module = infra_hcl.module("training_data")
    buckets = set(module.resources["aws_s3_bucket"])
    assert module.locals["buckets"] == {name: f"${{aws_s3_bucket.{name}}}" for name in buckets}
    # one encryption configuration per bucket (the archive: SSE-KMS; the access-log target: SSE-S3)
    assert {
        name: body["bucket"]
        for name, body in module.resources["aws_s3_bucket_server_side_encryption_configuration"].items()
    } == {name: f"${{aws_s3_bucket.{name}.id}}" for name in buckets}
    for type_ in (
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_ownership_controls",
    ):
        assert module.resource(type_, "this")["for_each"] == "${local.buckets}", type_
    assert module.resource("aws_s3_bucket_ownership_controls", "this")["rule"] == [
        {"object_ownership": "BucketOwnerEnforced"}
    ]
    assert module.resource("aws_s3_bucket_versioning", "this")["versioning_configuration"] == [
        {"status": "Enabled"}
    ]


def test_public_access_block_is_all_true():
    block = infra_hcl.module("training_data").resource("aws_s3_bucket_public_access_block", "this")
    assert {key: value for key, value in block.items() if key not in ("for_each", "bucket")} == {
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    }


@pytest.mark.parametrize("bucket", ["archive", "logs"])
def test_bucket_policy_denies_every_request_without_tls(bucket):
    module = infra_hcl.module("training_data")
    policy = module.resource("aws_s3_bucket_policy", bucket)
    assert policy["bucket"] == f"${{aws_s3_bucket.{bucket}.id}}"
    assert policy["policy"] == f"${{data.aws_iam_policy_document.{bucket}.json}}"
    deny = infra_hcl.statements_by_sid(module.policy_document(bucket))["DenyInsecureTransport"]
    assert deny == {
        "sid": "DenyInsecureTransport",
        "effect": "Deny",
        "actions": ["s3:*"],
        "resources": [f"${{aws_s3_bucket.{bucket}.arn}}", f"${{aws_s3_bucket.{bucket}.arn}}/*"],
        "principals": [{"type": "*", "identifiers": ["*"]}],
        "condition": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
    }


def test_no_bucket_policy_allows_anyone_but_the_s3_logging_service():
    module = infra_hcl.module("training_data")
    allows = [
        (name, statement["sid"], statement["principals"])
        for name in ("archive", "logs")
        for statement in infra_hcl.statements(module.policy_document(name))
        if statement.get("effect", "Allow") == "Allow"
    ]
    assert allows == [
        ("logs", "S3ServerAccessLogging", [{"type": "Service", "identifiers": ["logging.s3.amazonaws.com"]}])
    ]


def test_archive_access_logs_go_to_the_log_bucket():
    logging_ = infra_hcl.module("training_data").resource("aws_s3_bucket_logging", "this")
    assert logging_["bucket"] == "${aws_s3_bucket.archive.id}"
    assert logging_["target_bucket"] == "${aws_s3_bucket.logs.id}"


@pytest.mark.parametrize("module_name", MODULES)
def test_every_module_has_one_rotating_customer_managed_key_with_a_policy_and_alias(module_name):
    module = infra_hcl.module(module_name)
    (key,) = module.resources["aws_kms_key"].values()
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == 30
    assert key["policy"] == "${data.aws_iam_policy_document.kms.json}"
    (alias,) = module.resources["aws_kms_alias"].values()
    assert alias["target_key_id"] == "${aws_kms_key.this.key_id}"


@pytest.mark.parametrize(
    ("module_name", "name", "document"), all_policy_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_no_statement_grants_wildcard_actions(module_name, name, document):
    # GIVEN every statement of every policy document (roles, bucket policies, key policies)
    for statement in infra_hcl.statements(document):
        assert "not_actions" not in statement
        assert isinstance(statement["actions"], list), f"{module_name}/{name}: actions must be a literal list"
        for action in statement["actions"]:
            # THEN no "*" at all, and a whole service ("s3:*") only in a Deny
            assert action != "*", f"{module_name}/{name}/{statement.get('sid')}"
            if statement.get("effect", "Allow") == "Allow":
                assert not action.endswith(":*"), f"{module_name}/{name}/{statement.get('sid')}: {action}"


def key_policy_documents(module_name: str) -> set[str]:
    keys = infra_hcl.module(module_name).resources.get("aws_kms_key", {}).values()
    return {
        re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", key["policy"]).group(1)
        for key in keys
    }


@pytest.mark.parametrize(
    ("module_name", "name", "document"), all_policy_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_star_resources_only_where_the_api_has_no_resource_level_permissions(module_name, name, document):
    # In a key policy "*" is the key itself; otherwise only ecr:GetAuthorizationToken and
    # cloudwatch:PutMetricData (scoped by a cloudwatch:namespace condition instead) may use "*".
    for statement in infra_hcl.statements(document):
        if "*" in statement.get("resources", []) and name not in key_policy_documents(module_name):
            assert statement["actions"] in (["ecr:GetAuthorizationToken"], ["cloudwatch:PutMetricData"]), (
                f"{module_name}/{name}/{statement['sid']}"
            )
            if statement["actions"] == ["cloudwatch:PutMetricData"]:
                (condition,) = statement["condition"]
                assert (condition["test"], condition["variable"]) == ("StringEquals", "cloudwatch:namespace")


def role_policies() -> list[tuple[str, str, dict]]:
    return [
        (module_name, name, body)
        for module_name in MODULES
        for kind in ("aws_iam_role_policy", "aws_iam_policy")
        for name, body in infra_hcl.module(module_name).resources.get(kind, {}).items()
    ]


@pytest.mark.parametrize(
    ("module_name", "name", "body"), role_policies(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_iam_is_data_every_role_policy_is_a_policy_document(module_name, name, body):
    assert re.fullmatch(r"\$\{data\.aws_iam_policy_document\.\w+\.json\}", body["policy"])


def test_every_role_trusts_one_service_of_this_account_only():
    trusts = {}
    for module_name in MODULES:
        module = infra_hcl.module(module_name)
        for role_name, role in module.resources.get("aws_iam_role", {}).items():
            document_name = re.fullmatch(
                r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", role["assume_role_policy"]
            ).group(1)
            (statement,) = infra_hcl.statements(module.policy_document(document_name))
            assert statement["actions"] == ["sts:AssumeRole"]
            assert {
                "test": "StringEquals",
                "variable": "aws:SourceAccount",
                "values": ["${local.account_id}"],
            } in statement["condition"]
            (principal,) = statement["principals"]
            assert principal["type"] == "Service"
            trusts[f"{module_name}.{role_name}"] = principal["identifiers"]
    assert trusts == {
        "alerts.this": ["lambda.amazonaws.com"],
        "console.task": ["ecs-tasks.amazonaws.com"],
        "console.task_exec": ["ecs-tasks.amazonaws.com"],
        "model.endpoint": ["sagemaker.amazonaws.com"],
        "model.training": ["sagemaker.amazonaws.com"],
        "network.this": ["vpc-flow-logs.amazonaws.com"],
        "worker.task": ["ecs-tasks.amazonaws.com"],
        "worker.task_exec": ["ecs-tasks.amazonaws.com"],
    }


# --- exact permissions per role: a new action or a widened resource must change this table ------------

WORKER_PREFIXES = ["alerts", "clips", "feedback", "manifests", "snapshots", "tmp"]
ECR_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
EXPECTED_ROLE_STATEMENTS = {
    ("worker", "task"): {
        "KinesisVideoRead": (
            [
                "kinesisvideo:GetClip",
                "kinesisvideo:GetDataEndpoint",
                "kinesisvideo:GetMedia",
                "kinesisvideo:ListFragments",
            ],
            "${[for camera in values(var.camera_streams) : camera.stream_arn]}",
        ),
        "SageMakerInvoke": (["sagemaker:InvokeEndpoint"], ["${var.endpoint_arn}"]),
        "KinesisAlertsPut": (["kinesis:PutRecords"], ["${var.alert_stream_arn}"]),
        "S3ArchiveObjects": (
            ["s3:GetObject", "s3:PutObject"],
            [f"${{var.archive_bucket_arn}}/{prefix}/*" for prefix in WORKER_PREFIXES],
        ),
        "S3ArchiveTmpDelete": (["s3:DeleteObject"], ["${var.archive_bucket_arn}/tmp/*"]),
        "S3ArchiveList": (["s3:ListBucket"], ["${var.archive_bucket_arn}"]),
        "DynamoDBState": (
            ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem"],
            ["${aws_dynamodb_table.this.arn}"],
        ),
        "Kms": (
            ["kms:Decrypt", "kms:GenerateDataKey"],
            [
                "${var.video_kms_key_arn}",
                "${var.alert_kms_key_arn}",
                "${var.archive_kms_key_arn}",
                "${aws_kms_key.this.arn}",
            ],
        ),
    },
    ("worker", "task_exec"): {
        "EcrPull": (ECR_PULL, ["${aws_ecr_repository.this.arn}"]),
        "EcrAuthorization": (["ecr:GetAuthorizationToken"], ["*"]),
        "Logs": (["logs:CreateLogStream", "logs:PutLogEvents"], ["${aws_cloudwatch_log_group.this.arn}:*"]),
    },
    ("alerts", "this"): {
        "KinesisRead": (
            [
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
            ],
            ["${aws_kinesis_stream.this.arn}"],
        ),
        "SnsPublish": (["sns:Publish"], ["${aws_sns_topic.this.arn}"]),
        "DynamoDBIdempotency": (
            ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            ["${aws_dynamodb_table.idempotency.arn}"],
        ),
        "DynamoDBAlertHistory": (["dynamodb:PutItem"], ["${aws_dynamodb_table.history.arn}"]),
        "SqsDeadLetter": (["sqs:SendMessage"], ["${aws_sqs_queue.this.arn}"]),
        "S3PresignedLinks": (
            ["s3:GetObject"],
            [
                "${var.archive_bucket_arn}/snapshots/*",
                "${var.archive_bucket_arn}/clips/*",
                "${var.archive_bucket_arn}/alerts/*",
            ],
        ),
        "KmsAlerts": (["kms:Decrypt", "kms:GenerateDataKey"], ["${aws_kms_key.this.arn}"]),
        "KmsArchiveRead": (["kms:Decrypt"], ["${var.archive_kms_key_arn}"]),
        "Logs": (["logs:CreateLogStream", "logs:PutLogEvents"], ["${aws_cloudwatch_log_group.this.arn}:*"]),
    },
    # Issue 15: the managed policy for whoever runs `python -m alert_lambda.redrive`.
    ("alerts", "redrive"): {
        "KinesisReadRange": (["kinesis:GetRecords", "kinesis:GetShardIterator"], ["${aws_kinesis_stream.this.arn}"]),
        "SnsPublish": (["sns:Publish"], ["${aws_sns_topic.this.arn}"]),
        "DynamoDBIdempotency": (
            ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            ["${aws_dynamodb_table.idempotency.arn}"],
        ),
        "DynamoDBAlertHistory": (["dynamodb:PutItem"], ["${aws_dynamodb_table.history.arn}"]),
        "SqsDeadLetter": (
            ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage", "sqs:SendMessage"],
            ["${aws_sqs_queue.this.arn}"],
        ),
        "S3PresignedLinks": (
            ["s3:GetObject"],
            [
                "${var.archive_bucket_arn}/snapshots/*",
                "${var.archive_bucket_arn}/clips/*",
                "${var.archive_bucket_arn}/alerts/*",
            ],
        ),
        "KmsAlerts": (["kms:Decrypt", "kms:GenerateDataKey"], ["${aws_kms_key.this.arn}"]),
        "KmsArchiveRead": (["kms:Decrypt"], ["${var.archive_kms_key_arn}"]),
    },
    ("console", "task"): {
        "DynamoDBHistoryRead": (
            ["dynamodb:GetItem", "dynamodb:Query"],
            ["${var.alert_history_table_arn}", "${var.alert_history_table_arn}/index/*"],
        ),
        "DynamoDBHistoryReview": (["dynamodb:UpdateItem"], ["${var.alert_history_table_arn}"]),
        "DynamoDBAudit": (["dynamodb:PutItem", "dynamodb:Query"], ["${aws_dynamodb_table.this.arn}"]),
        "DynamoDBStateRead": (["dynamodb:Scan"], ["${var.state_table_arn}"]),
        "DynamoDBSceneRead": (["dynamodb:GetItem"], ["${var.state_table_arn}"]),
        "DynamoDBSceneWrite": (["dynamodb:PutItem"], ["${var.state_table_arn}"]),
        "S3ArchiveRead": (
            ["s3:GetObject"],
            [f"${{var.archive_bucket_arn}}/{prefix}/*" for prefix in ("alerts", "feedback", "manifests", "snapshots")],
        ),
        "S3FeedbackWrite": (
            ["s3:PutObject"],
            ["${var.archive_bucket_arn}/feedback/*", "${var.archive_bucket_arn}/manifests/*"],
        ),
        "S3ArchiveList": (["s3:ListBucket"], ["${var.archive_bucket_arn}"]),
        "KmsData": (
            ["kms:Decrypt", "kms:GenerateDataKey"],
            [
                "${aws_kms_key.this.arn}",
                "${var.alert_history_kms_key_arn}",
                "${var.archive_kms_key_arn}",
                "${var.state_kms_key_arn}",
            ],
        ),
    },
    ("console", "task_exec"): {
        "EcrPull": (ECR_PULL, ["${aws_ecr_repository.this.arn}"]),
        "EcrAuthorization": (["ecr:GetAuthorizationToken"], ["*"]),
        "Logs": (["logs:CreateLogStream", "logs:PutLogEvents"], ["${aws_cloudwatch_log_group.this.arn}:*"]),
        "SigningSecret": (["secretsmanager:GetSecretValue"], ["${aws_secretsmanager_secret.signing.arn}"]),
        "LoginTokenSecret": (["secretsmanager:GetSecretValue"], ["${aws_secretsmanager_secret.token[0].arn}"]),
        "KmsSecret": (["kms:Decrypt"], ["${aws_kms_key.this.arn}"]),
    },
    ("model", "endpoint"): {
        "S3ModelArtifacts": (["s3:GetObject"], ["${var.archive_bucket_arn}/models/*"]),
        "S3DataCapture": (["s3:PutObject"], ["${var.archive_bucket_arn}/data-capture/*"]),
        "EcrPull": (ECR_PULL, ["${local.image_repository_arn}"]),
        "EcrAuthorization": (["ecr:GetAuthorizationToken"], ["*"]),
        "Logs": (
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            ["${aws_cloudwatch_log_group.endpoint.arn}", "${aws_cloudwatch_log_group.endpoint.arn}:*"],
        ),
        "CloudWatchMetrics": (["cloudwatch:PutMetricData"], ["*"]),
        "KmsArchiveRead": (["kms:Decrypt"], ["${var.archive_kms_key_arn}"]),
        "KmsDataCapture": (["kms:GenerateDataKey"], ["${var.archive_kms_key_arn}"]),
    },
    ("model", "training"): {
        "S3ListTrainingData": (["s3:ListBucket"], ["${var.archive_bucket_arn}"]),
        "S3ReadTrainingData": (
            ["s3:GetObject"],
            [
                "${var.archive_bucket_arn}/clips/*",
                "${var.archive_bucket_arn}/alerts/*",
                "${var.archive_bucket_arn}/manifests/*",
                "${var.archive_bucket_arn}/checkpoints/*",
            ],
        ),
        "S3WriteModels": (
            ["s3:PutObject"],
            ["${var.archive_bucket_arn}/models/*", "${var.archive_bucket_arn}/checkpoints/*"],
        ),
        "EcrPull": (ECR_PULL, ["${local.training_repository_arn}"]),
        "EcrAuthorization": (["ecr:GetAuthorizationToken"], ["*"]),
        "Logs": (
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [
                "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.training_log_group_name}:*"
            ],
        ),
        "CloudWatchMetrics": (["cloudwatch:PutMetricData"], ["*"]),
        "KmsArchive": (["kms:Decrypt", "kms:GenerateDataKey"], ["${var.archive_kms_key_arn}"]),
    },
    ("network", "flow_logs"): {
        "Logs": (
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            ["${aws_cloudwatch_log_group.this.arn}:*"],
        ),
    },
}


@pytest.mark.parametrize(("module_name", "document_name"), sorted(EXPECTED_ROLE_STATEMENTS))
def test_role_statements_are_exactly_the_expected_actions_on_the_expected_resources(
    module_name, document_name
):
    # GIVEN a role's policy document  WHEN read statement by statement
    document = infra_hcl.module(module_name).policy_document(document_name)
    actual = {
        sid: (statement["actions"], statement["resources"])
        for sid, statement in infra_hcl.statements_by_sid(document).items()
    }
    # THEN each statement is exactly the expected API family on exactly the expected resources
    assert actual == EXPECTED_ROLE_STATEMENTS[(module_name, document_name)]


def test_every_role_policy_document_is_in_the_expected_table():
    attached = set()
    for module_name, _, body in role_policies():
        attached.add(
            (
                module_name,
                re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", body["policy"]).group(1),
            )
        )
    assert attached == set(EXPECTED_ROLE_STATEMENTS)


def test_model_data_capture_statements_exist_only_when_capture_is_enabled():
    statements = infra_hcl.statements_by_sid(infra_hcl.module("model").policy_document("endpoint"))
    assert {sid for sid, statement in statements.items() if statement.get("dynamic")} == {
        "S3DataCapture",
        "KmsDataCapture",
    }


def test_worker_lists_only_its_own_prefixes():
    statements = infra_hcl.statements_by_sid(infra_hcl.module("worker").policy_document("task"))
    assert statements["S3ArchiveList"]["condition"] == [
        {"test": "StringLike", "variable": "s3:prefix", "values": [f"{prefix}/*" for prefix in WORKER_PREFIXES]}
    ]


def test_console_lists_only_the_prefixes_feedback_searches():
    statement = infra_hcl.statements_by_sid(infra_hcl.module("console").policy_document("task"))["S3ArchiveList"]
    assert statement["condition"] == [
        {"test": "StringLike", "variable": "s3:prefix", "values": ["manifests/*", "snapshots/*"]}
    ]


def test_console_review_may_set_only_the_review_attributes_of_an_alert():
    # GIVEN the console's UpdateItem on the alert history (the Lambda's record)
    statement = infra_hcl.statements_by_sid(infra_hcl.module("console").policy_document("task"))[
        "DynamoDBHistoryReview"
    ]
    # THEN the request may touch the key and the three review attributes, nothing the Lambda wrote
    assert statement["condition"] == [
        {
            "test": "ForAllValues:StringEquals",
            "variable": "dynamodb:Attributes",
            "values": ["camera_id", "sk", "review_label", "reviewed_by", "reviewed_at"],
        }
    ]


def test_training_role_lists_only_the_training_prefixes():
    statement = infra_hcl.statements_by_sid(infra_hcl.module("model").policy_document("training"))[
        "S3ListTrainingData"
    ]
    assert statement["condition"] == [
        {
            "test": "StringLike",
            "variable": "s3:prefix",
            "values": ["clips/*", "alerts/*", "manifests/*", "checkpoints/*"],
        }
    ]


@pytest.mark.parametrize("module_name", ["network", "model", "worker", "alerts", "console"])
def test_logs_service_may_use_a_key_only_for_the_module_log_groups(module_name):
    statement = infra_hcl.statements_by_sid(infra_hcl.module(module_name).policy_document("kms"))[
        "CloudWatchLogs"
    ]
    (condition,) = statement["condition"]
    assert condition["variable"] == "kms:EncryptionContext:aws:logs:arn"
    assert all(":log-group:" in value and "*" not in value for value in condition["values"])


def test_no_security_group_allows_ingress_from_anywhere_and_internet_only_through_the_chosen_egress():
    network = infra_hcl.module("network")
    # the NAT and internet gateways exist only when egress.mode chooses them (the console's sign-in)
    for type_ in ("aws_nat_gateway", "aws_internet_gateway", "aws_eip"):
        assert network.resource(type_, "this")["count"] == '${var.egress.mode == "nat_gateway" ? 1 : 0}', type_
    ingress = network.resources["aws_vpc_security_group_ingress_rule"]
    assert [rule.get("cidr_ipv4") for rule in ingress.values()] == [None]
    assert ingress["this"]["referenced_security_group_id"] == "${aws_security_group.worker.id}"
    for subnet in network.resources["aws_subnet"].values():
        assert subnet["map_public_ip_on_launch"] is False
    # the worker's group reaches the endpoints only, whatever the route table says
    for rule in network.resources["aws_vpc_security_group_egress_rule"].values():
        assert "cidr_ipv4" not in rule
    for module_name in ("worker", "console"):
        service = infra_hcl.module(module_name).resource("aws_ecs_service", "this")
        assert service["network_configuration"][0]["assign_public_ip"] is False, module_name


def test_console_is_internal_and_reached_only_by_operators_over_https():
    console = infra_hcl.module("console")
    # GIVEN the load balancer  THEN it is internal, drops invalid headers, and listens on HTTPS only
    alb = console.resource("aws_lb", "this")
    assert (alb["internal"], alb["drop_invalid_header_fields"]) == (True, True)
    (listener,) = console.resources["aws_lb_listener"].values()
    assert (listener["protocol"], listener["port"]) == ("HTTPS", 443)
    assert listener["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    # AND with Cognito sign-in every request is authenticated before it is forwarded (in token mode the
    # console checks the login token itself)
    (cognito,) = listener["dynamic"]
    assert cognito["default_action"]["for_each"] == "${local.cognito ? [var.cognito] : []}"
    (authenticate,) = cognito["default_action"]["content"]
    assert (authenticate["type"], authenticate["order"]) == ("authenticate-cognito", 1)
    assert authenticate["authenticate_cognito"][0]["on_unauthenticated_request"] == "authenticate"
    (forward,) = listener["default_action"]
    assert (forward["type"], forward["order"]) == ("forward", "${local.cognito ? 2 : 1}")
    # AND the ALB admits HTTPS from the operator networks only, which may never be 0.0.0.0/0
    ingress = console.resources["aws_vpc_security_group_ingress_rule"]
    assert {name: (rule["security_group_id"], rule.get("cidr_ipv4"), rule.get("referenced_security_group_id"))
            for name, rule in ingress.items()} == {
        "alb_https": ("${aws_security_group.alb.id}", "${each.value}", None),
        "task_from_alb": ("${aws_security_group.task.id}", None, "${aws_security_group.alb.id}"),
        "endpoints_from_task": ("${var.endpoints_security_group_id}", None, "${aws_security_group.task.id}"),
    }
    assert ingress["alb_https"]["for_each"] == "${toset(var.operator_cidrs)}"
    assert '"0.0.0.0/0"' in console.variables["operator_cidrs"]["validation"][0]["condition"]
