"""Fixtures for alert_lambda: alerts, Kinesis events in the recorded shape, and SQS helpers."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.alert import AlertRecord, S3Object, Severity, make_alert_id

EVENTS = Path(__file__).resolve().parents[2] / "events"
RECORDED_EVENT = EVENTS / "kinesis_alerts_event.json"
FIRST_SEQUENCE = 49659221465937419213870412345678901234567890123456789010


def _make_alert(camera_id: str = "cam-lobby-01", **overrides: Any) -> AlertRecord:
    """A valid alert detected a moment ago (so the end-to-end latency metric is meaningful)."""
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the contract's JSON keeps milliseconds
    started_at = overrides.pop("started_at", now - timedelta(seconds=2))
    event_type = overrides.pop("event_type", "scene_anomaly")
    fields: dict[str, Any] = {
        "alert_id": make_alert_id(camera_id, event_type, started_at),
        "camera_id": camera_id,
        "site": "hq-campus",
        "event_type": event_type,
        "severity": Severity.HIGH,
        "score": 0.913,
        "threshold": 0.62,
        "started_at": started_at,
        "frame_at": now - timedelta(seconds=1),
        "detected_at": now - timedelta(milliseconds=300),
        "snapshot": S3Object(bucket="vigil-archive", key=f"snapshots/camera={camera_id}/{event_type}.jpg"),
        "model_version": "vigil-ae-test",
    }
    fields.update(overrides)
    return AlertRecord(**fields)


@pytest.fixture
def make_alert() -> Callable[..., AlertRecord]:
    """`make_alert(camera_id="cam-lobby-01", **fields)`: a valid AlertRecord detected just now."""
    return _make_alert


Body = AlertRecord | dict | str | bytes


def _data(body: Body) -> bytes:
    if isinstance(body, AlertRecord):
        return body.model_dump_json().encode()
    if isinstance(body, dict):
        return json.dumps(body).encode()
    if isinstance(body, str):
        return body.encode()
    return body


@pytest.fixture
def recorded_event() -> dict[str, Any]:
    return json.loads(RECORDED_EVENT.read_text())


@pytest.fixture
def kinesis_event_factory(recorded_event: dict[str, Any]) -> Callable[[Sequence[Body]], dict[str, Any]]:
    """`kinesis_event_factory(bodies)`: the recorded event's shape, one record per body (an alert, a
    dict, or raw text/bytes for poison records), consecutive sequence numbers on shardId-000000000000."""
    template = recorded_event["Records"][0]

    def _make(bodies: Sequence[Body]) -> dict[str, Any]:
        records = []
        for i, body in enumerate(bodies):
            record = copy.deepcopy(template)
            sequence_number = str(FIRST_SEQUENCE + 16 * i)
            record["kinesis"]["sequenceNumber"] = sequence_number
            record["kinesis"]["data"] = base64.b64encode(_data(body)).decode()
            record["kinesis"]["partitionKey"] = body.camera_id if isinstance(body, AlertRecord) else "poison"
            record["eventID"] = f"shardId-000000000000:{sequence_number}"
            records.append(record)
        return {"Records": records}

    return _make


class FakeLambdaContext:
    """Lambda's context object as the runtime passes it (the attributes handlers read)."""

    function_name = "vigil-alert-lambda"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:vigil-alert-lambda"
    memory_limit_in_mb = 256
    aws_request_id = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    log_group_name = "/aws/lambda/vigil-alert-lambda"
    log_stream_name = "2026/11/25/[$LATEST]c6a3e5"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now in the queue (received and deleted)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages += batch


@pytest.fixture
def read_queue(local_stack: Any) -> Callable[[str], list[dict[str, Any]]]:
    """`read_queue(url)`: the JSON bodies of every message now in an SQS queue (received, deleted)."""
    sqs = local_stack.client("sqs")
    return lambda queue_url: [json.loads(message["Body"]) for message in _drain(sqs, queue_url)]


@pytest.fixture
def read_notifications(local_stack: Any, read_queue: Callable) -> Callable[..., list[dict[str, Any]]]:
    """`read_notifications(queue_url=inbox)`: SNS envelopes delivered to an SQS subscription, by time."""

    def _read(queue_url: str | None = None) -> list[dict[str, Any]]:
        envelopes = read_queue(queue_url or local_stack.alert_inbox_url)
        return sorted(envelopes, key=lambda envelope: envelope["Timestamp"])

    return _read


@pytest.fixture
def dead_letter_queue(local_stack: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """URL of a fresh SQS dead-letter queue, set as the function's `VIGIL_DEAD_LETTER_QUEUE_URL`."""
    url = local_stack.client("sqs").create_queue(QueueName="vigil-alerts-dlq")["QueueUrl"]
    monkeypatch.setenv("VIGIL_DEAD_LETTER_QUEUE_URL", url)
    return url


class SnsWire:
    """Watches the function's own SNS client at the HTTP layer: records each Publish request that
    goes out and answers the first `throttle` of them with SNS's real 400 `Throttling` error body,
    so botocore's retry logic (not a mock of it) decides what happens next.

    `lose = n`: the next n Publish requests reach SNS (it publishes) but their response is lost
    (a read timeout). `down = True`: SNS answers every request with a 503 until it is set back.
    `refuse = (code, message)`: SNS answers 400 with that error (e.g. a message it will never take)."""

    THROTTLING_BODY = (
        b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
        b"<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
        b"<RequestId>9c7a6d1e-0000-4000-8000-000000000000</RequestId></ErrorResponse>"
    )

    UNAVAILABLE_BODY = (
        b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Receiver</Type>'
        b"<Code>ServiceUnavailable</Code><Message>Service is unavailable</Message></Error>"
        b"<RequestId>9c7a6d1e-0000-4000-8000-000000000001</RequestId></ErrorResponse>"
    )

    def __init__(self) -> None:
        self.throttle = 0
        self.sent = 0
        self.throttled = 0
        self.lose = 0
        self.lost = 0
        self.down = False
        self.refused_while_down = 0
        self.refuse: tuple[str, str] | None = None
        self.subjects: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self.attributes: list[dict[str, Any]] = []

    def on_params(self, params: dict[str, Any], **_: Any) -> None:
        self.subjects.append(params["Subject"])
        self.messages.append(json.loads(params["Message"]))
        self.attributes.append(params["MessageAttributes"])

    def on_send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        self.sent += 1
        if self.down:
            self.refused_while_down += 1
            return AWSResponse(request.url, 503, {"Content-Type": "text/xml"}, _RawBody(self.UNAVAILABLE_BODY))
        if self.refuse is not None:
            code, message = self.refuse
            body = (
                '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
            ).encode()
            return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _RawBody(body))
        if self.throttled < self.throttle:
            self.throttled += 1
            raw = _RawBody(self.THROTTLING_BODY)
            return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, raw)
        if self.lost < self.lose:
            import httpx
            from botocore.exceptions import ReadTimeoutError

            self.lost += 1
            # SNS gets the request and publishes; its answer never comes back.
            httpx.post(request.url, content=request.body, headers=dict(request.headers.items()))
            raise ReadTimeoutError(endpoint_url=request.url)
        return None


class _RawBody:
    """The minimal urllib3-response surface AWSResponse reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._body


@pytest.fixture
def sns_wire(local_stack: Any) -> Any:
    """`sns_wire.throttle = n`: the next n SNS Publish calls the function makes are throttled."""
    from alert_lambda import clients
    from alert_lambda.settings import Settings

    events = clients.client("sns", Settings.from_env()).meta.events
    wire = SnsWire()
    events.register("provide-client-params.sns.Publish", wire.on_params, unique_id="test-sns-params")
    events.register("before-send.sns.Publish", wire.on_send, unique_id="test-sns-send")
    yield wire
    events.unregister("provide-client-params.sns.Publish", unique_id="test-sns-params")
    events.unregister("before-send.sns.Publish", unique_id="test-sns-send")


class DynamoWire:
    """The function's DynamoDB client at the HTTP layer: while `down_for` holds an operation name
    (`UpdateItem`: Powertools' write of a COMPLETED record, `PutItem`: its IN_PROGRESS claim), each such
    request is answered with a 400 AccessDeniedException (not retried by botocore, so tests stay fast;
    the function treats it as it would a 5xx). `refused` counts them."""

    BODY = b'{"__type":"com.amazon.coral.service#AccessDeniedException","message":"store unavailable"}'

    def __init__(self) -> None:
        self.down_for: set[str] = set()
        self.refused = 0

    def on_send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        target = dict(request.headers.items()).get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        if operation in self.down_for:
            self.refused += 1
            headers = {"Content-Type": "application/x-amz-json-1.0"}
            return AWSResponse(request.url, 400, headers, _RawBody(self.BODY))
        return None


@pytest.fixture
def dynamo_wire(local_stack: Any) -> Any:
    """`dynamo_wire.down_for = {"UpdateItem"}`: the function's idempotency writes of that kind fail."""
    from alert_lambda import clients
    from alert_lambda.settings import Settings

    events = clients.client("dynamodb", Settings.from_env()).meta.events
    wire = DynamoWire()
    events.register("before-send.dynamodb", wire.on_send, unique_id="test-dynamo-send")
    yield wire
    events.unregister("before-send.dynamodb", unique_id="test-dynamo-send")
