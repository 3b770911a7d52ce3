# The alert Lambda's execution role: one statement per API family, each scoped to this module's
# resources (and to the archive prefixes it presigns links to).

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.function_name
  description        = "Execution role of the ${local.function_name} Lambda."
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid = "KinesisRead"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.this.arn]
  }

  statement {
    sid       = "SnsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]
  }

  statement {
    sid       = "DynamoDBIdempotency"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.idempotency.arn]
  }

  statement {
    sid       = "DynamoDBAlertHistory"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.history.arn]
  }

  # The mapping sends a failed batch's description here; the function sends a poison record's reason.
  statement {
    sid       = "SqsDeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]
  }

  statement {
    sid     = "S3PresignedLinks"
    actions = ["s3:GetObject"]
    resources = [
      "${var.archive_bucket_arn}/snapshots/*",
      "${var.archive_bucket_arn}/clips/*",
      "${var.archive_bucket_arn}/alerts/*",
    ]
  }

  statement {
    sid       = "KmsAlerts"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "KmsArchiveRead"
    actions   = ["kms:Decrypt"]
    resources = [var.archive_kms_key_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "alert-notifier"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# The redrive (`python -m alert_lambda.redrive`): an operator, or a scheduled task, reads the mapping's
# discarded ranges from the DLQ, reads their records back from the stream and runs the alert handler on
# them. A managed policy for the role that runs it to attach: what the handler needs, plus reading the
# stream by sequence number and taking messages off the DLQ.
data "aws_iam_policy_document" "redrive" {
  statement {
    sid       = "KinesisReadRange"
    actions   = ["kinesis:GetRecords", "kinesis:GetShardIterator"]
    resources = [aws_kinesis_stream.this.arn]
  }

  statement {
    sid       = "SnsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]
  }

  statement {
    sid       = "DynamoDBIdempotency"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.idempotency.arn]
  }

  statement {
    sid       = "DynamoDBAlertHistory"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.history.arn]
  }

  statement {
    sid       = "SqsDeadLetter"
    actions   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage", "sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]
  }

  statement {
    sid     = "S3PresignedLinks"
    actions = ["s3:GetObject"]
    resources = [
      "${var.archive_bucket_arn}/snapshots/*",
      "${var.archive_bucket_arn}/clips/*",
      "${var.archive_bucket_arn}/alerts/*",
    ]
  }

  statement {
    sid       = "KmsAlerts"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "KmsArchiveRead"
    actions   = ["kms:Decrypt"]
    resources = [var.archive_kms_key_arn]
  }
}

resource "aws_iam_policy" "this" {
  name        = "${local.function_name}-redrive"
  description = "Run python -m alert_lambda.redrive: deliver the alert ranges the event source mapping discarded to the DLQ."
  policy      = data.aws_iam_policy_document.redrive.json
  tags        = var.tags
}
