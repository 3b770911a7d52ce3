"""The Lambda function that turns alert records from the Kinesis Data Stream `alerts` into SNS
notifications, and `local_esm`, the local stand-in for the Kinesis event source mapping that invokes it.

- `handler.lambda_handler`: the Lambda entry point (partial batch responses, idempotent on `alert_id`).
- `messages`: what a notification says (subject, email, SMS, JSON, filterable attributes), pure.
- `notifier.publish`: one SNS `Publish` per alert, with presigned links to the snapshot and clip.
- `dead_letter`: each poison record, with the reason it was refused, to the dead-letter queue (once).
- `package`: `python -m alert_lambda.package --out dist/alert_lambda.zip`, the reproducible deployment zip.
- `local_esm`: `python -m alert_lambda.local_esm --stream alerts`.
"""
