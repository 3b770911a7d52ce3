# The alert path after the worker: Kinesis Data Stream -> event source mapping -> alert Lambda -> SNS.
# Poison records: the handler reports item failures, the mapping bisects the batch, retries, then sends
# the failed range to the dead-letter queue. Duplicate deliveries are absorbed by the idempotency table.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id     = data.aws_caller_identity.current.account_id
  region         = data.aws_region.current.region
  partition      = data.aws_partition.current.partition
  function_name  = "${var.name_prefix}-alert-notifier"
  log_group_name = "/aws/lambda/${local.function_name}"
  subscriptions  = { for s in var.subscriptions : "${s.protocol}:${s.endpoint}" => s }
}

data "aws_iam_policy_document" "kms" {
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

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix} alerts: stream, topic, DLQ, idempotency table, Lambda"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-alerts"
  target_key_id = aws_kms_key.this.key_id
}

# --- stream, topic, dead-letter queue, idempotency table -------------------------------------------

resource "aws_kinesis_stream" "this" {
  name             = "${var.name_prefix}-alerts"
  shard_count      = var.stream.mode == "PROVISIONED" ? var.stream.shard_count : null
  retention_period = var.stream.retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.this.arn

  stream_mode_details {
    stream_mode = var.stream.mode
  }

  tags = var.tags
}

resource "aws_sns_topic" "this" {
  name              = "${var.name_prefix}-alerts"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "this" {
  for_each = local.subscriptions

  topic_arn           = aws_sns_topic.this.arn
  protocol            = each.value.protocol
  endpoint            = each.value.endpoint
  filter_policy       = each.value.filter_policy == null ? null : jsonencode(each.value.filter_policy)
  filter_policy_scope = each.value.filter_policy == null ? null : "MessageAttributes"
}

resource "aws_sqs_queue" "this" {
  name                              = "${var.name_prefix}-alerts-dlq"
  message_retention_seconds         = var.dlq_retention_s
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = var.tags
}

resource "aws_dynamodb_table" "this" {
  name                        = "${var.name_prefix}-idempotency"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "id"
    type = "S"
  }

  ttl {
    attribute_name = "expiration" # set by Powertools idempotency on each record
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = var.tags
}

# --- the Lambda and its event source mapping -------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  function_name    = local.function_name
  description      = "Turns alert records from the ${aws_kinesis_stream.this.name} stream into SNS notifications."
  role             = aws_iam_role.this.arn
  runtime          = "python3.12"
  handler          = "alert_lambda.handler.lambda_handler"
  architectures    = [var.lambda.architecture]
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  memory_size      = var.lambda.memory_mb
  timeout          = var.lambda.timeout_s
  kms_key_arn      = aws_kms_key.this.arn # environment variables at rest

  environment {
    variables = {
      VIGIL_ALERT_TOPIC_ARN   = aws_sns_topic.this.arn
      VIGIL_IDEMPOTENCY_TABLE = aws_dynamodb_table.this.name
      POWERTOOLS_SERVICE_NAME = "vigil-alerts"
      POWERTOOLS_LOG_LEVEL    = var.lambda.log_level
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn                   = aws_kinesis_stream.this.arn
  function_name                      = aws_lambda_function.this.arn
  starting_position                  = var.event_source.starting_position
  batch_size                         = var.event_source.batch_size
  maximum_batching_window_in_seconds = var.event_source.maximum_batching_window_s
  parallelization_factor             = var.event_source.parallelization_factor
  maximum_retry_attempts             = var.event_source.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.event_source.maximum_record_age_s
  bisect_batch_on_function_error     = true
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.this.arn
    }
  }
}
