"""AlertPublisher against a real moto Kinesis: records readable with GetRecords, partition key =
camera, partial failures retried for exactly the failed entries, throttling ridden out, and a
durable spool that keeps alerts while Kinesis is unreachable and across a restart."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from contracts.alert import AlertRecord, Severity, make_alert_id
from local.stack import LocalStack, free_port
from worker.publisher import _CLIENT_CONFIG, AlertPublisher
from worker.spool import REJECTED_DIR, AlertSpool

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


def spooled(*alerts: AlertRecord, directory: Path | None = None) -> AlertSpool:
    spool = AlertSpool(directory)
    for alert in alerts:
        spool.add(alert)
    return spool


def throttled(operation: str = "PutRecords") -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "Rate exceeded for stream",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


class FlakyKinesis:
    """The real moto client, except that the first PutRecords delivers only the even-numbered
    entries and reports the odd ones as throttled, as Kinesis does in a partial failure."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[list[str]] = []  # alert ids sent per call

    def put_records(self, *, StreamName: str, Records: list[dict]) -> dict:
        self.calls.append([AlertRecord.model_validate_json(r["Data"]).alert_id for r in Records])
        if len(self.calls) > 1:
            return self.client.put_records(StreamName=StreamName, Records=Records)
        real = self.client.put_records(StreamName=StreamName, Records=Records[0::2])["Records"]
        results: list[dict] = []
        for i in range(len(Records)):
            if i % 2 == 0:
                results.append(real[i // 2])
            else:
                results.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}
                )
        return {"FailedRecordCount": len(Records) // 2, "Records": results}


class ThrottledKinesis:
    """The real moto client, except that the first `n` PutRecords calls are throttled as a whole."""

    def __init__(self, client: Any, n: int) -> None:
        self.client, self.n, self.calls, self.at = client, n, 0, []

    def put_records(self, **kwargs: Any) -> dict:
        self.calls += 1
        self.at.append(time.monotonic())
        if self.calls <= self.n:
            raise throttled()
        return self.client.put_records(**kwargs)


class RefusingKinesis:
    """The real moto client, except that a request holding `bad` is refused as invalid."""

    def __init__(self, client: Any, bad: AlertRecord) -> None:
        self.client, self.bad = client, bad.alert_id

    def put_records(self, *, StreamName: str, Records: list[dict]) -> dict:
        if any(AlertRecord.model_validate_json(r["Data"]).alert_id == self.bad for r in Records):
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "1 validation error detected"}},
                "PutRecords",
            )
        return self.client.put_records(StreamName=StreamName, Records=Records)


def test_alerts_are_readable_from_the_stream_keyed_by_camera(local_stack: LocalStack):
    # GIVEN alerts from two cameras
    alerts = [make_alert("cam-1", 0), make_alert("cam-2", 1), make_alert("cam-1", 2)]

    # WHEN each is published and the publisher is closed
    with AlertPublisher(local_stack.names.alert_stream) as publisher:
        spooled_ok = [publisher.publish(alert) for alert in alerts]
        assert publisher.flush(10)

    # THEN each is on the stream once, whole, with the camera as partition key
    assert spooled_ok == [True, True, True]
    assert read_stream(local_stack) == [(alert.camera_id, alert) for alert in alerts]
    assert (publisher.published, publisher.failed, publisher.retries, publisher.pending) == (3, 0, 0, 0)


def test_partial_failure_retries_exactly_the_failed_entries(local_stack: LocalStack):
    # GIVEN three spooled alerts and a first PutRecords in which entry 1 is throttled
    client = FlakyKinesis(local_stack.client("kinesis"))
    alerts = [make_alert("cam-1", n) for n in range(3)]

    # WHEN the publisher sends them
    with AlertPublisher(
        local_stack.names.alert_stream, client=client, spool=spooled(*alerts), retry_base_s=0.01
    ) as publisher:
        assert publisher.flush(10)

    # THEN the retry sends only alert 1, and the stream holds each alert exactly once
    assert client.calls == [[a.alert_id for a in alerts], [alerts[1].alert_id]]
    assert sorted(read_stream(local_stack), key=lambda r: r[1].score) == [("cam-1", a) for a in alerts]
    assert (publisher.published, publisher.failed, publisher.retries) == (3, 0, 1)


def test_a_throttled_call_is_retried_whole_with_growing_jittered_waits(local_stack: LocalStack):
    # GIVEN a stream that throttles the first three PutRecords calls
    client = ThrottledKinesis(local_stack.client("kinesis"), n=3)
    alert = make_alert("cam-1", 0)

    # WHEN one alert is published
    with AlertPublisher(local_stack.names.alert_stream, client=client, retry_base_s=0.04) as publisher:
        publisher.publish(alert)
        assert publisher.flush(10)

    # THEN it was sent four times, waiting base/2..base, then base..2*base, then 2*base..4*base
    assert client.calls == 4
    waits = [b - a for a, b in zip(client.at, client.at[1:], strict=False)]
    assert [0.02 <= waits[0], 0.04 <= waits[1], 0.08 <= waits[2]] == [True, True, True]
    assert read_stream(local_stack) == [("cam-1", alert)]
    assert (publisher.published, publisher.retries) == (1, 3)


def test_unreachable_kinesis_keeps_alerts_on_disk_and_a_restart_sends_them(
    local_stack: LocalStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # GIVEN a publisher whose Kinesis endpoint refuses connections, with a spool directory
    down = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{free_port()}", config=_CLIENT_CONFIG)
    alerts = [make_alert("cam-1", n) for n in range(3)]
    publisher = AlertPublisher(
        local_stack.names.alert_stream, client=down, spool=AlertSpool(tmp_path), retry_base_s=0.05
    )

    # WHEN alerts are published while it is down
    started = time.perf_counter()
    spooled_ok = [publisher.publish(alert) for alert in alerts]
    publish_s = time.perf_counter() - started
    # THEN publish returns at once (the frame path never waits on Kinesis) ...
    assert spooled_ok == [True, True, True]
    assert publish_s < 0.5
    # ... and after a while nothing is delivered, everything is still spooled, and the worker stops
    with caplog.at_level(logging.WARNING, logger="worker.publisher"):
        left = publisher.close(timeout_s=0.5)
    assert (left, publisher.published, publisher.failed) == (3, 0, 0)
    assert publisher.calls >= 2
    assert "EndpointConnectionError" in caplog.text and "kept in" in caplog.text
    assert read_stream(local_stack) == []

    # WHEN the worker restarts with Kinesis reachable and the same spool directory
    with AlertPublisher(local_stack.names.alert_stream, spool=AlertSpool(tmp_path)) as restarted:
        # THEN it sends the spooled alerts without being asked, in order, and the spool empties
        assert restarted.flush(10)
    assert read_stream(local_stack) == [("cam-1", alert) for alert in alerts]
    assert (restarted.published, restarted.pending, sorted(p.name for p in tmp_path.iterdir())) == (
        3,
        0,
        [REJECTED_DIR],
    )


def test_a_missing_stream_keeps_alerts_until_it_exists(local_stack: LocalStack):
    # GIVEN a publisher for a stream that does not exist yet
    kinesis = local_stack.client("kinesis")
    alert = make_alert("cam-1", 0)
    with AlertPublisher("late-stream", retry_base_s=0.02, retry_max_s=0.1) as publisher:
        publisher.publish(alert)
        assert not publisher.flush(0.3)  # ResourceNotFoundException: kept, retried

        # WHEN the stream is created
        kinesis.create_stream(StreamName="late-stream", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(
            StreamName="late-stream", WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
        )

        # THEN the alert gets there
        assert publisher.flush(10)
    assert (publisher.published, publisher.failed) == (1, 0)


def test_an_alert_kinesis_refuses_is_kept_aside_and_logged_and_the_others_go(
    local_stack: LocalStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # GIVEN three spooled alerts, the middle one refused by Kinesis as invalid
    alerts = [make_alert("cam-1", n) for n in range(3)]
    client = RefusingKinesis(local_stack.client("kinesis"), bad=alerts[1])

    # WHEN they are sent
    with (
        caplog.at_level(logging.ERROR, logger="worker.spool"),
        AlertPublisher(
            local_stack.names.alert_stream, client=client, spool=spooled(*alerts, directory=tmp_path)
        ) as publisher,
    ):
        assert publisher.flush(10)

    # THEN the two good ones are on the stream, the bad one is in rejected/ and in an ERROR line
    assert read_stream(local_stack) == [("cam-1", alerts[0]), ("cam-1", alerts[2])]
    assert (publisher.published, publisher.failed) == (2, 1)
    assert [p.name[21:] for p in (tmp_path / REJECTED_DIR).iterdir()] == [f"{alerts[1].alert_id}.json"]
    assert f"alert={alerts[1].model_dump_json()}" in caplog.text


def test_a_full_spool_refuses_loudly_while_kinesis_is_down(local_stack: LocalStack, caplog):
    # GIVEN Kinesis down and a spool for two alerts
    down = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{free_port()}", config=_CLIENT_CONFIG)
    publisher = AlertPublisher(
        local_stack.names.alert_stream, client=down, spool=AlertSpool(max_alerts=2), retry_base_s=0.05
    )

    # WHEN three alerts are published
    with caplog.at_level(logging.ERROR):
        results = [publisher.publish(make_alert("cam-1", n)) for n in range(3)]
        publisher.close(timeout_s=0.2)

    # THEN the third is refused, counted as failed, and every alert not delivered is in an ERROR line
    assert results == [True, True, False]
    assert (publisher.spool.overflowed, publisher.failed) == (1, 1)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert [line.split(" camera=")[0] for line in errors] == [
        "spool FULL",
        "alert NOT delivered",
        "alert NOT delivered",
    ]


def test_close_with_nothing_pending_sends_nothing(local_stack: LocalStack):
    publisher = AlertPublisher(local_stack.names.alert_stream)

    assert publisher.close() == 0
    assert (read_stream(local_stack), publisher.calls) == ([], 0)
