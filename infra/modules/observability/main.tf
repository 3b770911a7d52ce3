# Operations: an encrypted SNS topic for alarms, the alarms that say the loop is unhealthy, a dashboard.
#
# The worker publishes its lag as CloudWatch embedded-metric-format log lines (namespace Vigil, metric
# FrameLagSeconds, dimension CameraId) through its awslogs driver: no cloudwatch:PutMetricData
# permission and no monitoring endpoint needed in the private subnets.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition
  actions    = [aws_sns_topic.this.arn]
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy: "*" as resource means this key only, and the account statement delegates to IAM (AWS's default key policy).
  #checkov:skip=CKV_AWS_111:A key policy: "*" as resource means this key only; write use is granted to the account's IAM policies and the named service.
  #checkov:skip=CKV_AWS_356:A key policy: "*" as resource means this key only (a key policy cannot name the key's own ARN before it exists).
  statement {
    sid = "AccountAdministration"
    actions = [
      "kms:CancelKeyDeletion", "kms:Create*", "kms:Decrypt", "kms:Delete*", "kms:Describe*", "kms:Disable*",
      "kms:Enable*", "kms:Encrypt", "kms:GenerateDataKey*", "kms:Get*", "kms:List*", "kms:Put*",
      "kms:ReEncrypt*", "kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
      "kms:TagResource", "kms:UntagResource", "kms:Update*",
    ]
    resources = ["*"] # in a key policy "*" means this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch alarms publish to the encrypted topic as the CloudWatch service.
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix} observability: operations topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-ops"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_sns_topic" "this" {
  name              = "${var.name_prefix}-ops"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = var.tags
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*"]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "this" {
  for_each = toset(var.ops_emails)

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = each.key
}

# --- alarms ------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  alarm_name          = "${var.name_prefix}-alert-lambda-errors"
  alarm_description   = "The alert Lambda raised errors: batches are being retried, bisected, or sent to the DLQ."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.alert_function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.lambda_errors
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name          = "${var.name_prefix}-alert-iterator-age"
  alarm_description   = "The alert Lambda is falling behind the Kinesis alert stream: notifications are late."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = var.alert_function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.iterator_age_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name_prefix}-alert-dlq-depth"
  alarm_description   = "Alert records failed every retry and are on the dead-letter queue: someone was not notified."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.alert_dlq_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.dlq_messages
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "endpoint_5xx" {
  alarm_name          = "${var.name_prefix}-endpoint-5xx"
  alarm_description   = "The detector endpoint answers 5XX: frames are not being scored."
  namespace           = "AWS/SageMaker"
  metric_name         = "Invocation5XXErrors"
  dimensions          = { EndpointName = var.endpoint_name, VariantName = var.endpoint_variant_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.endpoint_5xx
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "model_latency" {
  alarm_name          = "${var.name_prefix}-endpoint-model-latency"
  alarm_description   = "The detector's p90 ModelLatency is above ${var.thresholds.model_latency_p90_ms} ms."
  namespace           = "AWS/SageMaker"
  metric_name         = "ModelLatency"
  dimensions          = { EndpointName = var.endpoint_name, VariantName = var.endpoint_variant_name }
  extended_statistic  = "p90"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.model_latency_p90_ms * 1000 # ModelLatency is in microseconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "frame_lag" {
  for_each = toset(var.camera_ids)

  alarm_name          = "${var.name_prefix}-frame-lag-${each.key}"
  alarm_description   = "Camera ${each.key}: frames are analysed more than ${var.thresholds.frame_lag_s} s after capture, or the worker stopped reporting."
  namespace           = "Vigil"
  metric_name         = "FrameLagSeconds"
  dimensions          = { CameraId = each.key }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.frame_lag_s
  treat_missing_data  = "breaching" # no lag reported means no frame analysed
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# --- dashboard -----------------------------------------------------------------------------------------

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title   = "Frame lag per camera (s, max)"
          region  = local.region
          stat    = "Maximum"
          period  = 60
          metrics = [for camera in var.camera_ids : ["Vigil", "FrameLagSeconds", "CameraId", camera]]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Worker CPU and memory (%)"
          region = local.region
          stat   = "Average"
          period = 60
          metrics = [
            ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", var.service_name],
            ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", var.service_name],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Endpoint: invocations, 5XX, ModelLatency p90 (us)"
          region = local.region
          period = 60
          metrics = [
            ["AWS/SageMaker", "Invocations", "EndpointName", var.endpoint_name, "VariantName", var.endpoint_variant_name, { stat = "Sum" }],
            ["AWS/SageMaker", "Invocation5XXErrors", "EndpointName", var.endpoint_name, "VariantName", var.endpoint_variant_name, { stat = "Sum" }],
            ["AWS/SageMaker", "ModelLatency", "EndpointName", var.endpoint_name, "VariantName", var.endpoint_variant_name, { stat = "p90", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Alerts: records in, Lambda errors, iterator age (ms), DLQ"
          region = local.region
          period = 60
          metrics = [
            ["AWS/Kinesis", "IncomingRecords", "StreamName", var.alert_stream_name, { stat = "Sum" }],
            ["AWS/Lambda", "Errors", "FunctionName", var.alert_function_name, { stat = "Sum" }],
            ["AWS/Lambda", "IteratorAge", "FunctionName", var.alert_function_name, { stat = "Maximum", yAxis = "right" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.alert_dlq_name, { stat = "Maximum" }],
          ]
        }
      },
    ]
  })
}
