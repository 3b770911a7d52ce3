"""Every AWS API call and shell command `make deploy` makes goes through `Calls`, which prints it first
(service, operation, parameters) and, in a dry run, prints it and makes nothing.

In a dry run the calls that read state (Describe*) answer from `dry_run_response`: placeholders such
as `<current instance type>` stand for what the real call would return, so the printed plan shows
every later call with the parameters it would get."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TextIO

import boto3

logger = logging.getLogger(__name__)

DRY_RUN_PREFIX = "[dry-run] "


def dry_run_response(service: str, operation: str, params: dict, container_name: str) -> dict:
    """What a read answers in a dry run: the shape the deploy reads, with placeholder values."""
    responses: dict[tuple[str, str], Callable[[], dict]] = {
        ("sagemaker", "describe_endpoint"): lambda: {
            "EndpointName": params.get("EndpointName"), "EndpointConfigName": "<current endpoint config>",
            "EndpointStatus": "InService",
        },
        ("sagemaker", "describe_endpoint_config"): lambda: {
            "EndpointConfigName": params.get("EndpointConfigName"),
            "ProductionVariants": [{
                "VariantName": "<current variant>", "ModelName": "<current model>",
                "InstanceType": "<current instance type>", "InitialInstanceCount": "<current instance count>",
            }],
        },
        ("sagemaker", "describe_model"): lambda: {
            "ModelName": params.get("ModelName"), "ExecutionRoleArn": "<current execution role>",
            "PrimaryContainer": {"Image": "<current serving image>", "Environment": {}},
            "EnableNetworkIsolation": True,
        },
        ("sagemaker", "create_model"): lambda: {"ModelArn": f"<arn of {params.get('ModelName')}>"},
        ("sagemaker", "create_endpoint_config"): lambda: {
            "EndpointConfigArn": f"<arn of {params.get('EndpointConfigName')}>"
        },
        ("sagemaker", "update_endpoint"): lambda: {"EndpointArn": f"<arn of {params.get('EndpointName')}>"},
        ("ecr", "describe_images"): lambda: {"imageDetails": [{"imageTags": [i["imageTag"] for i in params["imageIds"]]}]},
        ("ecr", "get_authorization_token"): lambda: {"authorizationData": []},
        ("cloudwatch", "describe_alarms"): lambda: {
            "MetricAlarms": [{"AlarmName": name} for name in params.get("AlarmNames", ["<alarm on the endpoint>"])]
        },
        ("ecs", "describe_services"): lambda: {
            "services": [{"serviceName": params["services"][0], "taskDefinition": "<current task definition>"}],
            "failures": [],
        },
        ("ecs", "describe_task_definition"): lambda: {
            "taskDefinition": {
                "family": "<current family>",
                "containerDefinitions": [{"name": container_name, "image": "<current worker image>"}],
            },
            "tags": [],
        },
        ("ecs", "register_task_definition"): lambda: {
            "taskDefinition": {"taskDefinitionArn": "<new task definition revision>"}
        },
    }
    return responses.get((service, operation), dict)()


class Calls:
    """Prints, then makes (or, in a dry run, only prints) AWS calls and commands."""

    def __init__(
        self, session: boto3.session.Session, *, dry_run: bool, container_name: str = "", out: TextIO | None = None
    ) -> None:
        self.session = session
        self.dry_run = dry_run
        self.container_name = container_name
        self.out = out or sys.stdout
        self._clients: dict[str, Any] = {}

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def __call__(self, service: str, operation: str, /, **params: Any) -> dict:
        shown = json.dumps(params, sort_keys=True, default=str)
        self.say(f"{DRY_RUN_PREFIX if self.dry_run else ''}{service}.{operation} {shown}")
        if self.dry_run:
            return dry_run_response(service, operation, params, self.container_name)
        return getattr(self.client(service), operation)(**params) or {}

    def wait(self, service: str, waiter: str, /, **params: Any) -> None:
        """A boto3 waiter (printed as `service.wait:waiter_name`)."""
        self.say(f"{DRY_RUN_PREFIX if self.dry_run else ''}{service}.wait:{waiter} {json.dumps(params, sort_keys=True)}")
        if not self.dry_run:
            self.client(service).get_waiter(waiter).wait(**params)

    def run(self, argv: list[str], *, stdin: str | None = None, shown: list[str] | None = None) -> None:
        """A command (`docker ...`); `shown` replaces argv in the printout (never print a password)."""
        self.say(f"{DRY_RUN_PREFIX if self.dry_run else ''}$ {' '.join(shown or argv)}")
        if not self.dry_run:
            subprocess.run(argv, input=stdin, text=True, check=True)
