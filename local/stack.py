"""A moto server on 127.0.0.1 with the resources the AWS deployment has (the local twin of `infra/`).

`LocalStack.start()` starts the server on a free port (or the one asked for), creates the archive
bucket, the `alerts` Kinesis Data Stream, the SNS topic with an SQS queue subscribed, and the state
table, and returns the environment variables every Vigil process needs to talk to it: the same
boto3 code as on AWS, pointed at `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Self

import boto3
from moto.moto_api._internal.models import moto_api_backend
from moto.server import ThreadedMotoServer

from console.server import PortInUseError, ensure_port_free, free_port
from console.tables import alert_history_table_spec, audit_table_spec

logger = logging.getLogger(__name__)

__all__ = ["LocalStack", "PortInUseError", "ResourceNames", "ensure_port_free", "free_port"]

REGION = "us-east-1"


@dataclass(frozen=True)
class ResourceNames:
    bucket: str = "vigil-archive"
    alert_stream: str = "alerts"
    alert_topic: str = "vigil-alerts"
    alert_inbox_queue: str = "vigil-alerts-inbox"
    state_table: str = "vigil-state"
    idempotency_table: str = "vigil-idempotency"
    alert_history_table: str = "vigil-alert-history"
    audit_table: str = "vigil-console-audit"


@dataclass
class LocalStack:
    """A running moto server and the resources created in it."""

    host: str = "127.0.0.1"
    port: int = 0
    names: ResourceNames = field(default_factory=ResourceNames)
    alert_topic_arn: str = ""
    alert_inbox_url: str = ""
    _server: ThreadedMotoServer | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalStack:
        if self.port:
            ensure_port_free(self.port, self.host)
        else:
            self.port = free_port(self.host)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self._wait_ready()
        # The server runs in this process and moto keeps its state per process: start from nothing,
        # so a second stack in the same process (one per test) finds no leftovers. One stack at a time.
        moto_api_backend.reset()
        self.create_resources()
        logger.info("moto server on %s with the Vigil resources", self.endpoint_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            moto_api_backend.reset()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def env(self) -> dict[str, str]:
        """Environment for a Vigil process (worker, lambda, training) using this stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "VIGIL_ARCHIVE_BUCKET": self.names.bucket,
            "VIGIL_ALERT_STREAM": self.names.alert_stream,
            "VIGIL_ALERT_TOPIC_ARN": self.alert_topic_arn,
            "VIGIL_STATE_TABLE": self.names.state_table,
            "VIGIL_IDEMPOTENCY_TABLE": self.names.idempotency_table,
            "VIGIL_ALERT_HISTORY_TABLE": self.names.alert_history_table,
            "VIGIL_CONSOLE_AUDIT_TABLE": self.names.audit_table,
        }

    def _wait_ready(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {self.endpoint_url}") from None
                time.sleep(0.05)

    def create_resources(self) -> None:
        names = self.names
        self.client("s3").create_bucket(Bucket=names.bucket)

        kinesis = self.client("kinesis")
        kinesis.create_stream(StreamName=names.alert_stream, ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(
            StreamName=names.alert_stream, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
        )

        sns, sqs = self.client("sns"), self.client("sqs")
        self.alert_topic_arn = sns.create_topic(Name=names.alert_topic)["TopicArn"]
        self.alert_inbox_url = sqs.create_queue(QueueName=names.alert_inbox_queue)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.alert_inbox_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.alert_topic_arn, Protocol="sqs", Endpoint=queue_arn)

        dynamodb = self.client("dynamodb")
        for table in (names.state_table, names.idempotency_table):
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        dynamodb.create_table(**alert_history_table_spec(names.alert_history_table))
        dynamodb.create_table(**audit_table_spec(names.audit_table))
