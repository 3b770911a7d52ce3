output "ops_topic_arn" {
  description = "ARN of the operations SNS topic the alarms notify."
  value       = aws_sns_topic.this.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "Names of the alarms this module created."
  value = concat(
    [
      aws_cloudwatch_metric_alarm.lambda_errors.alarm_name,
      aws_cloudwatch_metric_alarm.iterator_age.alarm_name,
      aws_cloudwatch_metric_alarm.dlq_depth.alarm_name,
      aws_cloudwatch_metric_alarm.endpoint_5xx.alarm_name,
      aws_cloudwatch_metric_alarm.model_latency.alarm_name,
    ],
    [for alarm in aws_cloudwatch_metric_alarm.frame_lag : alarm.alarm_name],
  )
}

output "ops_kms_key_arn" {
  description = "ARN of the customer managed key of the operations topic."
  value       = aws_kms_key.this.arn
}
