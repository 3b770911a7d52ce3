# Two roles SageMaker assumes: the endpoint's execution role (reads the model, pulls the image, writes
# logs) and the training-job role (reads clips and manifests, writes models and checkpoints).

data "aws_iam_policy_document" "sagemaker_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- endpoint execution role ---------------------------------------------------------------------

resource "aws_iam_role" "endpoint" {
  name               = "${var.name_prefix}-sagemaker-endpoint"
  description        = "SageMaker execution role of the ${local.endpoint_name} endpoint."
  assume_role_policy = data.aws_iam_policy_document.sagemaker_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "endpoint" {
  statement {
    sid       = "S3ModelArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${var.archive_bucket_arn}/models/*"]
  }

  dynamic "statement" {
    for_each = var.data_capture.enabled ? ["S3DataCapture"] : []
    content {
      sid       = statement.value
      actions   = ["s3:PutObject"]
      resources = ["${var.archive_bucket_arn}/data-capture/*"]
    }
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [local.image_repository_arn]
  }

  statement {
    sid       = "EcrAuthorization"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = [aws_cloudwatch_log_group.endpoint.arn, "${aws_cloudwatch_log_group.endpoint.arn}:*"]
  }

  # SageMaker hosting publishes the instance metrics (CPU, memory, disk, GPU) with the execution role.
  statement {
    sid       = "CloudWatchMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource-level permissions: the namespace condition scopes it
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/Endpoints"]
    }
  }

  statement {
    sid       = "KmsArchiveRead"
    actions   = ["kms:Decrypt"]
    resources = [var.archive_kms_key_arn]
  }

  dynamic "statement" {
    for_each = var.data_capture.enabled ? ["KmsDataCapture"] : []
    content {
      sid       = statement.value
      actions   = ["kms:GenerateDataKey"]
      resources = [var.archive_kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "endpoint" {
  name   = "endpoint"
  role   = aws_iam_role.endpoint.id
  policy = data.aws_iam_policy_document.endpoint.json
}

# --- training-job role ---------------------------------------------------------------------------

resource "aws_iam_role" "training" {
  name               = "${var.name_prefix}-sagemaker-training"
  description        = "Role of the Vigil SageMaker training jobs."
  assume_role_policy = data.aws_iam_policy_document.sagemaker_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "training" {
  statement {
    sid       = "S3ListTrainingData"
    actions   = ["s3:ListBucket"]
    resources = [var.archive_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["clips/*", "alerts/*", "manifests/*", "checkpoints/*"]
    }
  }

  statement {
    sid     = "S3ReadTrainingData"
    actions = ["s3:GetObject"]
    resources = [
      "${var.archive_bucket_arn}/clips/*",
      "${var.archive_bucket_arn}/alerts/*",
      "${var.archive_bucket_arn}/manifests/*",
      "${var.archive_bucket_arn}/checkpoints/*",
    ]
  }

  statement {
    sid     = "S3WriteModels"
    actions = ["s3:PutObject"]
    resources = [
      "${var.archive_bucket_arn}/models/*",
      "${var.archive_bucket_arn}/checkpoints/*",
    ]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [local.training_repository_arn]
  }

  statement {
    sid       = "EcrAuthorization"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid     = "Logs"
    actions = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.training_log_group_name}:*",
    ]
  }

  # SageMaker training publishes the instance metrics and the metric definitions' values with the job's role.
  statement {
    sid       = "CloudWatchMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource-level permissions: the namespace condition scopes it
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/TrainingJobs"]
    }
  }

  statement {
    sid       = "KmsArchive"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.archive_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "training" {
  name   = "training"
  role   = aws_iam_role.training.id
  policy = data.aws_iam_policy_document.training.json
}
