output "alert_stream_name" {
  description = "Name of the alert Kinesis Data Stream (VIGIL_ALERT_STREAM)."
  value       = aws_kinesis_stream.this.name
}

output "alert_stream_arn" {
  description = "ARN of the alert stream."
  value       = aws_kinesis_stream.this.arn
}

output "alert_topic_arn" {
  description = "ARN of the SNS topic alerts are published to (VIGIL_ALERT_TOPIC_ARN)."
  value       = aws_sns_topic.this.arn
}

output "alert_function_name" {
  description = "Name of the alert Lambda."
  value       = aws_lambda_function.this.function_name
}

output "alert_dlq_name" {
  description = "Name of the dead-letter queue of failed alert batches."
  value       = aws_sqs_queue.this.name
}

output "alert_dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.this.arn
}

output "idempotency_table_name" {
  description = "Name of the Lambda's idempotency table (VIGIL_IDEMPOTENCY_TABLE)."
  value       = aws_dynamodb_table.idempotency.name
}

output "alert_kms_key_arn" {
  description = "ARN of the customer managed key of the stream, topic, queue, table and Lambda (producers need kms:GenerateDataKey)."
  value       = aws_kms_key.this.arn
}

output "alert_history_table_name" {
  description = "Name of the alert history table (VIGIL_ALERT_HISTORY_TABLE): every notified alert, for the operator console."
  value       = aws_dynamodb_table.history.name
}

output "alert_history_table_arn" {
  description = "ARN of the alert history table."
  value       = aws_dynamodb_table.history.arn
}

output "alert_redrive_policy_arn" {
  description = "Managed policy for the role that runs python -m alert_lambda.redrive (attach it to an operator or scheduled-task role)."
  value       = aws_iam_policy.this.arn
}
