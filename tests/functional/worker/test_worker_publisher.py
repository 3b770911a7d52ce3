"""AlertPublisher against a real moto Kinesis: records readable with GetRecords, partition key =
camera, partial failures retried for exactly the failed entries, undeliverable alerts logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from contracts.alert import AlertRecord, Severity, make_alert_id
from worker.local.stack import LocalStack
from worker.publisher import AlertPublisher

T0 = datetime(2026, 11, 25, 14, 45, 7, 123000, tzinfo=UTC)


def make_alert(camera_id: str, n: int) -> AlertRecord:
    started_at = T0 + timedelta(seconds=n)
    return AlertRecord(
        alert_id=make_alert_id(camera_id, "scene_anomaly", started_at),
        camera_id=camera_id,
        site="hq",
        event_type="scene_anomaly",
        severity=Severity.MEDIUM,
        score=2.0 + n,
        threshold=1.0,
        started_at=started_at,
        frame_at=started_at + timedelta(seconds=0.2),
        detected_at=started_at + timedelta(seconds=0.3),
        media_time_s=float(n),
        model_version="m-1",
    )


def read_stream(stack: LocalStack) -> list[tuple[str, AlertRecord]]:
    kinesis = stack.client("kinesis")
    shard = kinesis.list_shards(StreamName=stack.names.alert_stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stack.names.alert_stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    return [(r["PartitionKey"], AlertRecord.model_validate_json(r["Data"])) for r in records]


class FlakyKinesis:
    """The real moto client, except that the first PutRecords delivers only the even-numbered
    entries and reports the odd ones as throttled, as Kinesis does in a partial failure."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[list[str]] = []  # partition keys + alert ids sent per call

    def put_records(self, *, StreamName: str, Records: list[dict]) -> dict:
        self.calls.append([AlertRecord.model_validate_json(r["Data"]).alert_id for r in Records])
        if len(self.calls) > 1:
            return self.client.put_records(StreamName=StreamName, Records=Records)
        real = self.client.put_records(StreamName=StreamName, Records=Records[0::2])["Records"]
        results = []
        for i in range(len(Records)):
            if i % 2 == 0:
                results.append(real[i // 2])
            else:
                results.append(
                    {
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": "Rate exceeded for shard",
                    }
                )
        return {"FailedRecordCount": len(Records) // 2, "Records": results}


class ThrottledOnceKinesis:
    """The real moto client, except that the first PutRecords call is throttled as a whole."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def put_records(self, **kwargs: Any) -> dict:
        self.calls += 1
        if self.calls == 1:
            raise ClientError(
                {
                    "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "PutRecords",
            )
        return self.client.put_records(**kwargs)


def test_alerts_are_readable_from_the_stream_keyed_by_camera(local_stack: LocalStack):
    # GIVEN alerts from two cameras
    alerts = [make_alert("cam-1", 0), make_alert("cam-2", 1), make_alert("cam-1", 2)]
    publisher = AlertPublisher(local_stack.names.alert_stream)

    # WHEN each is published
    delivered = [publisher.publish(alert) for alert in alerts]

    # THEN each is on the stream once, whole, with the camera as partition key
    assert delivered == [True, True, True]
    assert read_stream(local_stack) == [(alert.camera_id, alert) for alert in alerts]
    assert (publisher.published, publisher.failed, publisher.retries) == (3, 0, 0)


def test_partial_failure_retries_exactly_the_failed_entries(local_stack: LocalStack):
    # GIVEN three pending alerts and a first PutRecords in which entry 1 is throttled
    client = FlakyKinesis(local_stack.client("kinesis"))
    publisher = AlertPublisher(local_stack.names.alert_stream, client=client, retry_base_s=0.01)
    alerts = [make_alert("cam-1", n) for n in range(3)]
    publisher._pending.extend(alerts)

    # WHEN flushed
    delivered = publisher.flush()

    # THEN the retry sends only alert 1, and the stream holds each alert exactly once
    assert client.calls == [[a.alert_id for a in alerts], [alerts[1].alert_id]]
    assert delivered == 3
    assert sorted(read_stream(local_stack), key=lambda r: r[1].media_time_s) == [("cam-1", a) for a in alerts]
    assert (publisher.published, publisher.failed, publisher.retries) == (3, 0, 1)


def test_a_throttled_call_is_retried_whole(local_stack: LocalStack):
    client = ThrottledOnceKinesis(local_stack.client("kinesis"))
    publisher = AlertPublisher(local_stack.names.alert_stream, client=client, retry_base_s=0.01)
    alert = make_alert("cam-1", 0)

    assert publisher.publish(alert)

    assert client.calls == 2
    assert read_stream(local_stack) == [("cam-1", alert)]


def test_an_undeliverable_alert_is_logged_at_error_with_its_json(
    local_stack: LocalStack, caplog: pytest.LogCaptureFixture
):
    # GIVEN a stream that does not exist (not retryable)
    publisher = AlertPublisher("no-such-stream", retry_base_s=0.01)
    alert = make_alert("cam-1", 0)

    # WHEN published
    with caplog.at_level(logging.ERROR, logger="worker.publisher"):
        delivered = publisher.publish(alert)

    # THEN not delivered, counted, and the whole alert is in an ERROR line for replay
    assert not delivered
    assert (publisher.published, publisher.failed) == (0, 1)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[-1].endswith(f"alert={alert.model_dump_json()}")
    assert f"alert_id={alert.alert_id}" in errors[-1]


def test_flush_with_nothing_pending_sends_nothing(local_stack: LocalStack):
    publisher = AlertPublisher(local_stack.names.alert_stream)

    assert publisher.flush() == 0
    assert read_stream(local_stack) == []
