"""Issue 15: an alert is never lost and never doubled, whatever SNS, DynamoDB and Kinesis do. One test
(or one parametrised family) per numbered case of the issue, on a moto server with real SNS -> SQS
delivery; faults are injected at the HTTP layer of the function's own clients (`SnsWire`,
`DynamoWire`), so botocore and Powertools decide what happens next, not a mock of them."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import threading
import time
from pathlib import Path

import pytest

from alert_lambda import handler, idempotency, notifier, redrive
from alert_lambda.dead_letter import MAX_DATA_BYTES
from alert_lambda.local_esm import EventSourceMapping, MappingConfig
from contracts.alert import AlertRecord

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra"))
import infra_hcl  # tests/infra: the Terraform parsed, for the mapping's settings


@pytest.fixture(autouse=True)
def _fresh_container():
    """Each test is a fresh Lambda container: nothing remembered from another test's store failure."""
    idempotency._published_unrecorded.clear()
    notifier._uncertain.clear()
    yield
    idempotency._published_unrecorded.clear()
    notifier._uncertain.clear()


def alerts_in(read_notifications) -> list[AlertRecord]:
    return [AlertRecord.model_validate_json(envelope["Message"]) for envelope in read_notifications()]


def raised_by(event, lambda_context) -> object:
    """The handler's answer, or the name of the exception it raised (a function error)."""
    try:
        return handler.lambda_handler(event, lambda_context)
    except Exception as exc:  # noqa: BLE001 - the type is what is asserted
        return type(exc).__name__


# --- case 1: SNS publishes, its response is lost -----------------------------------------------------


def test_a_lost_publish_response_is_resent_once_flagged_and_never_by_botocore(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_notifications, sns_wire
):
    # GIVEN SNS publishes the first Publish of an alert, but its response is lost (read timeout)
    alert = make_alert("cam-a")
    event = kinesis_event_factory([alert])
    sns_wire.lose = 1

    # WHEN the function handles the record
    response = handler.lambda_handler(event, lambda_context)

    # THEN the record is done; botocore sent nothing on its own: two Publish calls, two requests
    assert response == {"batchItemFailures": []}
    assert (len(sns_wire.subjects), sns_wire.sent, sns_wire.lost) == (2, 2, 1)
    # AND the resend (after asking the idempotency record whether another invocation completed it)
    # carries the same alert_id and says it may be a duplicate; the first did not
    envelopes = read_notifications()
    assert [
        (AlertRecord.model_validate_json(e["Message"]), e["MessageAttributes"].get("possible_duplicate"))
        for e in envelopes
    ] == [(alert, None), (alert, {"Type": "String", "Value": "true"})]
    assert {e["MessageAttributes"]["alert_id"]["Value"] for e in envelopes} == {alert.alert_id}
    # AND what a subscriber that drops repeated alert_ids keeps is exactly one notification
    assert len({e["MessageAttributes"]["alert_id"]["Value"] for e in envelopes}) == 1

    # WHEN the record is delivered again, THEN nothing more is published
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert (read_notifications(), sns_wire.sent) == ([], 2)


def test_when_every_try_loses_its_response_the_mappings_retry_is_flagged_too(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_notifications, sns_wire
):
    # GIVEN SNS publishing every try of the function but every response lost (PUBLISH_ATTEMPTS tries)
    alert = make_alert("cam-a")
    event = kinesis_event_factory([alert])
    sns_wire.lose = notifier.PUBLISH_ATTEMPTS

    # WHEN the function handles the record, THEN it fails (the outcome stays unknown): the mapping retries
    assert raised_by(event, lambda_context) == "BatchProcessingError"

    # WHEN the mapping retries it and SNS answers again
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}

    # THEN every copy but the very first says it may be a duplicate, all with the same alert_id: a
    # subscriber that drops flagged repeats of an alert_id it has seen keeps exactly one
    flags = [
        (e["MessageAttributes"]["alert_id"]["Value"], "possible_duplicate" in e["MessageAttributes"])
        for e in read_notifications()
    ]
    assert flags == [(alert.alert_id, False)] + [(alert.alert_id, True)] * notifier.PUBLISH_ATTEMPTS


# --- case 2: DynamoDB fails after the publish --------------------------------------------------------


def test_the_store_failing_after_the_publish_never_publishes_again(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_notifications, sns_wire, dynamo_wire
):
    # GIVEN five alerts, and DynamoDB refusing every write of a COMPLETED idempotency record
    alerts = [make_alert(f"cam-{i}") for i in range(5)]
    event = kinesis_event_factory(alerts)
    dynamo_wire.down_for = {"UpdateItem"}

    # WHEN the function handles the batch
    response = handler.lambda_handler(event, lambda_context)

    # THEN every alert is published once and reported done (not retried: a retry would publish again)
    assert response == {"batchItemFailures": []}
    assert sorted(alerts_in(read_notifications), key=lambda a: a.camera_id) == alerts
    assert dynamo_wire.refused == 5 * (1 + idempotency.RECORD_ATTEMPTS)

    # WHEN the mapping delivers the batch again while the store is still down (a retry from an
    # earlier failed record, or duplicates of these records)
    again = handler.lambda_handler(event, lambda_context)

    # THEN nothing is published again
    assert (again, read_notifications(), len(sns_wire.subjects)) == ({"batchItemFailures": []}, [], 5)

    # WHEN the store is back and the batch comes once more
    dynamo_wire.down_for = set()
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}

    # THEN still nothing new, and each alert's idempotency record is now COMPLETED with its message id
    assert (read_notifications(), len(sns_wire.subjects)) == ([], 5)
    table = local_stack.client("dynamodb")
    items = table.scan(TableName="vigil-idempotency")["Items"]
    assert sorted(item["status"]["S"] for item in items) == ["COMPLETED"] * 5


# --- case 3: an SNS outage outlives the retries ------------------------------------------------------


def terraform_mapping_config(dead_letter_queue: str) -> MappingConfig:
    """The local mapping with the event source mapping's settings as Terraform deploys them."""
    defaults = infra_hcl.module("alerts").variables["event_source"]["type"]
    retries = int(defaults.split("maximum_retry_attempts = optional(number, ")[1].split(")")[0])
    age = int(defaults.split("maximum_record_age_s = optional(number, ")[1].split(")")[0])
    return MappingConfig(
        stream="alerts",
        batch_size=5,
        batch_window_s=0,
        max_retries=retries,
        maximum_record_age_s=age,
        bisect_on_error=True,
        retry_backoff_s=0.05,
        on_failure_queue_url=dead_letter_queue,
    )


def test_an_sns_outage_longer_than_the_old_retries_delivers_every_alert_when_sns_is_back(
    local_stack, make_alert, read_notifications, read_queue, dead_letter_queue, sns_wire
):
    # GIVEN 20 alerts on the stream, the Terraform mapping settings (retries -1, 6 h record age,
    # bisect), and SNS down for 4 s: longer than 5 retries with this backoff took before
    kinesis = local_stack.client("kinesis")
    alerts = [make_alert(f"cam-{i:02d}") for i in range(20)]
    for alert in alerts:
        kinesis.put_record(
            StreamName="alerts", Data=alert.model_dump_json().encode(), PartitionKey=alert.camera_id
        )
    config = terraform_mapping_config(dead_letter_queue)
    assert (config.max_retries, config.maximum_record_age_s) == (-1, 21600)
    sns_wire.down = True
    threading.Timer(4.0, lambda: setattr(sns_wire, "down", False)).start()

    # WHEN the mapping runs through the outage until the stream is idle
    mapping = EventSourceMapping(config)
    invocations = run_until_idle(mapping, timeout_s=60)

    # THEN every alert was delivered exactly once, after failures that were retried, not discarded
    assert sorted(alerts_in(read_notifications), key=lambda a: a.camera_id) == alerts
    assert sns_wire.refused_while_down > 0 and any(i.function_error for i in invocations)
    assert (mapping.stats.records_discarded, read_queue(dead_letter_queue)) == (0, [])


def test_a_record_older_than_the_maximum_record_age_is_discarded_to_the_on_failure_queue(
    local_stack, make_alert, read_notifications, read_queue, dead_letter_queue, sns_wire
):
    # GIVEN SNS down for good and a mapping whose maximum record age has already passed
    kinesis = local_stack.client("kinesis")
    alert = make_alert("cam-a")
    sequence = kinesis.put_record(
        StreamName="alerts", Data=alert.model_dump_json().encode(), PartitionKey="k"
    )["SequenceNumber"]
    sns_wire.down = True
    config = terraform_mapping_config(dead_letter_queue).model_copy(update={"maximum_record_age_s": 0})

    # WHEN the mapping runs, THEN the first retry discards the record, with its range, to the queue
    mapping = EventSourceMapping(config)
    run_until_idle(mapping, timeout_s=30)
    [discarded] = read_queue(dead_letter_queue)
    assert (
        discarded["requestContext"]["condition"],
        discarded["KinesisBatchInfo"]["startSequenceNumber"],
    ) == (
        "RetryAttemptsExhausted",
        sequence,
    )
    assert (mapping.stats.records_discarded, read_notifications()) == (1, [])


def test_redrive_reads_a_discarded_range_back_from_the_stream_and_delivers_it_once(
    local_stack,
    make_alert,
    lambda_context,
    kinesis_event_factory,
    read_notifications,
    read_queue,
    dead_letter_queue,
    sns_wire,
):
    # GIVEN a range of three alerts discarded to the DLQ during an outage (the first had been
    # delivered before SNS went down), and a poison record's message in the same queue
    kinesis = local_stack.client("kinesis")
    alerts = [make_alert(f"cam-{i}") for i in range(3)]
    for alert in alerts:
        kinesis.put_record(StreamName="alerts", Data=alert.model_dump_json().encode(), PartitionKey="k")
    assert handler.lambda_handler(kinesis_event_factory([alerts[0]]), lambda_context) == {
        "batchItemFailures": []
    }
    assert alerts_in(read_notifications) == [alerts[0]]
    assert handler.lambda_handler(kinesis_event_factory([b"poison"]), lambda_context) == {
        "batchItemFailures": []
    }
    sns_wire.down = True
    config = terraform_mapping_config(dead_letter_queue).model_copy(update={"maximum_record_age_s": 0})
    run_until_idle(EventSourceMapping(config), timeout_s=30)

    # WHEN SNS is back and the operator runs the redrive
    sns_wire.down = False
    assert redrive.main(["--queue-url", dead_letter_queue]) == 0

    # THEN the two alerts not yet delivered are, once; the delivered one is not repeated
    assert sorted(alerts_in(read_notifications), key=lambda a: a.camera_id) == alerts[1:]
    # AND the discard record is gone from the queue; the poison message is left for people
    assert [m.get("condition") for m in read_queue(dead_letter_queue)] == ["PoisonRecord"]


# --- cases 4, 6, 9: failures no retry can fix reach the DLQ once, and block nothing ------------------


def _mutated(alert: AlertRecord, **changes: object) -> bytes:
    body = alert.model_dump(mode="json")
    body.update(changes)
    return json.dumps(body).encode()


UNDELIVERABLE = {
    # case 4: an alert that would exceed SNS's message limit (4 copies of the alert JSON + the email)
    "over_64_kb": (
        lambda a: _mutated(a, model_version="v" * 70_000),
        "kinesis.data.model_version: String should have at most 256 characters",
    ),
    "empty_alert_id": (
        lambda a: _mutated(a, alert_id=""),
        "kinesis.data.alert_id: String should have at least 1 character",
    ),
    "year_1_plus_14h": (
        lambda a: _mutated(a, started_at="0001-01-01T00:00:00+14:00"),
        "kinesis.data.started_at: Value error, time out of range once converted to UTC",
    ),
    # case 6: NaN and infinities, as Python's json.dumps writes them
    "nan_score": (
        lambda a: _mutated(a, score="@").replace(b'"@"', b"NaN"),
        "kinesis.data.score: Input should be a finite number",
    ),
    "inf_threshold": (
        lambda a: _mutated(a, threshold="@").replace(b'"@"', b"Infinity"),
        "kinesis.data.threshold: Input should be a finite number",
    ),
    "minus_inf_score": (
        lambda a: _mutated(a, score="@").replace(b'"@"', b"-Infinity"),
        "kinesis.data.score: Input should be a finite number",
    ),
    # case 9: dates no camera meant
    "year_1970": (
        lambda a: _mutated(a, frame_at="1970-01-01T00:00:00.000Z"),
        "kinesis.data.frame_at: Value error, time 1970-01-01T00:00:00+00:00 outside [2000-01-01T00:00:00+00:00, now + 1 day, 0:00:00]",
    ),
    "year_9999": (
        lambda a: _mutated(a, detected_at="9999-12-31T23:59:59.000Z"),
        "kinesis.data.detected_at: Value error, time 9999-12-31T23:59:59+00:00 outside [2000-01-01T00:00:00+00:00, now + 1 day, 0:00:00]",
    ),
}


@pytest.mark.parametrize("kind", list(UNDELIVERABLE))
def test_a_record_no_retry_can_fix_goes_to_the_dlq_once_and_blocks_nothing(
    kind,
    local_stack,
    kinesis_event_factory,
    make_alert,
    lambda_context,
    read_notifications,
    read_queue,
    dead_letter_queue,
    sns_wire,
):
    # GIVEN a batch with a record that can never become a notification between two good alerts
    make_body, reason = UNDELIVERABLE[kind]
    before, bad, after = make_alert("cam-a"), make_alert("cam-b"), make_alert("cam-c")
    event = kinesis_event_factory([before, make_body(bad), after])
    sequence = event["Records"][1]["kinesis"]["sequenceNumber"]

    # WHEN the function handles it, twice (a replay of the batch)
    responses = [handler.lambda_handler(event, lambda_context) for _ in range(2)]

    # THEN nothing is reported failed, so nothing behind it waits; only the good alerts are notified
    assert responses == [{"batchItemFailures": []}] * 2
    assert sorted(alerts_in(read_notifications), key=lambda a: a.camera_id) == [before, after]
    # AND the DLQ has it once, with the reason a person reads
    [dead] = read_queue(dead_letter_queue)
    assert (dead["condition"], dead["reason"], dead["KinesisRecord"]["sequenceNumber"]) == (
        "PoisonRecord",
        reason,
        sequence,
    )


def test_sns_refusing_the_message_sends_it_to_the_dlq_without_a_retry(
    local_stack,
    kinesis_event_factory,
    make_alert,
    lambda_context,
    read_notifications,
    read_queue,
    dead_letter_queue,
    sns_wire,
):
    # GIVEN SNS answering InvalidParameter (message too long), an error no retry can fix
    alert = make_alert("cam-a")
    event = kinesis_event_factory([alert])
    sns_wire.refuse = ("InvalidParameter", "Invalid parameter: Message too long")

    # WHEN the function handles the record
    response = handler.lambda_handler(event, lambda_context)

    # THEN one request was made, the record is done, and the DLQ holds it whole with SNS's reason
    assert (response, sns_wire.sent) == ({"batchItemFailures": []}, 1)
    [dead] = read_queue(dead_letter_queue)
    assert dead["reason"] == (
        "PermanentFailure: SNS refused the notification: InvalidParameter: Invalid parameter: Message too long"
    )
    assert base64.b64decode(dead["KinesisRecord"]["data"]) == alert.model_dump_json().encode()
    # AND its idempotency claim was released: a later, fixed delivery is not blocked
    sns_wire.refuse = None
    assert handler.lambda_handler(kinesis_event_factory([alert]), lambda_context) == {"batchItemFailures": []}
    assert alerts_in(read_notifications) == [alert]


# --- case 5: a ~1 MB poison record reaches the DLQ ---------------------------------------------------


def test_a_one_megabyte_poison_record_reaches_the_dlq_bounded(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_queue, dead_letter_queue
):
    # GIVEN a ~1 MB record (Kinesis takes up to 1 MiB; the DLQ message could not embed it whole)
    raw = b'{"camera_id": "' + b"x" * 1_000_000 + b'"}'
    event = kinesis_event_factory([raw])

    # WHEN the function handles it
    response = handler.lambda_handler(event, lambda_context)

    # THEN it is done, and the DLQ has its head, full size and hash, and where to find it whole
    assert response == {"batchItemFailures": []}
    [dead] = read_queue(dead_letter_queue)
    record = dead["KinesisRecord"]
    assert {k: record[k] for k in ("sequenceNumber", "dataBytes", "dataSha256", "dataTruncated")} == {
        "sequenceNumber": event["Records"][0]["kinesis"]["sequenceNumber"],
        "dataBytes": len(raw),
        "dataSha256": hashlib.sha256(raw).hexdigest(),
        "dataTruncated": True,
    }
    assert base64.b64decode(record["data"]) == raw[:MAX_DATA_BYTES]


# --- case 7: a dead-lettered poison record holds nothing back ----------------------------------------


def test_a_dead_lettered_poison_record_is_not_retried_and_the_shard_moves_on(
    local_stack, make_alert, read_notifications, read_queue, dead_letter_queue
):
    # GIVEN the Terraform mapping settings, and a poison record between five alerts on one shard
    kinesis = local_stack.client("kinesis")
    alerts = [make_alert(f"cam-{i}") for i in range(5)]
    bodies = [a.model_dump_json().encode() for a in alerts[:2]] + [b"not an alert"]
    bodies += [a.model_dump_json().encode() for a in alerts[2:]]
    sequence = [
        kinesis.put_record(StreamName="alerts", Data=b, PartitionKey="one")["SequenceNumber"] for b in bodies
    ]
    config = terraform_mapping_config(dead_letter_queue).model_copy(update={"batch_size": 100})

    # WHEN the mapping runs until idle
    mapping = EventSourceMapping(config)
    invocations = run_until_idle(mapping, timeout_s=30)

    # THEN one invocation, no failure reported, nothing retried or discarded
    assert [(i.sequence_numbers, i.failed, i.function_error, i.retries) for i in invocations] == [
        (tuple(sequence), (), None, 0)
    ]
    assert (mapping.stats.records_succeeded, mapping.stats.records_discarded) == (6, 0)
    # AND every alert was notified, and only the function's poison message is in the DLQ
    assert sorted(alerts_in(read_notifications), key=lambda a: a.camera_id) == alerts
    assert [
        (m["condition"], m["KinesisRecord"]["sequenceNumber"]) for m in read_queue(dead_letter_queue)
    ] == [("PoisonRecord", sequence[2])]


# --- case 8: links say how long they really work ------------------------------------------------------


def test_links_signed_with_a_session_say_they_expire_with_it_and_the_console_link_lasts(
    local_stack, kinesis_event_factory, make_alert, lambda_context, sns_wire, monkeypatch
):
    # GIVEN the function's temporary credentials (as on Lambda) and the operator console's URL
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    monkeypatch.setenv("VIGIL_CONSOLE_URL", "https://vigil.example.org/")
    alert = make_alert("cam-a")

    # WHEN the alert is notified
    assert handler.lambda_handler(kinesis_event_factory([alert]), lambda_context) == {"batchItemFailures": []}

    # THEN the email states the real validity and links to the alert's page in the console
    [message] = sns_wire.messages
    email = message["email"].splitlines()
    assert email[email.index(next(line for line in email if line.startswith("Snapshot:"))) + 1 :][:2] == [
        (
            "            (links signed for 7 days with temporary credentials: they stop working when those "
            "expire, usually within a few hours; the console link keeps working)"
        ),
        f"Console:    https://vigil.example.org/alerts/{alert.alert_id}",
    ]


def run_until_idle(mapping: EventSourceMapping, timeout_s: float = 30, quiet_s: float = 1.0) -> list:
    """Poll until nothing is pending and the stream has had nothing new for `quiet_s`."""
    invocations: list = []
    deadline = time.monotonic() + timeout_s
    last_activity = time.monotonic()
    while time.monotonic() < deadline:
        new = mapping.poll_once()
        invocations += new
        if new or not mapping.idle:
            last_activity = time.monotonic()
        elif time.monotonic() - last_activity >= quiet_s:
            break
        time.sleep(0.01)
    return invocations


# --- an alert in progress in another invocation is waited for, not failed ------------------------------


def test_an_alert_in_progress_elsewhere_is_waited_for_then_found_done(local_stack, make_alert, monkeypatch):
    # GIVEN another invocation holding the alert's idempotency lock for two of our tries, then done
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    from alert_lambda.settings import Settings

    alert = make_alert("cam-a")
    guard = idempotency._current_guard(Settings.from_env())
    answers = [
        IdempotencyAlreadyInProgressError("busy"),
        IdempotencyAlreadyInProgressError("busy"),
        {"message_id": "m-1"},
    ]
    calls = []

    def other_invocation_finishes(**kwargs):
        calls.append(kwargs["alert"].alert_id)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    busy_guard = idempotency._Guard(
        config=guard.config, notify=other_invocation_finishes, persistence=guard.persistence
    )
    monkeypatch.setattr(idempotency, "_current_guard", lambda settings: busy_guard)

    # WHEN this invocation notifies it
    result = idempotency.notify_once(alert, Settings.from_env())

    # THEN it waited, found the other's result, and publishes nothing itself
    assert (result, calls) == (
        idempotency.NotifyResult(message_id="m-1", duplicate=True),
        [alert.alert_id] * 3,
    )
