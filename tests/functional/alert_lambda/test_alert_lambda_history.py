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
