"""alert_lambda.handler end to end on a moto server: Kinesis event in, SNS -> SQS notifications out."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from alert_lambda import handler, notifier
from alert_lambda.messages import Links, build_notification
from alert_lambda.settings import Settings
from contracts.alert import AlertRecord, S3Object, Severity


def expected_envelope_fields(alert: AlertRecord, topic_arn: str) -> dict:
    return {
        "Type": "Notification",
        "TopicArn": topic_arn,
        "Subject": f"[{alert.severity.value.upper()}] {alert.event_type} at {alert.site} / {alert.camera_id}",
        "MessageAttributes": {
            "severity": {"Type": "String", "Value": alert.severity.value},
            "site": {"Type": "String", "Value": alert.site},
            "camera_id": {"Type": "String", "Value": alert.camera_id},
            "event_type": {"Type": "String", "Value": alert.event_type},
            "alert_id": {"Type": "String", "Value": alert.alert_id},
        },
        "alert": alert,
    }


def delivered_fields(envelope: dict) -> dict:
    """The parts of a delivered SNS envelope that the function controls."""
    return {
        "Type": envelope["Type"],
        "TopicArn": envelope["TopicArn"],
        "Subject": envelope["Subject"],
        "MessageAttributes": envelope["MessageAttributes"],
        "alert": AlertRecord.model_validate_json(envelope["Message"]),  # the `sqs` part: the alert JSON
    }


def emf_metrics(stdout: str) -> dict[str, list[float]]:
    """Metric values from the CloudWatch EMF lines the invocation printed."""
    values: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values.setdefault(metric["Name"], []).extend(blob[metric["Name"]])
    return values


POISONS = {
    "not_json": b"\x89PNG not an alert",
    "wrong_schema_version": "schema_version",
    "missing_field": "camera_id",
}


@pytest.mark.parametrize("poison_kind", list(POISONS))
def test_batch_with_duplicate_and_poison_notifies_each_alert_once(
    poison_kind,
    local_stack,
    kinesis_event_factory,
    make_alert,
    lambda_context,
    read_notifications,
    caplog,
    capsys,
):
    # GIVEN two valid alerts, a duplicate of the first, and a poison record, in one batch
    first = make_alert("cam-lobby-01")
    second = make_alert("cam-gate-03", severity=Severity.CRITICAL, site="port-east", snapshot=None)
    valid = second.model_dump(mode="json")
    poison = {
        "not_json": POISONS["not_json"],
        "wrong_schema_version": {**valid, "schema_version": "3"},
        "missing_field": {k: v for k, v in valid.items() if k != "camera_id"},
    }[poison_kind]
    event = kinesis_event_factory([first, poison, second, first])
    poison_seq = event["Records"][1]["kinesis"]["sequenceNumber"]

    # WHEN the function handles the batch
    with caplog.at_level(logging.INFO):
        response = handler.lambda_handler(event, lambda_context)

    # THEN only the poison record is reported as failed
    assert response == {"batchItemFailures": [{"itemIdentifier": poison_seq}]}
    # AND exactly two notifications were delivered, each with the right subject, attributes and alert
    delivered = sorted(
        (delivered_fields(e) for e in read_notifications()), key=lambda f: f["alert"].camera_id
    )
    assert delivered == [
        expected_envelope_fields(second, local_stack.alert_topic_arn),
        expected_envelope_fields(first, local_stack.alert_topic_arn),
    ]
    # AND the poison record's reason is logged on one line with its sequence number
    failures = [r.getMessage() for r in caplog.records if "batch item failure" in r.getMessage()]
    reason = {
        "not_json": "kinesis.data: Invalid JSON",
        "wrong_schema_version": "kinesis.data.schema_version: Input should be '1' or '2'",
        "missing_field": "kinesis.data.camera_id: Field required",
    }[poison_kind]
    assert len(failures) == 1
    assert failures[0].startswith(f"record {poison_seq} failed, reported as a batch item failure: {reason}")
    # AND the EMF metrics count what happened
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["AlertsNotified"] == [1.0, 1.0]
    assert metrics["AlertFailures"] == [1.0]
    assert metrics["AlertsDuplicate"] == [1.0]
    assert len(metrics["EndToEndLatencyMs"]) == 2 and all(
        0 < v < 60_000 for v in metrics["EndToEndLatencyMs"]
    )


def test_retried_batch_does_not_notify_again(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_notifications
):
    # GIVEN a batch that was fully delivered once
    alerts = [make_alert("cam-a"), make_alert("cam-b")]
    event = kinesis_event_factory(alerts)
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert len(read_notifications()) == 2

    # WHEN the event source mapping delivers the same batch again (a retry after a timeout)
    response = handler.lambda_handler(event, lambda_context)

    # THEN it succeeds and nobody is notified twice
    assert response == {"batchItemFailures": []}
    assert read_notifications() == []


def test_idempotency_off_when_table_name_empty(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_notifications, monkeypatch, caplog
):
    # GIVEN idempotency turned off
    monkeypatch.setenv("VIGIL_IDEMPOTENCY_TABLE", "")
    alert = make_alert("cam-a")

    # WHEN a duplicate record arrives
    with caplog.at_level(logging.WARNING, logger="alert_lambda.idempotency"):
        logging.getLogger("alert_lambda.idempotency").addHandler(caplog.handler)
        try:
            response = handler.lambda_handler(kinesis_event_factory([alert, alert]), lambda_context)
        finally:
            logging.getLogger("alert_lambda.idempotency").removeHandler(caplog.handler)

    # THEN both copies notify (the guard is what prevents it otherwise), and a warning says so
    assert response == {"batchItemFailures": []}
    assert [AlertRecord.model_validate_json(e["Message"]) for e in read_notifications()] == [alert, alert]
    assert "VIGIL_IDEMPOTENCY_TABLE is empty: idempotency is off" in caplog.text


def test_sns_failure_fails_every_record_and_leaves_no_idempotency_record(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_notifications, monkeypatch
):
    # GIVEN a topic that does not exist
    good_arn = local_stack.alert_topic_arn
    monkeypatch.setenv("VIGIL_ALERT_TOPIC_ARN", good_arn.replace("vigil-alerts", "no-such-topic"))
    event = kinesis_event_factory([make_alert("cam-a")])

    # WHEN the batch is handled, THEN the whole batch fails as a function error (so a mapping retries it)
    with pytest.raises(Exception, match="All records failed processing"):
        handler.lambda_handler(event, lambda_context)

    # AND once SNS works again the retry notifies: the failed attempt did not mark the alert as done
    monkeypatch.setenv("VIGIL_ALERT_TOPIC_ARN", good_arn)
    assert handler.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert len(read_notifications()) == 1


def test_subscription_filter_policy_matches_message_attributes(
    local_stack, kinesis_event_factory, make_alert, lambda_context, read_notifications
):
    # GIVEN an on-call queue subscribed to critical alerts of one site only
    sqs, sns = local_stack.client("sqs"), local_stack.client("sns")
    oncall_url = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    oncall_arn = sqs.get_queue_attributes(QueueUrl=oncall_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=local_stack.alert_topic_arn,
        Protocol="sqs",
        Endpoint=oncall_arn,
        Attributes={"FilterPolicy": json.dumps({"severity": ["critical"], "site": ["port-east"]})},
    )
    critical = make_alert("cam-gate-03", severity=Severity.CRITICAL, site="port-east")
    others = [make_alert("cam-a", site="port-east"), make_alert("cam-b", severity=Severity.CRITICAL)]

    # WHEN the three alerts are handled
    assert handler.lambda_handler(kinesis_event_factory([*others, critical]), lambda_context) == {
        "batchItemFailures": []
    }

    # THEN the on-call queue got only the matching one, the general inbox all three
    assert [AlertRecord.model_validate_json(e["Message"]) for e in read_notifications(oncall_url)] == [
        critical
    ]
    assert len(read_notifications()) == 3


def test_email_links_download_the_snapshot_and_clip(local_stack, make_alert):
    # GIVEN an alert whose snapshot and clip are in the archive bucket
    s3 = local_stack.client("s3")
    snapshot, clip = b"\xff\xd8\xff\xe0 fake jpeg \xff\xd9", b"\x00\x00\x00\x18ftypmp42 clip"
    s3.put_object(Bucket="vigil-archive", Key="snapshots/a.jpg", Body=snapshot)
    s3.put_object(Bucket="vigil-archive", Key="clips/a.mp4", Body=clip)
    alert = make_alert(
        snapshot=S3Object(bucket="vigil-archive", key="snapshots/a.jpg"),
        clip=S3Object(bucket="vigil-archive", key="clips/a.mp4"),
    )
    settings = Settings.from_env()

    # WHEN the email part is built as the notifier builds it
    links = Links(
        snapshot_url=notifier.presign(alert.snapshot, settings),
        clip_url=notifier.presign(alert.clip, settings),
        expires_in_s=settings.link_expiry_s,
    )
    email = json.loads(build_notification(alert, links).message)["email"]

    # THEN each link in the email downloads its object without credentials
    urls = [
        line.split(maxsplit=1)[1] for line in email.splitlines() if line.startswith(("Snapshot:", "Clip:"))
    ]
    assert [httpx.get(url).content for url in urls] == [snapshot, clip]
    assert "X-Amz-Expires=604800" in urls[0]
