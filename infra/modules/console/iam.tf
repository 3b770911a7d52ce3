# The console's two roles: task_exec (ECS pulls the image, ships logs, reads the signing secret) and
# task (what the console's code calls). One statement per API family, scoped to the alert history
# (alerts module), the audit table, the state table (read only) and the archive prefixes it links to
# or labels.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

# --- task execution role ---------------------------------------------------------------------------

resource "aws_iam_role" "task_exec" {
  name               = "${local.name}-task-exec"
  description        = "ECS task execution role of ${local.name}: image pull, logs, signing secret."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task_exec" {
  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "EcrAuthorization"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "SigningSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.signing.arn]
  }

  dynamic "statement" {
    for_each = local.cognito ? [] : ["LoginTokenSecret"]
    content {
      sid       = statement.value
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [aws_secretsmanager_secret.token[0].arn]
    }
  }

  statement {
    sid       = "KmsSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "task_exec" {
  name   = "task-exec"
  role   = aws_iam_role.task_exec.id
  policy = data.aws_iam_policy_document.task_exec.json
}

# --- task role (the console's code) ----------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  description        = "Role of the ${local.name} code: read alert history and camera state, record reviews, write feedback labels and camera scenes."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  # Listings are key queries on the table and its indexes; an alert page is a GetItem.
  statement {
    sid       = "DynamoDBHistoryRead"
    actions   = ["dynamodb:GetItem", "dynamodb:Query"]
    resources = [var.alert_history_table_arn, "${var.alert_history_table_arn}/index/*"]
  }

  # A review sets the review attributes of an existing item, nothing else.
  statement {
    sid       = "DynamoDBHistoryReview"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.alert_history_table_arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:Attributes"
      values   = ["camera_id", "sk", "review_label", "reviewed_by", "reviewed_at"]
    }
  }

  # The audit is append-only for the console: put new entries (conditional on a new key) and read them.
  statement {
    sid       = "DynamoDBAudit"
    actions   = ["dynamodb:PutItem", "dynamodb:Query"]
    resources = [aws_dynamodb_table.this.arn]
  }

  # Camera status and checkpoint items: a few per camera.
  statement {
    sid       = "DynamoDBStateRead"
    actions   = ["dynamodb:Scan"]
    resources = [var.state_table_arn]
  }

  # The scene page: one camera's status (its site) and scene item.
  statement {
    sid       = "DynamoDBSceneRead"
    actions   = ["dynamodb:GetItem"]
    resources = [var.state_table_arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["camera-status#*", "camera-scene#*"]
    }
  }

  # A supervisor's save: the camera's scene item only (conditional on its revision), never the worker's
  # checkpoints, leases or status items beside it.
  statement {
    sid       = "DynamoDBSceneWrite"
    actions   = ["dynamodb:PutItem"]
    resources = [var.state_table_arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["camera-scene#*"]
    }
  }

  # Presigned links to snapshots and alert clips are signed with this role; the alert page reads the
  # score trace next to the clip (alerts/.../<start>_<end>.scores.json); feedback reads the label
  # and the alert clip's manifest lines.
  statement {
    sid     = "S3ArchiveRead"
    actions = ["s3:GetObject"]
    resources = [
      "${var.archive_bucket_arn}/alerts/*",
      "${var.archive_bucket_arn}/feedback/*",
      "${var.archive_bucket_arn}/manifests/*",
      "${var.archive_bucket_arn}/snapshots/*",
    ]
  }

  # A review writes the feedback label and labels the alert clip's manifest lines (archive.feedback).
  statement {
    sid       = "S3FeedbackWrite"
    actions   = ["s3:PutObject"]
    resources = ["${var.archive_bucket_arn}/feedback/*", "${var.archive_bucket_arn}/manifests/*"]
  }

  statement {
    sid       = "S3ArchiveList"
    actions   = ["s3:ListBucket"]
    resources = [var.archive_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["manifests/*", "snapshots/*"]
    }
  }

  statement {
    sid       = "KmsData"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn, var.alert_history_kms_key_arn, var.archive_kms_key_arn, var.state_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
