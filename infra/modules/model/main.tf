# The detector: a SageMaker model (custom PyTorch handler), its endpoint, and auto scaling on invocations
# per instance. The roles (endpoint execution, training jobs) are in iam.tf.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id    = data.aws_caller_identity.current.account_id
  region        = data.aws_region.current.region
  partition     = data.aws_partition.current.partition
  endpoint_name = "${var.name_prefix}-detector"
  variant_name  = "primary"

  # <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> -> arn:aws:ecr:<region>:<account>:repository/<repository>
  image_parts          = regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/([^:@]+)", var.image_uri)
  training_image_parts = regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/([^:@]+)", coalesce(var.training_image_uri, var.image_uri))
  image_repository_arn = "arn:${local.partition}:ecr:${local.image_parts[1]}:${local.image_parts[0]}:repository/${local.image_parts[2]}"
  training_repository_arn = (
    "arn:${local.partition}:ecr:${local.training_image_parts[1]}:${local.training_image_parts[0]}:repository/${local.training_image_parts[2]}"
  )

  endpoint_log_group_name = "/aws/sagemaker/Endpoints/${local.endpoint_name}"
  training_log_group_name = "/aws/sagemaker/TrainingJobs"

  # Instance families with NVMe instance storage reject a volume KMS key (their storage is encrypted by
  # the hardware); for all others the endpoint's ML storage volume uses this module's key.
  instance_has_local_storage = can(regex("^ml\\.(c5d|c6id|m5d|m6id|r5d|r6id|g4dn|g5|g6|g6e|p3dn|p4d|p4de|p5|p5e|p5en|trn1|trn1n)\\.", var.instance_type))
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
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.endpoint_log_group_name}",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.training_log_group_name}",
      ]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix} model: endpoint storage volume and SageMaker logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-model"
  target_key_id = aws_kms_key.this.key_id
}

# SageMaker would create these log groups itself, unencrypted and kept forever; we create them first.
resource "aws_cloudwatch_log_group" "endpoint" {
  name              = local.endpoint_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "training" {
  count = var.manage_training_log_group ? 1 : 0

  name              = local.training_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_sagemaker_model" "this" {
  name                     = "${var.name_prefix}-detector-${substr(sha256("${var.image_uri}|${var.model_data_url}"), 0, 8)}"
  execution_role_arn       = aws_iam_role.endpoint.arn
  enable_network_isolation = true # the handler needs no network: the artifact is self-contained

  primary_container {
    image          = var.image_uri
    model_data_url = var.model_data_url
    environment    = var.container_environment
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.endpoint] # the role must be able to pull before the model is created

  lifecycle {
    create_before_destroy = true # a new image or artifact is a new model; the endpoint switches over
    precondition {
      condition     = startswith(var.model_data_url, "s3://${var.archive_bucket_name}/models/")
      error_message = "model_data_url must be under s3://<archive bucket>/models/: the endpoint role may read nothing else."
    }
  }
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  name_prefix = "${var.name_prefix}-detector-"
  kms_key_arn = local.instance_has_local_storage ? null : aws_kms_key.this.arn

  production_variants {
    variant_name           = local.variant_name
    model_name             = aws_sagemaker_model.this.name
    instance_type          = var.instance_type
    initial_instance_count = var.autoscaling.min_capacity
  }

  dynamic "data_capture_config" {
    for_each = var.data_capture.enabled ? [var.data_capture] : []
    content {
      enable_capture              = true
      initial_sampling_percentage = data_capture_config.value.sampling_percentage
      destination_s3_uri          = "s3://${var.archive_bucket_name}/data-capture"
      kms_key_id                  = var.archive_kms_key_arn
      capture_options {
        capture_mode = "Input"
      }
      capture_options {
        capture_mode = "Output"
      }
    }
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true # the endpoint moves to the new configuration, then the old one goes
  }
}

resource "aws_sagemaker_endpoint" "this" {
  name                 = local.endpoint_name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name
  tags                 = var.tags

  depends_on = [aws_cloudwatch_log_group.endpoint]
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "sagemaker"
  resource_id        = "endpoint/${aws_sagemaker_endpoint.this.name}/variant/${local.variant_name}"
  scalable_dimension = "sagemaker:variant:DesiredInstanceCount"
  min_capacity       = var.autoscaling.min_capacity
  max_capacity       = var.autoscaling.max_capacity
}

resource "aws_appautoscaling_policy" "this" {
  name               = "${local.endpoint_name}-invocations-per-instance"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target_invocations_per_instance
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown_s
    scale_out_cooldown = var.autoscaling.scale_out_cooldown_s
    predefined_metric_specification {
      predefined_metric_type = "SageMakerVariantInvocationsPerInstance"
    }
  }
}
