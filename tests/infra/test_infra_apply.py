"""What AWS refuses at apply time (issue 16), one test per finding F1-F13 of the review: each would have
failed on the configuration the review read. `terraform validate` and the provider schema check cannot
see these: they are rules of the AWS APIs, of quotas, or of the order Terraform applies changes in."""

from __future__ import annotations

import re

import infra_hcl
import pytest


def hcl_regex(expression: str) -> re.Pattern[str]:
    """The first `regex("...", ...)` pattern inside an HCL expression, as Python sees it."""
    match = re.search(r'regex\(\s*"((?:[^"\\]|\\.)*)"', expression)
    assert match, expression
    return re.compile(infra_hcl.hcl_string(match.group(1)))


# --- F4: S3 server access logging needs SSE-S3 on its target bucket ----------------------------------------


def test_f4_access_log_target_bucket_is_sse_s3_and_the_archive_stays_sse_kms():
    # GIVEN the training_data module's encryption configurations
    module = infra_hcl.module("training_data")
    sse = module.resources["aws_s3_bucket_server_side_encryption_configuration"]
    logging = module.resource("aws_s3_bucket_logging", "this")
    # WHEN the archive's access logging names its target bucket
    assert logging["target_bucket"] == "${aws_s3_bucket.logs.id}"
    # THEN the target is encrypted with SSE-S3 (S3 never delivers logs into an SSE-KMS default bucket) ...
    assert sse["logs"] == {
        "bucket": "${aws_s3_bucket.logs.id}",
        "rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}],
    }
    # ... the archive keeps its customer managed key, and nothing grants the logging service the key
    assert sse["archive"]["rule"][0]["apply_server_side_encryption_by_default"] == [
        {"sse_algorithm": "aws:kms", "kms_master_key_id": "${aws_kms_key.this.arn}"}
    ]
    for statement in infra_hcl.statements(module.policy_document("kms")):
        for principal in statement.get("principals", []):
            assert "logging.s3.amazonaws.com" not in principal["identifiers"]


# --- F5: the model's name changes with every argument that forces a new model --------------------------------


def test_f5_model_name_hashes_every_argument_that_forces_a_new_model():
    # GIVEN the SageMaker model (create_before_destroy; every argument forces replacement: no UpdateModel)
    model = infra_hcl.module("model")
    body = model.resource("aws_sagemaker_model", "this")
    assert body["lifecycle"][0]["create_before_destroy"] is True
    identity = model.locals["model_identity"]
    # WHEN its name is computed  THEN it hashes the whole identity ...
    assert body["name"] == "${local.model_name}"
    assert model.locals["model_name"] == (
        "${var.name_prefix}-detector-${substr(sha256(jsonencode(local.model_identity)), 0, 8)}"
    )
    # ... and every argument of the model and its container is read from that identity, nothing else
    (container,) = body["primary_container"]
    arguments = {
        **{key: value for key, value in body.items() if key not in {"name", "tags", "depends_on", "lifecycle",
                                                                      "primary_container"}},
        **container,
    }
    assert arguments == {key: f"${{local.model_identity.{key}}}" for key in arguments}
    assert set(identity) == set(arguments)
    # the container environment is one of them (the review's case: an environment change kept the name)
    assert identity["environment"] == "${var.container_environment}"


# --- F6: instance type changes and roll-outs with auto scaling registered ------------------------------


def test_f6_instance_type_change_deregisters_auto_scaling_first():
    # GIVEN the endpoint's scalable target  WHEN the instance type changes
    model = infra_hcl.module("model")
    holder = model.resource("terraform_data", "this")
    target = model.resource("aws_appautoscaling_target", "this")
    # THEN the holder of the instance type changes, which replaces the target (deregistered before the
    # endpoint update that SageMaker refuses while it is registered, registered again after)
    assert holder == {"input": "${var.instance_type}"}
    assert target["lifecycle"] == [{"replace_triggered_by": ["${terraform_data.this}"]}]
    assert target["resource_id"].startswith("endpoint/${aws_sagemaker_endpoint.this.name}/")
    # and the policy hangs off the target, so it is replaced with it
    policy = model.resource("aws_appautoscaling_policy", "this")
    assert policy["resource_id"] == "${aws_appautoscaling_target.this.resource_id}"


def test_f6_a_roll_out_starts_at_the_rollout_count_not_at_min_capacity():
    model = infra_hcl.module("model")
    (variant,) = model.resource("aws_sagemaker_endpoint_configuration", "this")["production_variants"]
    assert variant["initial_instance_count"] == "${local.rollout_instance_count}"
    assert model.locals["rollout_instance_count"] == (
        "${coalesce(var.autoscaling.rollout_instance_count, var.autoscaling.max_capacity)}"
    )
    conditions = [v["condition"] for v in model.variables["autoscaling"]["validation"]]
    assert any("rollout_instance_count" in condition for condition in conditions)
    # the root passes the whole object through, so the operator can set it
    assert "rollout_instance_count" in infra_hcl.root().variables["endpoint_autoscaling"]["type"]


# --- F7: the account-wide training log group ------------------------------------------------------------


def test_f7_account_wide_training_log_group_is_not_created_by_default():
    model = infra_hcl.module("model")
    group = model.resource("aws_cloudwatch_log_group", "training")
    assert group["count"] == "${var.manage_training_log_group ? 1 : 0}"
    assert model.variables["manage_training_log_group"]["default"] is False
    root = infra_hcl.root()
    assert root.variables["manage_sagemaker_training_log_group"]["default"] is False
    assert root.modules["model"]["manage_training_log_group"] == "${var.manage_sagemaker_training_log_group}"
    # the training role's log statement does not depend on the group being ours
    statement = infra_hcl.statements_by_sid(model.policy_document("training"))["Logs"]
    assert "aws_cloudwatch_log_group" not in " ".join(statement["resources"])


# --- F11: SageMaker publishes instance metrics with the roles -----------------------------------------------


@pytest.mark.parametrize(
    ("document", "namespace"),
    [("endpoint", "/aws/sagemaker/Endpoints"), ("training", "/aws/sagemaker/TrainingJobs")],
)
def test_f11_sagemaker_roles_may_put_metrics_in_their_namespace_only(document, namespace):
    statement = infra_hcl.statements_by_sid(infra_hcl.module("model").policy_document(document))[
        "CloudWatchMetrics"
    ]
    assert statement["actions"] == ["cloudwatch:PutMetricData"]
    assert statement["resources"] == ["*"]
    assert statement["condition"] == [
        {"test": "StringEquals", "variable": "cloudwatch:namespace", "values": [namespace]}
    ]


# --- F13: instance families with local NVMe storage refuse a volume KMS key ----------------------------

# SageMaker hosting instance types with NVMe instance storage (no EBS ML storage volume) ...
LOCAL_STORAGE = [
    "ml.c5d.xlarge", "ml.c6gd.large", "ml.c6id.2xlarge", "ml.c7gd.large", "ml.m5d.large", "ml.m6gd.xlarge",
    "ml.m6id.large", "ml.m7gd.large", "ml.r5d.large", "ml.r6gd.large", "ml.r6id.large", "ml.r7gd.large",
    "ml.r8gd.large", "ml.x2iedn.xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge", "ml.g6.xlarge", "ml.g6e.xlarge",
    "ml.gr6.4xlarge", "ml.p3dn.24xlarge", "ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge",
    "ml.p5e.48xlarge", "ml.p5en.48xlarge", "ml.p6-b200.48xlarge", "ml.trn1.2xlarge", "ml.trn1n.32xlarge",
    "ml.trn2.48xlarge",
]
# ... and types with an EBS volume, which takes the module's key.
EBS_ONLY = [
    "ml.t2.medium", "ml.m5.large", "ml.m6i.xlarge", "ml.m7i.large", "ml.c5.xlarge", "ml.c6i.large",
    "ml.c6g.large", "ml.c7g.large", "ml.r5.large", "ml.r6g.large", "ml.p3.2xlarge", "ml.inf1.xlarge", "ml.inf2.xlarge", "ml.m6g.large",
]


@pytest.mark.parametrize("instance_type", LOCAL_STORAGE + EBS_ONLY)
def test_f13_volume_key_only_for_instance_types_without_local_storage(instance_type):
    model = infra_hcl.module("model")
    local = hcl_regex(model.locals["instance_has_local_storage"])
    assert bool(local.search(instance_type)) == (instance_type in LOCAL_STORAGE)
    # every one of them passes the variable's validation (p6-b200 has a hyphen)
    for validation in model.variables["instance_type"]["validation"]:
        assert hcl_regex(validation["condition"]).fullmatch(instance_type)


# --- F8: the alert Lambda's reserved concurrency ------------------------------------------------------


def test_f8_alert_lambda_reserves_no_concurrency_by_default():
    # GIVEN the alerts module and the root  WHEN nothing is set
    alerts = infra_hcl.module("alerts")
    assert "reserved_concurrency = optional(number)" in alerts.variables["lambda"]["type"].replace('"', "")
    assert "reserved_concurrency = optional(number)" in infra_hcl.root().variables["alert_lambda"]["type"]
    # THEN the function draws on the unreserved pool (-1): new accounts (quota 10) cannot reserve any
    function = alerts.resource("aws_lambda_function", "this")
    assert function["reserved_concurrent_executions"] == "${coalesce(var.lambda.reserved_concurrency, -1)}"


def test_f8_a_reservation_must_cover_every_shard_of_a_provisioned_stream():
    function = infra_hcl.module("alerts").resource("aws_lambda_function", "this")
    (precondition,) = function["lifecycle"][0]["precondition"]
    condition = re.sub(r"\s+", " ", precondition["condition"])
    assert "var.lambda.reserved_concurrency == null" in condition
    assert 'var.stream.mode == "PROVISIONED"' in condition
    assert ">= var.stream.shard_count * var.event_source.parallelization_factor" in condition


# --- F9: services wait for their roles' policies and the secret's value -------------------------------


@pytest.mark.parametrize(
    ("module_name", "needed"),
    [
        ("worker", {"aws_iam_role_policy.task_exec", "aws_iam_role_policy.task"}),
        (
            "console",
            {
                "aws_iam_role_policy.task_exec",
                "aws_iam_role_policy.task",
                "aws_secretsmanager_secret_version.signing",
                "aws_lb_listener.this",
            },
        ),
    ],
)
def test_f9_services_depend_on_their_role_policies_and_secret_values(module_name, needed):
    # GIVEN the ECS service  THEN it is created only after the policies its task definition's roles need
    # (the task definition names the roles, not the policies) and, for the console, the secret's value
    module = infra_hcl.module(module_name)
    service = module.resource("aws_ecs_service", "this")
    depends = {reference.strip("${}") for reference in service.get("depends_on", [])}
    assert needed <= depends
    # every inline policy of the module's roles is covered, so a new one cannot be forgotten
    policies = {f"aws_iam_role_policy.{name}" for name in module.resources["aws_iam_role_policy"]}
    assert policies <= depends


# --- F12: Fargate CPU and memory are one choice ---------------------------------------------------------

FARGATE_SIZES = {  # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
    256: [512, 1024, 2048],
    512: [1024, 2048, 3072, 4096],
    1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
}


def console_memory_sizes() -> dict[int, list[int]]:
    """The cpu -> memory table inside the console's memory validation."""
    (validation,) = infra_hcl.module("console").variables["memory"]["validation"]
    condition = validation["condition"]
    assert "size.cpu == var.cpu && contains(size.sizes, var.memory)" in condition
    return {
        int(cpu): [int(size) for size in sizes.split(",")]
        for cpu, sizes in re.findall(r"cpu = (\d+), sizes = \[([\d, ]+)\]", condition)
    }


def test_f12_console_memory_is_validated_against_its_cpu():
    assert console_memory_sizes() == FARGATE_SIZES
    (cpu_validation,) = infra_hcl.module("console").variables["cpu"]["validation"]
    assert cpu_validation["condition"] == "${contains([256, 512, 1024], var.cpu)}"


@pytest.mark.parametrize(("cpu", "memory"), [(256, 4096), (1024, 512), (512, 512), (1024, 1024), (256, 1536)])
def test_f12_invalid_fargate_pairs_are_refused(cpu, memory):
    assert memory not in console_memory_sizes().get(cpu, [])


def test_f12_defaults_are_a_valid_pair():
    variables = infra_hcl.module("console").variables
    assert variables["memory"]["default"] in FARGATE_SIZES[variables["cpu"]["default"]]


# --- F10: the frame-lag scaling policy has the same size at any fleet size ------------------------------


def json_selector(selector: str, document: dict) -> object:
    """Evaluate a CloudWatch Logs JSON selector of the form `$.Name` or `$.Name[0]`."""
    match = re.fullmatch(r"\$\.(\w+)(?:\[(\d+)\])?", selector)
    assert match, selector
    value = document[match.group(1)]
    return value[int(match.group(2))] if match.group(2) is not None else value


def test_f10_frame_lag_policy_is_one_query_at_any_fleet_size():
    # GIVEN the worker module  WHEN its lag policy is read
    worker = infra_hcl.module("worker")
    policy = worker.resource("aws_appautoscaling_policy", "lag")
    text = repr(policy)
    # THEN nothing in it is per camera: no dynamic block, no metric math over a list of cameras
    assert "dynamic" not in text and "camera" not in text.lower() and "for_each" not in text
    (configuration,) = policy["target_tracking_scaling_policy_configuration"]
    (custom,) = configuration["customized_metric_specification"]
    assert "metrics" not in custom and custom["statistic"] == "Maximum"
    # and no resource of the module's scaling is created per camera
    for type_ in ("aws_appautoscaling_policy", "aws_cloudwatch_log_metric_filter"):
        for body in worker.resources[type_].values():
            assert "for_each" not in body and "count" not in body


def test_f10_metric_filter_reads_the_lag_from_the_workers_real_emf_line():
    # GIVEN the EMF document the worker writes for a camera (worker.metrics, powertools)
    from worker import metrics

    record = metrics.emf_record("cam-7", {metrics.LAG_METRIC: 12.5, "FramesDecoded": 3}, {metrics.LAG_METRIC: "Seconds"})
    without_lag = metrics.emf_record("cam-7", {"FramesDecoded": 3}, {})
    # WHEN the worker module's metric filter is applied to it
    worker = infra_hcl.module("worker")
    metric_filter = worker.resource("aws_cloudwatch_log_metric_filter", "this")
    assert metric_filter["log_group_name"] == "${aws_cloudwatch_log_group.this.name}"
    lag = worker.locals["lag_metric"]
    resolve = {"${local.lag_metric.name}": lag["name"]}
    pattern = metric_filter["pattern"]
    (transformation,) = metric_filter["metric_transformation"]
    selector = transformation["value"]
    for reference, value in resolve.items():
        pattern, selector = pattern.replace(reference, value), selector.replace(reference, value)
    match = re.fullmatch(r"\{ (\$\.\w+\[0\]) >= 0 \}", pattern)
    assert match, pattern
    # THEN the pattern matches lines with a lag, and the value is the lag in seconds
    assert json_selector(match.group(1), record) >= 0
    assert lag["name"] not in without_lag
    assert json_selector(selector, record) == 12.5
    assert (lag["namespace"], lag["name"], lag["dimension"]) == (metrics.NAMESPACE, metrics.LAG_METRIC, metrics.DIMENSION)
    assert (transformation["namespace"], transformation["name"], transformation["unit"]) == (
        "${local.lag_metric.namespace}", "${local.lag_metric.fleet_name}", "Seconds"
    )


# --- F1: the console's sign-in has a way out, chosen by the operator ------------------------------------


def test_f1_root_offers_nat_transit_gateway_or_token_sign_in():
    root = infra_hcl.root()
    egress = root.variables["console_egress"]
    assert egress["default"] == {}
    assert 'mode               = optional(string, "nat_gateway")' in egress["type"] or "nat_gateway" in egress["type"]
    for word in ("nat_gateway", "transit_gateway", "none", "$"):  # each mode, with its cost
        assert word in egress["description"]
    assert root.modules["network"]["egress"] == "${var.console_egress}"
    assert root.modules["console"]["sign_in"] == '${var.console_egress.mode == "none" ? "token" : "cognito"}'
    network = infra_hcl.module("network")
    conditions = [v["condition"] for v in network.variables["egress"]["validation"]]
    assert '${contains(["nat_gateway", "transit_gateway", "none"], var.egress.mode)}' in conditions


def test_f1_nat_gateway_mode_routes_the_private_subnets_out():
    # GIVEN egress.mode = nat_gateway  THEN a NAT gateway in a public subnet, the public subnet routed to an
    # internet gateway, and the private route table's default route to the NAT gateway
    network = infra_hcl.module("network")
    nat_only = '${var.egress.mode == "nat_gateway" ? 1 : 0}'
    for type_, name in [("aws_internet_gateway", "this"), ("aws_nat_gateway", "this"), ("aws_eip", "this"),
                        ("aws_route_table", "public"), ("aws_route", "public_internet"), ("aws_route", "private_nat")]:
        assert network.resource(type_, name)["count"] == nat_only, (type_, name)
    assert network.resource("aws_route", "public_internet")["gateway_id"] == "${aws_internet_gateway.this[0].id}"
    private_nat = network.resource("aws_route", "private_nat")
    assert (private_nat["route_table_id"], private_nat["destination_cidr_block"], private_nat["nat_gateway_id"]) == (
        "${aws_route_table.this.id}", "0.0.0.0/0", "${aws_nat_gateway.this[0].id}"
    )
    assert network.resource("aws_nat_gateway", "this")["subnet_id"] == "${aws_subnet.public[local.azs[0]].id}"
    assert network.locals["public_subnet_cidrs"].startswith('${var.egress.mode == "nat_gateway" ? {')


def test_f1_transit_gateway_mode_attaches_and_routes_to_the_operators_gateway():
    network = infra_hcl.module("network")
    attachment = network.resource("aws_ec2_transit_gateway_vpc_attachment", "this")
    assert attachment["transit_gateway_id"] == "${var.egress.transit_gateway_id}"
    route = network.resource("aws_route", "private_transit_gateway")
    assert (route["route_table_id"], route["destination_cidr_block"]) == ("${aws_route_table.this.id}", "0.0.0.0/0")
    assert route["transit_gateway_id"] == "${aws_ec2_transit_gateway_vpc_attachment.this[0].transit_gateway_id}"


def test_f1_token_mode_needs_no_route_out_and_no_cognito():
    console = infra_hcl.module("console")
    assert console.locals["cognito"] == '${var.sign_in == "cognito"}'
    assert console.locals["environment"]["VIGIL_CONSOLE_AUTH"] == '${local.cognito ? "alb" : "token"}'
    # no HTTPS out of the VPC in token mode, no app client, a login token secret instead
    for name in ("alb_to_idp", "task_to_alb_keys"):
        rule = console.resource("aws_vpc_security_group_egress_rule", name)
        assert rule["for_each"] == "${toset(local.cognito ? var.idp_egress_cidrs : [])}"
    assert console.resource("aws_cognito_user_pool_client", "this")["count"] == "${local.cognito ? 1 : 0}"
    for type_ in ("aws_secretsmanager_secret", "aws_secretsmanager_secret_version"):
        assert console.resource(type_, "token")["count"] == "${local.cognito ? 0 : 1}"
    assert console.variables["cognito"]["default"] is None
    (precondition,) = console.resource("aws_lb_listener", "this")["lifecycle"][0]["precondition"]
    assert precondition["condition"] == "${!local.cognito || var.cognito != null}"
    # and the console really has a token mode that reads the token Terraform injects
    from console import env

    assert env.TOKEN_ENV == "VIGIL_CONSOLE_TOKEN" and env.AUTH_MODE_ENV == "VIGIL_CONSOLE_AUTH"


def test_f1_worker_gets_no_internet_path_from_the_egress():
    # the route table is shared, so the worker's security group is what keeps video off the NAT gateway
    network = infra_hcl.module("network")
    for name, rule in network.resources["aws_vpc_security_group_egress_rule"].items():
        assert "cidr_ipv4" not in rule, name
        assert rule["security_group_id"] == "${aws_security_group.worker.id}"


# --- F2: the region must run KVS, and every interface endpoint service must exist there --------------------

KVS_REGIONS = {  # https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/availability.html and
    # https://docs.aws.amazon.com/general/latest/gr/akv.html (2025), less China
    "us-east-1", "us-east-2", "us-west-2", "us-gov-east-1", "us-gov-west-1", "af-south-1", "ap-east-1",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-5",
    "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-2", "me-south-1", "sa-east-1",
}


def test_f2_root_accepts_only_kvs_regions():
    validations = infra_hcl.root().variables["region"]["validation"]
    lists = [re.findall(r'"([a-z0-9-]+)"', v["condition"]) for v in validations if "contains(" in v["condition"]]
    (regions,) = lists
    assert set(regions) == KVS_REGIONS
    assert "us-west-1" not in regions and "eu-north-1" not in regions
    assert infra_hcl.root().variables["region"]["default"] in KVS_REGIONS


def test_f2_every_interface_endpoint_service_is_looked_up_at_plan_time():
    network = infra_hcl.module("network")
    lookup = network.data["aws_vpc_endpoint_service"]["interface"]
    endpoint = network.resource("aws_vpc_endpoint", "interface")
    assert lookup["for_each"] == endpoint["for_each"] == "${var.interface_endpoint_services}"
    assert lookup["service_name"] == endpoint["service_name"] == "com.amazonaws.${local.region}.${each.key}"
    assert lookup["service_type"] == "Interface"


# --- F3: subnets and endpoints only in zones that offer every service ---------------------------------------


def test_f3_zones_are_those_offering_every_interface_service():
    network = infra_hcl.module("network")
    assert network.locals["endpoint_zones"] == (
        "${setintersection([for service in data.aws_vpc_endpoint_service.interface : service.availability_zones] ...)}"
    )
    usable = network.locals["usable_zones"]
    assert "contains(local.endpoint_zones, name)" in usable
    assert "!contains(var.excluded_zone_ids, data.aws_availability_zones.available.zone_ids[index])" in usable
    assert network.locals["azs"] == "${slice(local.usable_zones, 0, min(var.az_count, length(local.usable_zones)))}"
    # only real availability zones (no Local Zones)
    (zone_filter,) = network.data["aws_availability_zones"]["available"]["filter"]
    assert zone_filter == {"name": "opt-in-status", "values": ["opt-in-not-required"]}
    # the subnets are built from local.azs, and each endpoint uses only subnets in zones it is offered in
    assert network.locals["private_subnet_cidrs"].startswith("${{for index, az in local.azs :")
    subnets = network.resource("aws_vpc_endpoint", "interface")["subnet_ids"]
    assert "contains(data.aws_vpc_endpoint_service.interface[each.key].availability_zones, az)" in subnets
    # too few zones is a plan error with a reason, not an AWS error at apply
    zones, room = network.resource("aws_vpc", "this")["lifecycle"][0]["precondition"]
    assert zones["condition"] == "${length(local.azs) == var.az_count}"
    # and the public /24s (the VPC's last /20) never overlap a private /20
    assert room["condition"] == '${var.egress.mode != "nat_gateway" || pow(2, local.newbits) > var.az_count}'
    assert network.variables["excluded_zone_ids"]["default"] == ["use1-az3"]


# --- removing everything again (docs/deploy.md): one switch per kind of protected store ------------------


def test_teardown_switches_reach_every_protected_store():
    root = infra_hcl.root()
    assert root.modules["training_data"]["force_destroy"] == "${var.force_destroy}"
    for module_name in ("alerts", "worker", "console"):
        assert root.modules[module_name]["deletion_protection"] == "${var.deletion_protection}"
    # the image repositories go with the tables (destroy fails on a repository that holds images otherwise)
    for module_name in ("worker", "console"):
        repository = infra_hcl.module(module_name).resource("aws_ecr_repository", "this")
        assert repository["force_delete"] == "${!var.deletion_protection}"
    for module_name in ("worker", "alerts", "console"):
        for table in infra_hcl.module(module_name).resources["aws_dynamodb_table"].values():
            assert table["deletion_protection_enabled"] == "${var.deletion_protection}"
