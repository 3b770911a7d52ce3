"""What the deploy tests share besides fixtures: the names Terraform gives, its outputs, a tiny
model, and what `docker push` leaves in ECR. A module of its own name: `from conftest import ...`
picks up whichever conftest was imported first when several test folders run together."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
ENDPOINT = "vigil-detector"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/vigil-endpoint"
OLD_SERVING_IMAGE = f"{REGISTRY}/vigil-serving:serving-old"
OLD_WORKER_IMAGE = f"{REGISTRY}/vigil-worker:worker-old"
ALARMS = ["vigil-endpoint-5xx", "vigil-endpoint-model-latency"]
MODEL_VERSION = "deploy-test-1"


class Brightness(torch.nn.Module):
    """A frame model small enough to build in a test: the mean brightness of 4 x 4 blocks."""

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = frames.float().mean(dim=3).unsqueeze(1)
        maps = torch.nn.functional.adaptive_avg_pool2d(x, (4, 4)).squeeze(1)
        return maps.flatten(1).amax(dim=1), maps


def terraform_outputs(**overrides: object) -> dict:
    """What `terraform output -json` prints for the deployment (the names in infra/outputs.tf)."""
    values = {
        "region": "us-east-1",
        "ecr_repository_url": f"{REGISTRY}/vigil-worker",
        "ecs_cluster_name": "vigil",
        "ecs_service_name": "vigil-worker",
        "worker_task_definition_family": "vigil-worker",
        "worker_container_name": "worker",
        "sagemaker_endpoint_name": ENDPOINT,
        "sagemaker_model_name": "vigil-detector-old",
        "archive_bucket_name": "vigil-archive",
        "archive_kms_key_arn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/archive",
        **overrides,
    }
    return {name: {"sensitive": False, "type": "string", "value": value} for name, value in values.items()}


@dataclass
class Deployed:
    """The moto server holding what `terraform apply` and an earlier deploy left."""

    stack: object
    outputs_file: Path

    def client(self, service: str):
        return self.stack.client(service)


def push_image(deployed: Deployed, repository: str, tag: str) -> None:
    """What `docker push` leaves in ECR (the tests run where there is no Docker engine)."""
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{tag.encode().hex():0<64}"[:71], "size": 1, "mediaType":
                           "application/vnd.docker.container.image.v1+json"}, "layers": []}
    deployed.client("ecr").put_image(repositoryName=repository, imageTag=tag, imageManifest=json.dumps(manifest))
