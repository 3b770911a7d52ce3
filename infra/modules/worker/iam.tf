# The worker's two roles: task_exec (ECS pulls the image and ships logs) and task (what the worker's
# code calls). One statement per API family, each scoped to the resources the worker uses.

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
  description        = "ECS task execution role of ${local.name}: image pull and logs."
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
}

resource "aws_iam_role_policy" "task_exec" {
  name   = "task-exec"
  role   = aws_iam_role.task_exec.id
  policy = data.aws_iam_policy_document.task_exec.json
}

# --- task role (the worker's code) -----------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  description        = "Role of the ${local.name} code: read camera streams, invoke the detector, put alerts, archive, checkpoint."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  # GetDataEndpoint (control plane), then GetMedia (kinesis-video-media, live analysis) and ListFragments
  # + GetClip (kinesis-video-archived-media, the archiver) on the data endpoint it returns.
  statement {
    sid = "KinesisVideoRead"
    actions = [
      "kinesisvideo:GetClip",
      "kinesisvideo:GetDataEndpoint",
      "kinesisvideo:GetMedia",
      "kinesisvideo:ListFragments",
    ]
    resources = [for camera in values(var.camera_streams) : camera.stream_arn]
  }

  statement {
    sid       = "SageMakerInvoke"
    actions   = ["sagemaker:InvokeEndpoint"]
    resources = [var.endpoint_arn]
  }

  statement {
    sid       = "KinesisAlertsPut"
    actions   = ["kinesis:PutRecords"]
    resources = [var.alert_stream_arn]
  }

  # The archive prefixes the worker's code writes (archive/keys.py, worker/snapshot.py). A clip is
  # uploaded under tmp/, copied into place (GetObject on the source, PutObject on the target) and the
  # temporary deleted; manifests are read, changed and written back with conditional writes. An alert's
  # score trace is put next to its clip (alerts/.../<start>_<end>.scores.json, archive/runner.py).
  statement {
    sid     = "S3ArchiveObjects"
    actions = ["s3:GetObject", "s3:PutObject"]
    resources = [
      "${var.archive_bucket_arn}/alerts/*",
      "${var.archive_bucket_arn}/clips/*",
      "${var.archive_bucket_arn}/feedback/*",
      "${var.archive_bucket_arn}/manifests/*",
      "${var.archive_bucket_arn}/snapshots/*",
      "${var.archive_bucket_arn}/tmp/*",
    ]
  }

  statement {
    sid       = "S3ArchiveTmpDelete"
    actions   = ["s3:DeleteObject"]
    resources = ["${var.archive_bucket_arn}/tmp/*"]
  }

  statement {
    sid       = "S3ArchiveList"
    actions   = ["s3:ListBucket"]
    resources = [var.archive_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["alerts/*", "clips/*", "feedback/*", "manifests/*", "snapshots/*", "tmp/*"]
    }
  }

  # Checkpoints (worker/checkpoints.py) and camera leases (worker/leases.py: conditional writes, a scan of
  # the lease items, release on stop).
  statement {
    sid       = "DynamoDBState"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.this.arn]
  }

  statement {
    sid       = "Kms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.video_kms_key_arn, var.alert_kms_key_arn, var.archive_kms_key_arn, aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
