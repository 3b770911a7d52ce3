"""`python -m inference.deploy` (`make deploy`): ship a model and the current code to the AWS deployment.

1. Reads names and ARNs from `terraform output -json` in `infra/` (or `--outputs FILE.json`).
2. Builds and pushes the worker image (`worker/Dockerfile`) and the serving image
   (`inference/Dockerfile`) to ECR, tagged `worker-<tag>` / `serving-<tag>` (tags are immutable; an
   image already there is not pushed again). Without a docker binary or engine these steps are
   skipped with a message, and the images must already be in ECR (pushed from a machine with Docker).
3. Checks the model artifact (it must load with the handler) and uploads it to
   `s3://<archive bucket>/models/<model_version>/model.tar.gz` (SSE-KMS with the archive key).
4. Creates a SageMaker model (the current model's role, environment and network isolation, the new
   image and artifact) and an endpoint config (the current variants with the new model), then
   updates the endpoint blue/green: canary (default) or linear traffic shifting, with automatic
   rollback when one of the endpoint's CloudWatch alarms fires, and waits for the outcome.
5. Registers a new revision of the worker task definition with the new image and rolls the ECS
   service onto it (`forceNewDeployment`; the service's circuit breaker rolls a failing one back).

`--dry-run` (`make deploy DRY_RUN=1`) prints every call it would make (service, operation,
parameters) and every docker command, and makes none; it still reads the Terraform outputs.
Exit codes: 0 deployed, 1 the deployment failed or was rolled back, 2 bad input (outputs, artifact,
image missing).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from inference import env
from inference.aws_calls import Calls
from inference.inference import CONFIG_FILE, MODEL_FILE, ModelLoadError, model_fn

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
WORKER_DOCKERFILE = "worker/Dockerfile"
SERVING_DOCKERFILE = "inference/Dockerfile"
# Outputs that are optional, by the names the deploy accepts for them (first found wins).
SERVING_REPOSITORY_OUTPUTS = ("serving_ecr_repository_url", "inference_ecr_repository_url")
# What `terraform output -json` prints for a deployment with the default names, in a made-up account:
# `make deploy DRY_RUN=1 ARGS="--outputs infra/outputs.example.json"` shows every call with no account.
EXAMPLE_OUTPUTS = REPO_ROOT / "infra" / "outputs.example.json"
EXAMPLE_OUTPUTS_HINT = "infra/outputs.example.json"
ALARM_OUTPUTS = ("endpoint_alarm_names", "sagemaker_endpoint_alarm_names")
TASK_DEFINITION_FIELDS = (
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode",
    "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
)
ENDPOINT_CONFIG_FIELDS = ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig")


class DeployError(RuntimeError):
    """The deployment cannot go on; `code` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Targets:
    """What the deploy touches, from the Terraform outputs."""

    region: str
    worker_repository_url: str
    ecs_cluster: str
    ecs_service: str
    worker_container: str
    endpoint_name: str
    archive_bucket: str
    archive_kms_key_arn: str | None = None
    serving_repository_url: str | None = None
    alarm_names: tuple[str, ...] = ()

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> Targets:
        """`terraform output -json` ({name: {"value": ...}}) or a plain {name: value} mapping."""
        values = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in outputs.items()}
        required = {
            "region": "region", "worker_repository_url": "ecr_repository_url", "ecs_cluster": "ecs_cluster_name",
            "ecs_service": "ecs_service_name", "worker_container": "worker_container_name",
            "endpoint_name": "sagemaker_endpoint_name", "archive_bucket": "archive_bucket_name",
        }
        missing = [name for name in required.values() if not values.get(name)]
        if missing:
            raise DeployError(f"the Terraform outputs lack {', '.join(missing)}: is infra/ applied?")
        serving = next((values[k] for k in SERVING_REPOSITORY_OUTPUTS if values.get(k)), None)
        alarms = next((values[k] for k in ALARM_OUTPUTS if values.get(k)), [])
        return cls(
            **{field: str(values[name]) for field, name in required.items()},
            archive_kms_key_arn=values.get("archive_kms_key_arn") or None,
            serving_repository_url=serving,
            alarm_names=tuple(alarms),
        )


def read_outputs(outputs_file: Path | None, infra_dir: Path) -> dict[str, Any]:
    """The outputs from FILE, else from `terraform output -json` run in `infra_dir`."""
    if outputs_file is not None:
        try:
            return json.loads(outputs_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DeployError(f"cannot read --outputs {outputs_file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise DeployError(f"--outputs {outputs_file} is not JSON: {exc}") from None
    terraform = os.environ.get(env.VIGIL_TERRAFORM, "terraform")
    if shutil.which(terraform) is None:
        raise DeployError(
            f"terraform not found ({env.VIGIL_TERRAFORM}={terraform}): skipping `terraform output`; install "
            f"Terraform or pass --outputs FILE.json (the output of `terraform output -json` in {infra_dir}); "
            f"to see what a deploy does without an account: --dry-run --outputs {EXAMPLE_OUTPUTS_HINT}"
        )
    print(f"$ {terraform} -chdir={infra_dir} output -json", flush=True)
    result = subprocess.run(
        [terraform, f"-chdir={infra_dir}", "output", "-json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise DeployError(f"terraform output failed in {infra_dir}: {reason}")
    outputs = json.loads(result.stdout or "{}")
    if not outputs:
        raise DeployError(f"terraform output in {infra_dir} is empty: run terraform apply there first")
    return outputs


def default_tag() -> str:
    """The git commit (`<sha>`, or `<sha>-dirty-<UTC time>` with local changes), else the UTC time."""
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return now
    return f"{sha}-dirty-{now}" if dirty else sha


def sagemaker_name(*parts: str) -> str:
    """A SageMaker resource name (letters, digits, hyphens, at most 63) from `parts`, the last kept whole."""
    clean = [re.sub(r"[^A-Za-z0-9]+", "-", part).strip("-") for part in parts]
    head = "-".join(clean[:-1])[: 62 - len(clean[-1])].strip("-")
    return f"{head}-{clean[-1]}" if head else clean[-1]


def check_artifact(path: Path) -> str:
    """The artifact's model_version, after loading it with the handler as the endpoint will."""
    if not path.is_file():
        raise DeployError(f"model artifact not found: {path} (train one with `make train`, or pass --model)")
    with tempfile.TemporaryDirectory(prefix="vigil-deploy-") as workdir:
        try:
            with tarfile.open(path, "r:gz") as tar:
                names = set(tar.getnames())
                if not {MODEL_FILE, CONFIG_FILE} <= names:
                    raise DeployError(f"{path} must hold {MODEL_FILE} and {CONFIG_FILE} at its root")
                tar.extractall(workdir, filter="data")
            model = model_fn(workdir)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DeployError(f"cannot read model artifact {path}: {' '.join(str(exc).split())}") from None
        except ModelLoadError as exc:
            raise DeployError(f"model artifact {path} does not load: {exc}") from None
    return model.model_version


class Deployment:
    def __init__(self, calls: Calls, targets: Targets, args: argparse.Namespace) -> None:
        self.calls = calls
        self.targets = targets
        self.args = args

    # --- images ---------------------------------------------------------------------------------

    def docker_available(self) -> bool:
        docker = os.environ.get(env.VIGIL_DOCKER, "docker")
        if shutil.which(docker) is None:
            self.calls.say(f"==> docker not found ({env.VIGIL_DOCKER}={docker}): skipping image build and push")
            return False
        if self.calls.dry_run:
            return True
        if subprocess.run([docker, "info"], capture_output=True, check=False).returncode != 0:
            self.calls.say("==> the docker engine is not running (`docker info` failed): skipping image build and push")
            return False
        return True

    def image_in_ecr(self, image_uri: str) -> bool:
        repository, tag = image_uri.split("/", 1)[-1].rsplit(":", 1)
        try:
            found = self.calls("ecr", "describe_images", repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return False
            raise
        return bool(found.get("imageDetails"))

    def ship_images(self, images: dict[str, str]) -> None:
        """Build and push each `{dockerfile: image uri}` not yet in ECR, or check they are there."""
        docker = os.environ.get(env.VIGIL_DOCKER, "docker")
        can_build = self.docker_available()
        logged_in: set[str] = set()
        for dockerfile, image_uri in images.items():
            if self.image_in_ecr(image_uri):
                self.calls.say(f"==> {image_uri} is already in ECR (tags are immutable): not pushing it again")
                continue
            if not can_build:
                raise DeployError(
                    f"image {image_uri} is not in ECR and cannot be built here: run `make deploy` on a machine "
                    "with Docker, or pass --tag of images already pushed"
                )
            registry = image_uri.split("/", 1)[0]
            if registry not in logged_in:
                token = self.calls("ecr", "get_authorization_token")
                for data in token.get("authorizationData", []):
                    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
                    self.calls.run([docker, "login", "--username", user, "--password-stdin", registry],
                                   stdin=password)
                logged_in.add(registry)
            self.calls.run([docker, "build", "--file", dockerfile, "--tag", image_uri, str(REPO_ROOT)])
            self.calls.run([docker, "push", image_uri])

    # --- model artifact ---------------------------------------------------------------------------

    def upload_artifact(self, path: Path, model_version: str) -> str:
        key = f"models/{model_version}/model.tar.gz"
        extra = {"ServerSideEncryption": "aws:kms"}
        if self.targets.archive_kms_key_arn:
            extra["SSEKMSKeyId"] = self.targets.archive_kms_key_arn
        self.calls("s3", "upload_file", Filename=str(path), Bucket=self.targets.archive_bucket, Key=key,
                   ExtraArgs=extra)
        return f"s3://{self.targets.archive_bucket}/{key}"

    # --- endpoint ---------------------------------------------------------------------------------

    def alarm_names(self) -> list[str]:
        """The alarms that roll the endpoint back: --alarm, else the outputs, else those on the endpoint."""
        names = list(self.args.alarm or self.targets.alarm_names)
        if names:
            found = self.calls("cloudwatch", "describe_alarms", AlarmNames=names)
            missing = sorted(set(names) - {alarm["AlarmName"] for alarm in found.get("MetricAlarms", [])})
            if missing:
                raise DeployError(f"CloudWatch alarm(s) not found: {', '.join(missing)}")
            return names
        alarms, token = [], None
        while True:
            page = self.calls("cloudwatch", "describe_alarms", **({"NextToken": token} if token else {}))
            alarms += page.get("MetricAlarms", [])
            token = page.get("NextToken")
            if not token:
                break
        names = [
            alarm["AlarmName"] for alarm in alarms
            if alarm.get("Namespace") == "AWS/SageMaker"
            and {"Name": "EndpointName", "Value": self.targets.endpoint_name} in alarm.get("Dimensions", [])
        ]
        if not names and not self.calls.dry_run:
            raise DeployError(
                f"no CloudWatch alarm watches endpoint {self.targets.endpoint_name}: automatic rollback needs "
                "one (apply infra/ with its observability module, or pass --alarm NAME)"
            )
        return names or ["<alarm on the endpoint>"]

    def deployment_config(self, alarms: list[str]) -> dict:
        wait = self.args.wait_interval_s
        if self.args.traffic == "canary":
            routing = {"Type": "CANARY", "WaitIntervalInSeconds": wait,
                       "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": self.args.step_percent}}
        elif self.args.traffic == "linear":
            routing = {"Type": "LINEAR", "WaitIntervalInSeconds": wait,
                       "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": self.args.step_percent}}
        else:
            routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
        return {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": self.args.termination_wait_s,
                "MaximumExecutionTimeoutInSeconds": self.args.max_execution_s,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarms]},
        }

    def update_endpoint(self, serving_image: str, model_data_url: str, model_version: str) -> str:
        name = self.targets.endpoint_name
        try:
            endpoint = self.calls("sagemaker", "describe_endpoint", EndpointName=name)
        except ClientError as exc:
            raise DeployError(f"endpoint {name} not found ({exc.response['Error']['Message']}): apply infra/ first") from None
        current = self.calls("sagemaker", "describe_endpoint_config", EndpointConfigName=endpoint["EndpointConfigName"])
        variants = current["ProductionVariants"]
        model = self.calls("sagemaker", "describe_model", ModelName=variants[0]["ModelName"])
        container = model.get("PrimaryContainer") or model["Containers"][0]
        stamp = hashlib.sha256(f"{serving_image}|{model_data_url}".encode()).hexdigest()[:8]
        model_name = sagemaker_name(name, model_version, stamp)
        self.calls("sagemaker", "create_model", ModelName=model_name, ExecutionRoleArn=model["ExecutionRoleArn"],
                   PrimaryContainer={"Image": serving_image, "ModelDataUrl": model_data_url,
                                     "Environment": container.get("Environment", {})},
                   EnableNetworkIsolation=model.get("EnableNetworkIsolation", True),
                   **({"VpcConfig": model["VpcConfig"]} if model.get("VpcConfig") else {}))
        config_name = sagemaker_name(name, model_version, datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
        self.calls("sagemaker", "create_endpoint_config", EndpointConfigName=config_name,
                   ProductionVariants=[{**variant, "ModelName": model_name} for variant in variants],
                   **{key: current[key] for key in ENDPOINT_CONFIG_FIELDS if current.get(key)})
        self.calls("sagemaker", "update_endpoint", EndpointName=name, EndpointConfigName=config_name,
                   DeploymentConfig=self.deployment_config(self.alarm_names()))
        if self.args.no_wait:
            self.calls.say(f"==> not waiting (--no-wait): watch `aws sagemaker describe-endpoint --endpoint-name {name}`")
            return config_name
        try:
            self.calls.wait("sagemaker", "endpoint_in_service", EndpointName=name,
                            WaiterConfig={"Delay": 30, "MaxAttempts": max(1, self.args.max_execution_s // 30 + 20)})
        except WaiterError as exc:
            raise DeployError(f"endpoint {name} did not come back in service: {exc}", EXIT_FAILED) from None
        if not self.calls.dry_run:
            after = self.calls("sagemaker", "describe_endpoint", EndpointName=name)
            if after["EndpointConfigName"] != config_name:
                reason = after.get("FailureReason") or "an alarm fired or the new fleet failed its health checks"
                raise DeployError(
                    f"endpoint {name} rolled back to {after['EndpointConfigName']}: {reason}; the ECS service "
                    "was not rolled", EXIT_FAILED,
                )
        return config_name

    # --- worker service ---------------------------------------------------------------------------

    def roll_worker(self, worker_image: str) -> str:
        cluster, service = self.targets.ecs_cluster, self.targets.ecs_service
        found = self.calls("ecs", "describe_services", cluster=cluster, services=[service])
        if not found.get("services"):
            raise DeployError(f"ECS service {service} not found in cluster {cluster}: apply infra/ first")
        current = self.calls("ecs", "describe_task_definition", taskDefinition=found["services"][0]["taskDefinition"],
                             include=["TAGS"])
        definition = current["taskDefinition"]
        containers = definition["containerDefinitions"]
        if self.targets.worker_container not in {c["name"] for c in containers}:
            raise DeployError(f"task definition {definition.get('family')} has no container "
                              f"{self.targets.worker_container}")
        params = {key: definition[key] for key in TASK_DEFINITION_FIELDS if definition.get(key)}
        params["containerDefinitions"] = [
            {**c, "image": worker_image} if c["name"] == self.targets.worker_container else c for c in containers
        ]
        if current.get("tags"):
            params["tags"] = current["tags"]
        registered = self.calls("ecs", "register_task_definition", **params)
        arn = registered["taskDefinition"]["taskDefinitionArn"]
        self.calls("ecs", "update_service", cluster=cluster, service=service, taskDefinition=arn,
                   forceNewDeployment=True)
        return arn

    def run(self, model_path: Path, tag: str) -> dict:
        t = self.targets
        model_version = check_artifact(model_path)
        self.calls.say(f"==> model {model_version} from {model_path}; image tag {tag}")
        serving_repository = t.serving_repository_url or self.current_serving_repository()
        worker_image, serving_image = f"{t.worker_repository_url}:worker-{tag}", f"{serving_repository}:serving-{tag}"
        self.calls.say("==> [1/4] images")
        self.ship_images({WORKER_DOCKERFILE: worker_image, SERVING_DOCKERFILE: serving_image})
        self.calls.say("==> [2/4] model artifact")
        model_data_url = self.upload_artifact(model_path, model_version)
        self.calls.say(f"==> [3/4] endpoint {t.endpoint_name}: blue/green ({self.args.traffic}) with auto rollback")
        config_name = self.update_endpoint(serving_image, model_data_url, model_version)
        self.calls.say(f"==> [4/4] worker service {t.ecs_service}")
        task_definition = self.roll_worker(worker_image)
        return {"model_version": model_version, "model_data_url": model_data_url, "worker_image": worker_image,
                "serving_image": serving_image, "endpoint_config": config_name, "task_definition": task_definition}

    def current_serving_repository(self) -> str:
        """The repository of the image behind the endpoint now (when no output names one)."""
        endpoint = self.calls("sagemaker", "describe_endpoint", EndpointName=self.targets.endpoint_name)
        config = self.calls("sagemaker", "describe_endpoint_config", EndpointConfigName=endpoint["EndpointConfigName"])
        model = self.calls("sagemaker", "describe_model", ModelName=config["ProductionVariants"][0]["ModelName"])
        image = (model.get("PrimaryContainer") or model["Containers"][0])["Image"]
        return image.rsplit("@", 1)[0].rsplit(":", 1)[0] if "/" in image else image


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("out/model/model.tar.gz"),
                        help="model.tar.gz to deploy (default: out/model/model.tar.gz)")
    parser.add_argument("--outputs", type=Path, help="`terraform output -json` saved to a file (default: run it)")
    parser.add_argument("--infra-dir", type=Path, default=REPO_ROOT / "infra",
                        help="Terraform root to read outputs from (default: infra/)")
    parser.add_argument("--tag", help="image tag suffix (default: the git commit, -dirty-<time> with local changes)")
    parser.add_argument("--dry-run", action="store_true", help="print every call and command, make none")
    parser.add_argument("--traffic", choices=("canary", "linear", "all-at-once"), default="canary",
                        help="blue/green traffic shifting (default: canary)")
    parser.add_argument("--step-percent", type=int, default=10,
                        help="canary size or linear step, %% of capacity (default: 10)")
    parser.add_argument("--wait-interval-s", type=int, default=300,
                        help="seconds between traffic shifts, watching the alarms (default: 300)")
    parser.add_argument("--termination-wait-s", type=int, default=300,
                        help="seconds the old fleet is kept after the shift, for rollback (default: 300)")
    parser.add_argument("--max-execution-s", type=int, default=3600,
                        help="longest the blue/green update may take (default: 3600)")
    parser.add_argument("--alarm", action="append",
                        help="CloudWatch alarm that rolls the endpoint back (repeatable; default: the outputs' "
                        "endpoint_alarm_names, else every alarm on the endpoint)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the endpoint update to finish")
    parser.add_argument("--region", help="AWS region (default: the outputs' region)")
    return parser


def main(argv: list[str] | None = None, session: boto3.session.Session | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = get_args_parser().parse_args(argv)
    if not 0 < args.step_percent <= 100:
        print(f"error: --step-percent must be in (0, 100], got {args.step_percent}", file=sys.stderr)
        return EXIT_USAGE
    try:
        targets = Targets.from_outputs(read_outputs(args.outputs, args.infra_dir))
        session = session or boto3.session.Session(region_name=args.region or targets.region)
        calls = Calls(session, dry_run=args.dry_run, container_name=targets.worker_container)
        if args.dry_run:
            calls.say("==> dry run: printing every call and command, making none")
        result = Deployment(calls, targets, args).run(args.model, args.tag or default_tag())
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except subprocess.CalledProcessError as exc:
        print(f"error: `{' '.join(exc.cmd[:2])}` failed with exit code {exc.returncode}", file=sys.stderr)
        return EXIT_FAILED
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_FAILED
    print(("planned " if args.dry_run else "deployed ") + json.dumps(result, sort_keys=True), flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
