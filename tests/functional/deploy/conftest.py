"""Fixtures for `python -m inference.deploy`: the deployment's resources as Terraform leaves them, in a
moto server (`local_stack`), the matching `terraform output -json` file, and a small model artifact
(helpers: `deploy_world`)."""

from __future__ import annotations

import json
import tarfile
import warnings
from pathlib import Path

import pytest
import torch
from deploy_world import (
    ACCOUNT,
    ALARMS,
    ENDPOINT,
    MODEL_VERSION,
    OLD_SERVING_IMAGE,
    OLD_WORKER_IMAGE,
    ROLE_ARN,
    Brightness,
    Deployed,
    terraform_outputs,
)


@pytest.fixture
def model_archive(tmp_path: Path) -> Path:
    """model.tar.gz in the SageMaker layout (model.pt + config.json at its root)."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated", category=FutureWarning)
        torch.jit.script(Brightness()).save(str(model_dir / "model.pt"))
    (model_dir / "config.json").write_text(json.dumps({"model_version": MODEL_VERSION, "input_size": [8, 8]}))
    archive = model_dir / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("model.pt", "config.json"):
            tar.add(model_dir / name, arcname=name)
    return archive


@pytest.fixture
def deployed(local_stack, tmp_path: Path) -> Deployed:
    """ECR repositories, the ECS cluster/service/task definition, the SageMaker model, endpoint config and
    endpoint, and the endpoint's alarms, as Terraform creates them; the outputs as a file."""
    ecr = local_stack.client("ecr")
    for repository in ("vigil-worker", "vigil-serving"):
        ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")
    ecs = local_stack.client("ecs")
    ecs.create_cluster(clusterName="vigil")
    ecs.register_task_definition(
        family="vigil-worker", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="1024", memory="2048",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/vigil-task-exec",
        taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/vigil-task",
        containerDefinitions=[{"name": "worker", "image": OLD_WORKER_IMAGE, "essential": True,
                               "environment": [{"name": "VIGIL_ENDPOINT_NAME", "value": ENDPOINT}]}],
    )
    ecs.create_service(cluster="vigil", serviceName="vigil-worker", taskDefinition="vigil-worker:1", desiredCount=1,
                       launchType="FARGATE")
    sagemaker = local_stack.client("sagemaker")
    sagemaker.create_model(
        ModelName="vigil-detector-old", ExecutionRoleArn=ROLE_ARN, EnableNetworkIsolation=True,
        PrimaryContainer={"Image": OLD_SERVING_IMAGE, "ModelDataUrl": "s3://vigil-archive/models/old/model.tar.gz",
                          "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="vigil-detector-old",
        ProductionVariants=[{"VariantName": "primary", "ModelName": "vigil-detector-old",
                             "InstanceType": "ml.c5.large", "InitialInstanceCount": 2}],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="vigil-detector-old")
    cloudwatch = local_stack.client("cloudwatch")
    for alarm, metric in zip(ALARMS, ("Invocation5XXErrors", "ModelLatency"), strict=True):
        cloudwatch.put_metric_alarm(
            AlarmName=alarm, Namespace="AWS/SageMaker", MetricName=metric, Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
            Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}],
        )
    cloudwatch.put_metric_alarm(  # an alarm on something else, which must not roll the endpoint back
        AlarmName="vigil-alert-dlq-depth", Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
        Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
    )
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(terraform_outputs()))
    return Deployed(local_stack, outputs_file)
