"""Issue 7's acceptance case on a moto server, real SNS -> SQS delivery: a batch with valid alerts, a
duplicate, a poison record and a throttled SNS call; each valid alert is delivered once with the
right attributes and formats, the poison record reaches the DLQ with its reason, batchItemFailures
is exactly the failed sequence numbers, and a replay of the same batch delivers nothing new. Run
once through the handler directly and once through the local event source mapping."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from zoneinfo import ZoneInfo

from alert_lambda import handler
from alert_lambda.local_esm import EventSourceMapping, MappingConfig
from contracts.alert import AlertRecord, Severity

MISSING_FIELD_REASON = "kinesis.data.camera_id: Field required"


def subscribe(local_stack, name: str, filter_policy: dict | None = None) -> str:
    sqs, sns = local_stack.client("sqs"), local_stack.client("sns")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    sns.subscribe(TopicArn=local_stack.alert_topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


def delivered(read_notifications, queue_url=None) -> list[tuple[AlertRecord, dict]]:
    """(alert, message attributes) per notification the queue got, by camera."""
    pairs = [
        (AlertRecord.model_validate_json(e["Message"]), e["MessageAttributes"])
        for e in read_notifications(queue_url)
    ]
    return sorted(pairs, key=lambda pair: pair[0].camera_id)


def attributes_of(alert: AlertRecord) -> dict:
    return {
        "severity": {"Type": "String", "Value": alert.severity.value},
        "site": {"Type": "String", "Value": alert.site},
        "camera_id": {"Type": "String", "Value": alert.camera_id},
        "event_type": {"Type": "String", "Value": alert.event_type},
        "alert_id": {"Type": "String", "Value": alert.alert_id},
    }


def poison_body(alert: AlertRecord) -> bytes:
    return json.dumps({k: v for k, v in alert.model_dump(mode="json").items() if k != "camera_id"}).encode()


def test_batch_with_duplicate_poison_and_throttled_sns_notifies_each_alert_exactly_once(
    local_stack,
    kinesis_event_factory,
    make_alert,
    lambda_context,
    read_notifications,
    read_queue,
    dead_letter_queue,
    sns_wire,
    monkeypatch,
):
    # GIVEN sites in two time zones, an on-call queue subscribed to critical alerts only, and a batch:
    # three alerts, a duplicate of the first, a poison record (no camera_id); the first Publish throttled
    monkeypatch.setenv(
        "VIGIL_SITE_TIMEZONES", json.dumps({"hq-campus": "Europe/Paris", "port-east": "Asia/Tokyo"})
    )
    oncall = subscribe(local_stack, "oncall-critical", {"severity": ["critical"]})
    a = make_alert("cam-a")
    b = make_alert("cam-b", severity=Severity.CRITICAL, site="port-east")
    c = make_alert("cam-c", severity=Severity.LOW)
    event = kinesis_event_factory([a, poison_body(b), b, a, c])
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    sns_wire.throttle = 1

    # WHEN the function handles the batch
    response = handler.lambda_handler(event, lambda_context)

    # THEN no record is reported failed: the poison record, dead-lettered, holds nothing back
    assert response == {"batchItemFailures": []}
    # AND the throttled Publish was retried by the function (botocore makes one attempt per call):
    # 4 Publish calls, 4 requests on the wire, 1 throttled
    assert (len(sns_wire.subjects), sns_wire.sent, sns_wire.throttled) == (4, 4, 1)
    # AND each valid alert reached the inbox once, whole, with its filterable attributes
    assert delivered(read_notifications) == [(x, attributes_of(x)) for x in (a, b, c)]
    # AND the severity filter policy let only the critical one through to on-call
    assert delivered(read_notifications, oncall) == [(b, attributes_of(b))]
    # AND the formats: subject, email and SMS in the site's time zone, JSON for machines
    by_subject = dict(zip(sns_wire.subjects, sns_wire.messages, strict=True))
    tokyo = by_subject["[CRITICAL] scene_anomaly at port-east / cam-b"]
    assert AlertRecord.model_validate_json(tokyo["sqs"]) == b
    tokyo_time = b.frame_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"Time:       {tokyo_time:%Y-%m-%d %H:%M:%S} JST (UTC+09:00), site time" in tokyo["email"]
    assert tokyo["sms"].startswith("VIGIL CRITICAL scene_anomaly @ port-east/cam-b ")
    assert f"{tokyo_time:%H:%M:%S} JST" in tokyo["sms"]
    paris = by_subject["[HIGH] scene_anomaly at hq-campus / cam-a"]
    assert " CET (UTC+01:00), site time" in paris["email"] or " CEST (UTC+02:00), site time" in paris["email"]
    # AND the poison record is in the dead-letter queue with its reason and its data
    [dead] = read_queue(dead_letter_queue)
    assert dead["reason"] == MISSING_FIELD_REASON
    assert dead["condition"] == "PoisonRecord"
    assert dead["KinesisRecord"] == {
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/alerts",
        "eventID": f"shardId-000000000000:{sequence[1]}",
        "shardId": "shardId-000000000000",
        "sequenceNumber": sequence[1],
        "partitionKey": "poison",
        "approximateArrivalTimestamp": event["Records"][1]["kinesis"]["approximateArrivalTimestamp"],
        "data": base64.b64encode(poison_body(b)).decode(),
        "dataBytes": len(poison_body(b)),
        "dataSha256": hashlib.sha256(poison_body(b)).hexdigest(),
        "dataTruncated": False,
    }
    assert dead["dataPreview"] == poison_body(b).decode()[:255] + "…"  # readable, cut at 256 characters
    assert dead["requestContext"] == {
        "requestId": lambda_context.aws_request_id,
        "functionArn": lambda_context.invoked_function_arn,
    }

    # WHEN the same batch is replayed (the mapping retries it from the poison record, or all of it)
    replay = handler.lambda_handler(event, lambda_context)

    # THEN the same answer, and nothing new is notified or dead-lettered
    assert replay == response
    assert read_notifications() == [] and read_notifications(oncall) == []
    assert read_queue(dead_letter_queue) == []
    assert len(sns_wire.subjects) == 4


def test_sns_throttled_past_the_functions_retries_fails_the_record_and_a_retry_delivers_it(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_notifications, sns_wire
):
    # GIVEN SNS throttling every request the function makes for one alert (notifier.PUBLISH_ATTEMPTS)
    alert = make_alert("cam-a")
    event = kinesis_event_factory([alert])
    sns_wire.throttle = 3

    # WHEN the batch is handled, THEN it fails as a whole (a function error: the mapping retries it)
    try:
        handler.lambda_handler(event, lambda_context)
        raised = None
    except Exception as exc:  # noqa: BLE001 - the type is what is asserted
        raised = type(exc).__name__
    assert (raised, sns_wire.sent, read_notifications()) == ("BatchProcessingError", 3, [])

    # WHEN the mapping retries and SNS has recovered, THEN it is delivered once
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert [AlertRecord.model_validate_json(e["Message"]) for e in read_notifications()] == [alert]


def test_the_local_mapping_delivers_each_alert_once_and_dead_letters_the_poison_with_its_reason(
    local_stack, make_alert, read_notifications, read_queue, dead_letter_queue, sns_wire
):
    # GIVEN the same mix on the real stream: alerts, a duplicate record, a poison record; one throttle
    kinesis = local_stack.client("kinesis")
    a, b, c = make_alert("cam-a"), make_alert("cam-b", severity=Severity.CRITICAL), make_alert("cam-c")
    bodies = [(a.model_dump_json().encode(), "cam-a"), (poison_body(b), "cam-b")]
    bodies += [(b.model_dump_json().encode(), "cam-b"), (a.model_dump_json().encode(), "cam-a")]
    bodies += [(c.model_dump_json().encode(), "cam-c")]
    sequence = [
        kinesis.put_record(StreamName="alerts", Data=data, PartitionKey=key)["SequenceNumber"]
        for data, key in bodies
    ]
    sns_wire.throttle = 1
    config = MappingConfig(
        stream="alerts",
        batch_window_s=0,
        max_retries=2,
        retry_backoff_s=0,
        on_failure_queue_url=dead_letter_queue,
    )

    # WHEN the mapping runs until the stream is idle
    mapping = EventSourceMapping(config)
    invocations = run_until_idle(mapping)

    # THEN one invocation: the poison record went to the DLQ and was reported done, nothing retried
    assert [(i.sequence_numbers, i.failed, i.function_error) for i in invocations] == [
        (tuple(sequence), (), None)
    ]
    # AND every alert was notified once
    assert [alert for alert, _ in delivered(read_notifications)] == [a, b, c]
    # AND the DLQ holds the function's poison message (with the reason), and no discard record
    [poison] = read_queue(dead_letter_queue)
    assert (poison["condition"], poison["reason"], poison["KinesisRecord"]["sequenceNumber"]) == (
        "PoisonRecord",
        MISSING_FIELD_REASON,
        sequence[1],
    )
    assert (mapping.stats.records_succeeded, mapping.stats.records_discarded) == (5, 0)

    # WHEN a new mapping replays the whole stream from TRIM_HORIZON
    replay = run_until_idle(EventSourceMapping(config))

    # THEN nothing new is notified, and the poison record is not dead-lettered again
    assert [(i.failed, i.function_error) for i in replay] == [((), None)]
    assert read_notifications() == []
    assert read_queue(dead_letter_queue) == []


def run_until_idle(mapping: EventSourceMapping) -> list:
    invocations: list = []
    deadline = time.monotonic() + 30
    while (not invocations or not mapping.idle) and time.monotonic() < deadline:
        invocations += mapping.poll_once()
        time.sleep(0.01)
    return invocations
