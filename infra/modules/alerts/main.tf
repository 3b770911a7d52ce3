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
  # Remember every alert id at least as long as the stream keeps its record: the mapping may retry a
  # record until it expires from the stream, and a retry after the TTL would notify twice.
  idempotency_ttl_s = coalesce(var.idempotency_ttl_s, var.stream.retention_hours * 3600)
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

resource "aws_dynamodb_table" "idempotency" {
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

# Every notified alert, for the operator console: written once per alert_id by the Lambda after the
# publish (alert_lambda/history.py), queried by camera, site, month or alert id, never scanned.
resource "aws_dynamodb_table" "history" {
  name                        = "${var.name_prefix}-alert-history"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "camera_id"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "camera_id"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "site"
    type = "S"
  }
  attribute {
    name = "month"
    type = "S"
  }
  attribute {
    name = "alert_id"
    type = "S"
  }

  global_secondary_index {
    name            = "by-site"
    hash_key        = "site"
    range_key       = "sk"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by-month"
    hash_key        = "month"
    range_key       = "sk"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by-alert-id"
    hash_key        = "alert_id"
    projection_type = "KEYS_ONLY"
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
  #checkov:skip=CKV_AWS_116:A dead-letter queue applies to asynchronous invocations only; this function is invoked synchronously by its Kinesis event source mapping, whose on-failure destination is the DLQ (aws_sqs_queue.this).
  #checkov:skip=CKV_AWS_117:Outside a VPC on purpose: the function handles no video, only alert records, and calls only SNS, DynamoDB and S3 presigning; in a VPC it would need an SNS interface endpoint and ec2:*NetworkInterface on "*".
  #checkov:skip=CKV_AWS_272:The package is built reproducibly by `make package-lambda` and pinned by source_code_hash; code signing needs an AWS Signer profile this project does not manage.
  #checkov:skip=CKV_AWS_115:No reserved concurrency by default: new accounts cannot reserve any (quota 10, 10 kept unreserved) and a fixed cap throttles an ON_DEMAND stream's growing shard count; lambda.reserved_concurrency sets one for PROVISIONED streams.
  #checkov:skip=CKV_AWS_50:No X-Ray: tracing needs xray:PutTraceSegments on "*"; latency is measured per alert (EMF metric from detected_at) and batch failures are logged with their reason.
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
  # No reservation by default (-1): an account at the default concurrency quota of 10 (new accounts) cannot
  # reserve any (AWS keeps 10 unreserved), and a fixed cap throttles the mapping once the stream has more
  # shards x parallelization_factor than the cap (ON_DEMAND streams add shards with load). A reservation
  # is for PROVISIONED streams only, sized by the precondition below.
  reserved_concurrent_executions = coalesce(var.lambda.reserved_concurrency, -1)
  kms_key_arn                    = aws_kms_key.this.arn # environment variables at rest

  environment {
    # The names alert_lambda/settings.py (and history.py) read.
    variables = {
      VIGIL_ALERT_TOPIC_ARN       = aws_sns_topic.this.arn
      VIGIL_IDEMPOTENCY_TABLE     = aws_dynamodb_table.idempotency.name
      VIGIL_IDEMPOTENCY_TTL_S     = tostring(local.idempotency_ttl_s)
      VIGIL_LINK_EXPIRY_S         = tostring(var.link_expiry_s)
      VIGIL_SITE_TIMEZONES        = jsonencode(var.site_timezones)
      VIGIL_DEAD_LETTER_QUEUE_URL = aws_sqs_queue.this.url
      VIGIL_ALERT_HISTORY_TABLE   = aws_dynamodb_table.history.name
      VIGIL_CONSOLE_URL           = var.console_url
      POWERTOOLS_SERVICE_NAME     = "vigil-alerts"
      POWERTOOLS_LOG_LEVEL        = var.lambda.log_level
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]

  lifecycle {
    precondition {
      condition = var.lambda.reserved_concurrency == null || (
        var.stream.mode == "PROVISIONED" &&
        coalesce(var.lambda.reserved_concurrency, 0) >= var.stream.shard_count * var.event_source.parallelization_factor
      )
      error_message = "lambda.reserved_concurrency caps the function below what the event source mapping runs (one invocation per shard x parallelization_factor): set it to at least stream.shard_count x event_source.parallelization_factor with a PROVISIONED stream, or leave it null (ON_DEMAND streams add shards with load)."
    }
  }
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
