"""`python -m inference.deploy` against a moto server holding the deployment's resources.

moto 5.2.5 has no SageMaker UpdateEndpoint (it answers "not implemented"), so `BlueGreen` plays the
service's side of that one call: botocore still validates the request against SageMaker's real API
model and serialises it, the test records what would go on the wire, and moto's endpoint is switched
to the new config (success) or left alone (a rollback). Every other call is moto's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from deploy_world import ALARMS, ENDPOINT, MODEL_VERSION, REGISTRY, ROLE_ARN, push_image, terraform_outputs

from inference.deploy import EXAMPLE_OUTPUTS, main, sagemaker_name


class BlueGreen:
    """SageMaker's UpdateEndpoint for moto: records each request body; `succeed` switches the endpoint."""

    def __init__(self, deployed, succeed: bool = True) -> None:
        self.deployed = deployed
        self.succeed = succeed
        self.requests: list[dict] = []

    def __call__(self, params: dict, **kwargs: object) -> tuple[AWSResponse, dict]:
        request = json.loads(params["body"])
        self.requests.append(request)
        if self.succeed:
            sagemaker = self.deployed.client("sagemaker")
            sagemaker.delete_endpoint(EndpointName=request["EndpointName"])
            sagemaker.create_endpoint(EndpointName=request["EndpointName"],
                                      EndpointConfigName=request["EndpointConfigName"])
        return AWSResponse("", 200, {}, None), {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123:endpoint/{ENDPOINT}"}


@pytest.fixture
def blue_green(deployed) -> BlueGreen:
    return BlueGreen(deployed)


def session_with(blue_green: BlueGreen) -> boto3.session.Session:
    session = boto3.session.Session(region_name="us-east-1")
    session.events.register("before-call.sagemaker.UpdateEndpoint", blue_green)
    return session


@pytest.fixture(autouse=True)
def _no_docker_no_terraform(monkeypatch):
    """Deterministic whether or not this machine has them: the binaries' names point at nothing."""
    monkeypatch.setenv("VIGIL_DOCKER", "vigil-test-no-docker")
    monkeypatch.setenv("VIGIL_TERRAFORM", "vigil-test-no-terraform")


def deploy(*args: str, outputs: Path, model: Path, session=None) -> int:
    return main(["--outputs", str(outputs), "--model", str(model), "--tag", "t1", *args], session=session)


def test_deploy_ships_the_artifact_updates_the_endpoint_blue_green_and_rolls_the_worker(
    deployed, blue_green, model_archive, capsys
):
    # GIVEN the deployment as Terraform left it, and both images already pushed (no Docker here)
    push_image(deployed, "vigil-worker", "worker-t1")
    push_image(deployed, "vigil-serving", "serving-t1")
    ecs = deployed.client("ecs")
    deployment_before = ecs.describe_services(cluster="vigil", services=["vigil-worker"])["services"][0]["deployments"]

    # WHEN make deploy runs
    code = deploy(outputs=deployed.outputs_file, model=model_archive, session=session_with(blue_green))

    # THEN it says it skipped Docker, and succeeds
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "==> docker not found (VIGIL_DOCKER=vigil-test-no-docker): skipping image build and push" in out

    # AND the artifact is in the archive bucket under models/<version>/, encrypted with the archive key
    s3 = deployed.client("s3")
    key = f"models/{MODEL_VERSION}/model.tar.gz"
    stored = s3.get_object(Bucket="vigil-archive", Key=key)
    assert stored["Body"].read() == model_archive.read_bytes()
    assert stored["ServerSideEncryption"] == "aws:kms"

    # AND a new SageMaker model serves the new image and artifact with the current model's role and environment
    sagemaker = deployed.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model_name = config["ProductionVariants"][0]["ModelName"]
    model = sagemaker.describe_model(ModelName=model_name)
    old = sagemaker.describe_model(ModelName="vigil-detector-old")  # moto keeps no EnableNetworkIsolation: False
    assert (model["ExecutionRoleArn"], model["EnableNetworkIsolation"], model["PrimaryContainer"]) == (
        ROLE_ARN, old["EnableNetworkIsolation"],
        {"Image": f"{REGISTRY}/vigil-serving:serving-t1",
         "ModelDataUrl": f"s3://vigil-archive/{key}", "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}},
    )
    assert model_name.startswith(f"{ENDPOINT}-{MODEL_VERSION}-")
    assert [{k: v[k] for k in ("VariantName", "ModelName", "InstanceType", "InitialInstanceCount")}
            for v in config["ProductionVariants"]] == [
        {"VariantName": "primary", "ModelName": model_name, "InstanceType": "ml.c5.large", "InitialInstanceCount": 2}
    ]

    # AND the endpoint was updated once, blue/green, canary 10 %, rolled back by the endpoint's own alarms
    assert blue_green.requests == [{
        "EndpointName": ENDPOINT,
        "EndpointConfigName": endpoint["EndpointConfigName"],
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                },
                "TerminationWaitInSeconds": 300,
                "MaximumExecutionTimeoutInSeconds": 3600,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARMS[0]}, {"AlarmName": ALARMS[1]}]},
        },
    }]
    assert endpoint["EndpointConfigName"] != "vigil-detector-old"

    # AND the worker service runs a new task definition revision with the new image, all else kept
    service = ecs.describe_services(cluster="vigil", services=["vigil-worker"])["services"][0]
    assert service["taskDefinition"].endswith("task-definition/vigil-worker:2")
    revision = ecs.describe_task_definition(taskDefinition="vigil-worker:2")["taskDefinition"]
    container = revision["containerDefinitions"][0]
    assert (container["name"], container["image"], container["environment"]) == (
        "worker", f"{REGISTRY}/vigil-worker:worker-t1", [{"name": "VIGIL_ENDPOINT_NAME", "value": ENDPOINT}],
    )
    assert (revision["cpu"], revision["memory"], revision["networkMode"], revision["taskRoleArn"]) == (
        "1024", "2048", "awsvpc", "arn:aws:iam::123456789012:role/vigil-task",
    )
    # (moto records forceNewDeployment as a new deployment id)
    assert service["deployments"][0]["id"] != deployment_before[0]["id"]
    assert out.splitlines()[-1] == "deployed " + json.dumps({
        "endpoint_config": endpoint["EndpointConfigName"], "model_data_url": f"s3://vigil-archive/{key}",
        "model_version": MODEL_VERSION, "serving_image": f"{REGISTRY}/vigil-serving:serving-t1",
        "task_definition": service["taskDefinition"], "worker_image": f"{REGISTRY}/vigil-worker:worker-t1",
    }, sort_keys=True)


def test_a_rolled_back_endpoint_stops_the_deploy_before_the_worker(deployed, model_archive, capsys):
    # GIVEN images in ECR, and SageMaker rolling the update back (an alarm fired during the canary)
    push_image(deployed, "vigil-worker", "worker-t1")
    push_image(deployed, "vigil-serving", "serving-t1")
    rollback = BlueGreen(deployed, succeed=False)

    # WHEN make deploy runs
    code = deploy(outputs=deployed.outputs_file, model=model_archive, session=session_with(rollback))

    # THEN it fails with exit 1 and one line, and the worker service still runs revision 1
    assert (code, capsys.readouterr().err) == (1, (
        f"error: endpoint {ENDPOINT} rolled back to vigil-detector-old: an alarm fired or the new fleet failed its "
        "health checks; the ECS service was not rolled\n"
    ))
    service = deployed.client("ecs").describe_services(cluster="vigil", services=["vigil-worker"])["services"][0]
    assert service["taskDefinition"].endswith("vigil-worker:1")


def test_alarms_named_in_the_outputs_are_used_and_checked(deployed, blue_green, model_archive, tmp_path, capsys):
    # GIVEN images in ECR and outputs naming the rollback alarms, one of which does not exist
    push_image(deployed, "vigil-worker", "worker-t1")
    push_image(deployed, "vigil-serving", "serving-t1")
    outputs = tmp_path / "named.json"
    outputs.write_text(json.dumps(terraform_outputs(endpoint_alarm_names=[ALARMS[0], "vigil-nope"])))

    # WHEN make deploy runs THEN it refuses before touching the endpoint, naming the missing alarm
    code = deploy(outputs=outputs, model=model_archive, session=session_with(blue_green))
    assert (code, capsys.readouterr().err, blue_green.requests) == (
        2, "error: CloudWatch alarm(s) not found: vigil-nope\n", [],
    )

    # AND with --alarm naming an existing one, only that alarm guards the update
    assert deploy("--alarm", ALARMS[1], "--traffic", "linear", "--step-percent", "25", outputs=outputs,
                  model=model_archive, session=session_with(blue_green)) == 0
    assert blue_green.requests[0]["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": ALARMS[1]}]
    }
    assert blue_green.requests[0]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "LINEAR", "WaitIntervalInSeconds": 300, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }


def test_without_docker_an_image_missing_from_ecr_is_a_clear_error(deployed, model_archive, capsys):
    # GIVEN no Docker here and no worker image with this tag in ECR
    # WHEN make deploy runs THEN exit 2 with one line saying what to do, and nothing was uploaded
    assert deploy(outputs=deployed.outputs_file, model=model_archive) == 2
    assert capsys.readouterr().err == (
        f"error: image {REGISTRY}/vigil-worker:worker-t1 is not in ECR and cannot be built here: run `make deploy` "
        "on a machine with Docker, or pass --tag of images already pushed\n"
    )
    assert deployed.client("s3").list_objects_v2(Bucket="vigil-archive", Prefix="models/")["KeyCount"] == 0


def test_dry_run_prints_every_call_and_makes_none(deployed, model_archive, monkeypatch, capsys):
    # GIVEN boto3 pointed at a port where nothing listens: any real call would fail
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    # WHEN make deploy DRY_RUN=1 runs
    code = deploy("--dry-run", outputs=deployed.outputs_file, model=model_archive)

    # THEN it succeeds and prints every call it would make, in order, with its parameters
    out = capsys.readouterr().out
    planned = [line.removeprefix("[dry-run] ").split(" ", 1) for line in out.splitlines()
               if line.startswith("[dry-run] ")]
    assert [operation for operation, _ in planned] == [
        "sagemaker.describe_endpoint", "sagemaker.describe_endpoint_config", "sagemaker.describe_model",
        "ecr.describe_images", "ecr.describe_images", "s3.upload_file",
        "sagemaker.describe_endpoint", "sagemaker.describe_endpoint_config", "sagemaker.describe_model",
        "sagemaker.create_model", "sagemaker.create_endpoint_config", "cloudwatch.describe_alarms",
        "sagemaker.update_endpoint", "sagemaker.wait:endpoint_in_service",
        "ecs.describe_services", "ecs.describe_task_definition", "ecs.register_task_definition",
        "ecs.update_service",
    ]
    params = {operation: json.loads(shown) for operation, shown in planned}
    assert params["s3.upload_file"] == {
        "Bucket": "vigil-archive", "Filename": str(model_archive), "Key": f"models/{MODEL_VERSION}/model.tar.gz",
        "ExtraArgs": {"ServerSideEncryption": "aws:kms",
                      "SSEKMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/archive"},
    }
    assert params["ecs.update_service"] == {
        "cluster": "vigil", "service": "vigil-worker", "taskDefinition": "<new task definition revision>",
        "forceNewDeployment": True,
    }
    assert params["sagemaker.update_endpoint"]["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "<alarm on the endpoint>"}]
    }
    assert params["sagemaker.create_model"] == {
        "ModelName": sagemaker_name(ENDPOINT, MODEL_VERSION, params["sagemaker.create_model"]["ModelName"][-8:]),
        "ExecutionRoleArn": "<current execution role>", "EnableNetworkIsolation": True,
        "PrimaryContainer": {"Image": "<current serving image>:serving-t1", "Environment": {},
                             "ModelDataUrl": f"s3://vigil-archive/models/{MODEL_VERSION}/model.tar.gz"},
    }
    assert params["ecs.register_task_definition"]["containerDefinitions"] == [
        {"name": "worker", "image": f"{REGISTRY}/vigil-worker:worker-t1"}
    ]
    # AND moto saw none of it
    assert deployed.client("s3").list_objects_v2(Bucket="vigil-archive", Prefix="models/")["KeyCount"] == 0
    assert deployed.client("ecs").list_task_definitions()["taskDefinitionArns"] == [
        "arn:aws:ecs:us-east-1:123456789012:task-definition/vigil-worker:1"
    ]
    assert code == 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-outputs", "error: terraform not found (VIGIL_TERRAFORM=vigil-test-no-terraform): skipping `terraform output`;"),
        ("bad-outputs", "error: the Terraform outputs lack ecs_service_name, sagemaker_endpoint_name: is infra/ applied?"),
        ("no-model", "error: model artifact not found: "),
        ("corrupt-model", "error: cannot read model artifact "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(setup, message, tmp_path, model_archive, capsys):
    # GIVEN one thing wrong with the input (no AWS call is reached in any case)
    outputs = tmp_path / "outputs.json"
    bad = terraform_outputs()
    if setup == "bad-outputs":
        del bad["ecs_service_name"], bad["sagemaker_endpoint_name"]
    outputs.write_text(json.dumps(bad))
    model = {"no-model": tmp_path / "missing.tar.gz", "corrupt-model": tmp_path / "corrupt.tar.gz"}.get(
        setup, model_archive
    )
    if setup == "corrupt-model":
        model.write_bytes(b"\x1f\x8b not really gzip")
    argv = ["--model", str(model), "--tag", "t1", "--dry-run"] + ([] if setup == "no-outputs" else
                                                                  ["--outputs", str(outputs)])

    # WHEN make deploy runs THEN exit 2 with one line on stderr
    code = main(argv)
    err = capsys.readouterr().err
    assert (code, err.count("\n")) == (2, 1)
    assert err.startswith(message)


def test_sagemaker_names_fit_the_63_character_limit():
    assert sagemaker_name("vigil-detector", "20261125T145607Z-3f2a9c1e", "20261125150000") == (
        "vigil-detector-20261125T145607Z-3f2a9c1e-20261125150000"
    )
    long = sagemaker_name("x" * 80, "v_1.2", "abc12345")
    assert (len(long), long.endswith("-abc12345")) == (63, True)


def test_a_dry_run_needs_no_account_with_the_example_outputs(model_archive, monkeypatch, tmp_path, capsys):
    # GIVEN no AWS account at all: no credentials anywhere, boto3 pointed where nothing listens
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    # WHEN make deploy DRY_RUN=1 ARGS="--outputs infra/outputs.example.json" runs (the documented example)
    code = main(["--outputs", str(EXAMPLE_OUTPUTS), "--model", str(model_archive), "--tag", "t1", "--dry-run"])

    # THEN it prints the plan for the example deployment's names and succeeds
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[dry-run] ecs.update_service " in out
    assert '"Bucket": "vigil-archive-123456789012-us-east-1"' in out
    assert out.splitlines()[-1].startswith("planned {")


def test_the_example_outputs_are_outputs_of_the_terraform_root():
    # GIVEN infra/outputs.example.json THEN each of its names is an output of infra/ (as `terraform output -json` prints it)
    outputs_tf = (EXAMPLE_OUTPUTS.parent / "outputs.tf").read_text()
    declared = set(re.findall(r'^output "([a-z0-9_]+)"', outputs_tf, re.MULTILINE))
    example = json.loads(EXAMPLE_OUTPUTS.read_text())
    assert set(example) <= declared
    assert {value["type"] for value in example.values()} == {"string"}
