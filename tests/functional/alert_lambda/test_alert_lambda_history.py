"""After a successful publish the Lambda records the alert in the history table the console lists,
once per alert_id, even when the same record arrives again."""

from __future__ import annotations

from alert_lambda.handler import lambda_handler


def test_notified_alert_is_recorded_once_in_history(
    local_stack, make_alert, kinesis_event_factory, lambda_context, read_notifications
):
    # GIVEN an alert delivered twice (a retried batch)
    alert = make_alert(camera_id="cam-dock-3")
    event = kinesis_event_factory([alert.model_dump_json()])
    # WHEN the function handles both deliveries
    assert lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    # THEN one notification went out and one history item, keyed by camera and start time, exists
    assert len(read_notifications()) == 1
    items = local_stack.client("dynamodb").query(
        TableName=local_stack.names.alert_history_table,
        KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": "cam-dock-3"}},
    )["Items"]
    assert [(i["alert_id"]["S"], i["sk"]["S"].split("#")[-1]) for i in items] == [(alert.alert_id, alert.alert_id)]


def test_an_alert_raised_while_disarmed_is_recorded_but_not_published(
    local_stack, make_alert, kinesis_event_factory, lambda_context, read_notifications
):
    # GIVEN a version 2 alert raised outside the arming schedule (notify false), and a version 1 alert
    quiet = make_alert(camera_id="cam-dock-3", event_type="intrusion", zone="dock", armed=False, notify=False)
    old = make_alert(camera_id="cam-dock-3", schema_version="1")
    event = kinesis_event_factory([quiet.model_dump_json(), old.model_dump_json()])
    # WHEN the function handles them
    assert lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    # THEN only the version 1 alert was published; both are in the history the console lists, the
    # quiet one with its zone and notify false
    assert [n["MessageAttributes"]["alert_id"]["Value"] for n in read_notifications()] == [old.alert_id]
    items = local_stack.client("dynamodb").query(
        TableName=local_stack.names.alert_history_table,
        KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": "cam-dock-3"}},
    )["Items"]
    by_id = {i["alert_id"]["S"]: i for i in items}
    assert set(by_id) == {quiet.alert_id, old.alert_id}
    assert (by_id[quiet.alert_id]["zone"], by_id[quiet.alert_id]["notify"]) == ({"S": "dock"}, {"BOOL": False})
    assert "zone" not in by_id[old.alert_id] and "notify" not in by_id[old.alert_id]
