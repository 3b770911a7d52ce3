"""The local Kinesis event source mapping end to end: records put on the moto `alerts` stream with
boto3, the real handler invoked in-process, notifications read back from the SNS -> SQS inbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from alert_lambda.local_esm import EventSourceMapping, EventSourceMappingError, MappingConfig
from contracts.alert import AlertRecord

REPO_ROOT = Path(__file__).resolve().parents[3]


def put(local_stack, *bodies) -> list[str]:
    """Put each body (an alert or raw bytes) on the `alerts` stream; returns their sequence numbers."""
    kinesis = local_stack.client("kinesis")
    sequence_numbers = []
    for body in bodies:
        data = body.model_dump_json().encode() if isinstance(body, AlertRecord) else body
        key = body.camera_id if isinstance(body, AlertRecord) else "poison"
        sequence_numbers.append(
            kinesis.put_record(StreamName="alerts", Data=data, PartitionKey=key)["SequenceNumber"]
        )
    return sequence_numbers


def run_until_idle(mapping: EventSourceMapping) -> list:
    invocations: list = []
    deadline = time.monotonic() + 20
    while (not invocations or not mapping.idle) and time.monotonic() < deadline:
        invocations += mapping.poll_once()
        time.sleep(0.01)
    return invocations


def delivered_alerts(read_notifications, queue_url=None) -> list[AlertRecord]:
    return sorted(
        (AlertRecord.model_validate_json(e["Message"]) for e in read_notifications(queue_url)),
        key=lambda alert: alert.camera_id,
    )


@pytest.fixture
def dlq_url(local_stack) -> str:
    return local_stack.client("sqs").create_queue(QueueName="vigil-alerts-dlq")["QueueUrl"]


def test_mapping_delivers_every_record_put_on_the_stream(local_stack, make_alert, read_notifications):
    # GIVEN three alerts on the stream
    alerts = [make_alert(f"cam-{i}") for i in range(3)]
    put(local_stack, *alerts)
    mapping = EventSourceMapping(MappingConfig(stream="alerts", batch_window_s=0, batch_size=2))

    # WHEN the mapping runs until the stream is idle
    stats = mapping.run(threading.Event(), exit_when_idle_s=0.3)

    # THEN each alert is notified once, in two invocations of at most two records
    assert delivered_alerts(read_notifications) == alerts
    assert (stats.invocations, stats.records_succeeded, stats.records_discarded) == (2, 3, 0)
    assert mapping.stream_arn == "arn:aws:kinesis:us-east-1:123456789012:stream/alerts"


def test_poison_record_goes_to_the_on_failure_queue_after_max_retries(
    local_stack, make_alert, read_notifications, read_queue, dlq_url
):
    # GIVEN a good alert, a poison record, and another good alert on the stream
    first, second = make_alert("cam-a"), make_alert("cam-b")
    seq_first, seq_poison, seq_second = put(local_stack, first, b"{not json", second)
    mapping = EventSourceMapping(
        MappingConfig(
            stream="alerts", batch_window_s=0, max_retries=3, retry_backoff_s=0, on_failure_queue_url=dlq_url
        )
    )

    # WHEN the mapping runs until idle
    invocations = run_until_idle(mapping)

    # THEN it retried from the poison record (the records after it too) three times, then moved on
    assert [(i.sequence_numbers, i.retries, i.failed) for i in invocations] == [
        ((seq_first, seq_poison, seq_second), 0, (seq_poison,)),
        ((seq_poison, seq_second), 1, (seq_poison,)),
        ((seq_poison, seq_second), 2, (seq_poison,)),
        ((seq_poison, seq_second), 3, (seq_poison,)),
    ]
    # AND both good alerts were notified exactly once (the retries hit the idempotency guard)
    assert delivered_alerts(read_notifications) == [first, second]
    # AND the on-failure queue holds the documented invocation record for the discarded records
    [record] = read_queue(dlq_url)
    batch_info = record.pop("KinesisBatchInfo")
    assert batch_info.pop("approximateArrivalOfFirstRecord").endswith("Z")
    assert batch_info.pop("approximateArrivalOfLastRecord").endswith("Z")
    assert batch_info == {
        "shardId": "shardId-000000000000",
        "startSequenceNumber": seq_poison,
        "endSequenceNumber": seq_second,
        "batchSize": 2,
        "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/alerts",
    }
    assert (
        record.pop("requestContext").items()
        >= {
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:vigil-alert-lambda",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4,
        }.items()
    )
    assert record.pop("timestamp").endswith("Z")
    assert record == {"responseContext": {"statusCode": 200, "executedVersion": "$LATEST"}, "version": "1.0"}
    # AND a record put afterwards is delivered: the shard moved on
    third = make_alert("cam-c")
    put(local_stack, third)
    assert [i.succeeded for i in mapping.poll_once()] == [True]
    assert delivered_alerts(read_notifications) == [third]


def test_function_error_bisects_the_batch_down_to_each_poison_record(
    local_stack, make_alert, read_notifications, read_queue, dlq_url
):
    # GIVEN a batch that is all poison (so the function raises) and bisection on
    seq_a, seq_b = put(local_stack, b"garbage-a", b"garbage-b")
    mapping = EventSourceMapping(
        MappingConfig(
            stream="alerts",
            batch_window_s=0,
            max_retries=1,
            bisect_on_error=True,
            retry_backoff_s=0,
            on_failure_queue_url=dlq_url,
        )
    )

    # WHEN the mapping runs until idle
    invocations = run_until_idle(mapping)

    # THEN the batch was split in two and each half retried, then discarded on its own
    assert [(i.sequence_numbers, i.retries, i.function_error is not None) for i in invocations] == [
        ((seq_a, seq_b), 0, True),
        ((seq_a,), 1, True),
        ((seq_b,), 1, True),
    ]
    discarded = read_queue(dlq_url)
    assert [
        (
            r["KinesisBatchInfo"]["startSequenceNumber"],
            r["KinesisBatchInfo"]["batchSize"],
            r["requestContext"]["approximateInvokeCount"],
            r["responseContext"]["functionError"],
        )
        for r in discarded
    ] == [(seq_a, 1, 2, "Unhandled"), (seq_b, 1, 2, "Unhandled")]
    assert read_notifications() == []


def test_failing_sns_makes_the_batch_retry_not_vanish(
    local_stack, make_alert, read_notifications, read_queue, dlq_url, monkeypatch, caplog
):
    # GIVEN an alert on the stream and an SNS topic that does not exist
    good_arn = local_stack.alert_topic_arn
    monkeypatch.setenv("VIGIL_ALERT_TOPIC_ARN", good_arn.replace("vigil-alerts", "no-such-topic"))
    alert = make_alert("cam-a")
    [seq] = put(local_stack, alert)
    mapping = EventSourceMapping(
        MappingConfig(
            stream="alerts",
            batch_window_s=0,
            max_retries=10,
            retry_backoff_s=0.3,
            on_failure_queue_url=dlq_url,
        )
    )

    # WHEN the mapping polls while SNS fails
    first = mapping.poll_once()
    waiting = mapping.poll_once()  # the retry waits out its backoff (0.3 s) ...
    time.sleep(0.35)
    second = mapping.poll_once()  # ... then runs

    # THEN both invocations failed on the same record (a function error: every record of the batch
    # failed, here on SNS NotFound), nothing was notified or discarded
    error = (
        "BatchProcessingError: All records failed processing. 1 individual errors logged separately below."
    )
    assert [(i.sequence_numbers, i.retries, i.function_error) for i in first + waiting + second] == [
        ((seq,), 0, error),
        ((seq,), 1, error),
    ]
    reasons = [r.getMessage() for r in caplog.records if "batch item failure" in r.getMessage()]
    assert len(reasons) == 2 and all("NotFound" in reason for reason in reasons)
    assert read_notifications() == [] and read_queue(dlq_url) == []
    assert not mapping.idle

    # WHEN SNS is back
    monkeypatch.setenv("VIGIL_ALERT_TOPIC_ARN", good_arn)
    time.sleep(0.65)  # the second retry's backoff
    [retried] = mapping.poll_once()

    # THEN the retry delivers the alert, once
    assert (retried.sequence_numbers, retried.retries, retried.succeeded) == ((seq,), 2, True)
    assert delivered_alerts(read_notifications) == [alert]
    assert mapping.idle and read_queue(dlq_url) == []


def test_batch_window_waits_to_fill_the_batch(local_stack, make_alert, read_notifications):
    # GIVEN a mapping with a 0.4 s batching window and one record on the stream
    mapping = EventSourceMapping(MappingConfig(stream="alerts", batch_window_s=0.4, batch_size=10))
    put(local_stack, make_alert("cam-a"))

    # WHEN it polls at once, THEN it waits for more records
    first_poll = time.monotonic()
    assert mapping.poll_once() == []
    # WHEN a second record arrives within the window, THEN both go in one invocation, after the window
    put(local_stack, make_alert("cam-b"))
    invocations: list = []
    while not invocations and time.monotonic() - first_poll < 10:
        invocations = mapping.poll_once()
        time.sleep(0.05)
    assert [len(i.sequence_numbers) for i in invocations] == [2]
    assert time.monotonic() - first_poll >= 0.4
    assert len(read_notifications()) == 2


def test_latest_starting_position_skips_older_records(local_stack, make_alert, read_notifications):
    # GIVEN a record already on the stream before the mapping starts at LATEST
    put(local_stack, make_alert("cam-old"))
    mapping = EventSourceMapping(
        MappingConfig(stream="alerts", batch_window_s=0, starting_position="LATEST")
    ).start()

    # WHEN a new record arrives and the mapping runs until idle
    new = make_alert("cam-new")
    put(local_stack, new)
    mapping.run(threading.Event(), exit_when_idle_s=0.3)

    # THEN only the new one is notified
    assert delivered_alerts(read_notifications) == [new]


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (None, "success"),
        ({"batchItemFailures": []}, "success"),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, "function error"),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, "function error"),
        ({"batchItemFailures": [{"sequenceNumber": "1"}]}, "function error"),
    ],
    ids=["null", "empty_list", "empty_identifier", "null_identifier", "wrong_key"],
)
def test_responses_are_judged_as_lambda_judges_them(local_stack, make_alert, response, outcome):
    # GIVEN a function that answers `response` to every batch
    events = []

    def function(event, context):
        events.append((event, context.get_remaining_time_in_millis()))
        return response

    put(local_stack, make_alert("cam-a"))
    mapping = EventSourceMapping(
        MappingConfig(stream="alerts", batch_window_s=0, max_retries=0, retry_backoff_s=0), function=function
    )

    # WHEN one batch is invoked
    [invocation] = mapping.poll_once()

    # THEN the batch succeeded or failed as a whole, as the Lambda docs define it
    assert ("success" if invocation.succeeded else "function error") == outcome
    assert invocation.failed == ()
    assert mapping.stats.records_discarded == (0 if outcome == "success" else 1)
    # AND the function got one Kinesis record and a context with time left
    [(event, remaining_ms)] = events
    assert [r["eventName"] for r in event["Records"]] == ["aws:kinesis:record"]
    assert 0 < remaining_ms <= 60_000


def test_unknown_stream_is_a_clear_error(local_stack):
    with pytest.raises(EventSourceMappingError, match="stream 'nope': ResourceNotFoundException"):
        EventSourceMapping(MappingConfig(stream="nope")).start()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "alert_lambda.local_esm", *args]


def test_cli_delivers_and_exits_when_idle(local_stack, make_alert, read_notifications):
    # GIVEN two alerts on the stream
    alerts = [make_alert("cam-a"), make_alert("cam-b")]
    put(local_stack, *alerts)

    # WHEN the CLI runs until the stream is idle
    done = subprocess.run(  # noqa: PLW1510 - the exit code is what is asserted
        _cli("--stream", "alerts", "--batch-window-s", "0", "--exit-when-idle-s", "0.5"),
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    # THEN it exits 0, logged the invocation on one line, and the alerts were notified
    assert done.returncode == 0, done.stderr
    invoked = [line for line in done.stderr.splitlines() if " invoked vigil-alert-lambda " in line]
    assert len(invoked) == 1 and "2 record(s)" in invoked[0] and "0 failed item(s)" in invoked[0]
    assert delivered_alerts(read_notifications) == alerts


@pytest.mark.parametrize(
    ("args", "env_change", "message"),
    [
        (["--stream", "nope"], {}, "error: stream 'nope': ResourceNotFoundException"),
        (
            ["--stream", "alerts", "--batch-size", "0"],
            {},
            "error: --batch-size: Input should be greater than",
        ),
        (["--stream", "alerts"], {"VIGIL_ALERT_TOPIC_ARN": ""}, "error: VIGIL_ALERT_TOPIC_ARN is not set"),
        (
            ["--stream", "alerts", "--on-failure-queue-url", "http://127.0.0.1:1/000000000000/missing"],
            {},
            "error: on-failure queue",
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(local_stack, args, env_change, message):
    done = subprocess.run(  # noqa: PLW1510 - the exit code is what is asserted
        _cli(*args),
        cwd=REPO_ROOT,
        env={**os.environ, **env_change},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_stops_cleanly_on_sigterm(local_stack):
    # GIVEN the CLI polling an empty stream
    process = subprocess.Popen(
        _cli("--stream", "alerts"), cwd=REPO_ROOT, env=os.environ.copy(), stderr=subprocess.PIPE, text=True
    )
    try:
        assert "mapping arn:aws:kinesis" in process.stderr.readline()
        # WHEN it gets SIGTERM
        process.send_signal(signal.SIGTERM)
        # THEN it stops at once with exit code 0 and a summary
        rest = process.communicate(timeout=10)[1]
    finally:
        process.kill()
    assert process.returncode == 0
    assert "SIGTERM received" in rest and "mapping stopped: 0 invocation(s)" in rest
