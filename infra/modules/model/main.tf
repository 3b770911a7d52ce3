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
  # the hardware); for all others the endpoint's ML storage volume uses this module's key. The "d"
  # families (c5d, c6gd, c6id, m5d, m6gd, m6id, m6idn, r5d, r6gd, r6id, c7gd, m7gd, r7gd, r8gd, g4dn,
  # p3dn, p4d, x2iedn ...) by their name, the accelerated families with NVMe by name.
  instance_has_local_storage = can(regex(
    "^ml\\.([a-z]+[0-9]+[a-z]*dn?|g5|g6|g6e|gr6|p4de|p5|p5e|p5en|p6-b200|p6e-gb200|trn1|trn1n|trn2)\\.", var.instance_type
  ))

  # Every argument of a SageMaker model forces a new model (there is no UpdateModel), and the model is
  # create_before_destroy: its name must change whenever any of them does, or the new model collides
  # with the old one's name. The name hashes all of them, and the resource reads them from here only.
  model_identity = {
    image                    = var.image_uri
    model_data_url           = var.model_data_url
    environment              = var.container_environment
    execution_role_arn       = aws_iam_role.endpoint.arn
    enable_network_isolation = true # the handler needs no network: the artifact is self-contained
  }
  model_name = "${var.name_prefix}-detector-${substr(sha256(jsonencode(local.model_identity)), 0, 8)}"

  # Each roll-out (a new endpoint configuration) starts the variant at its configuration's instance count,
  # not at what auto scaling had reached: start at max_capacity unless told otherwise, and let auto
  # scaling scale in afterwards (a few minutes of extra instances instead of an overloaded endpoint).
  rollout_instance_count = coalesce(var.autoscaling.rollout_instance_count, var.autoscaling.max_capacity)
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
  name                     = local.model_name
  execution_role_arn       = local.model_identity.execution_role_arn
  enable_network_isolation = local.model_identity.enable_network_isolation

  primary_container {
    image          = local.model_identity.image
    model_data_url = local.model_identity.model_data_url
    environment    = local.model_identity.environment
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.endpoint] # the role must be able to pull before the model is created

  lifecycle {
    create_before_destroy = true # a new image, artifact, environment or role is a new model (new name); the endpoint switches over
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
    initial_instance_count = local.rollout_instance_count
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

# SageMaker refuses UpdateEndpoint when it changes the instance type of a variant that is registered with
# Application Auto Scaling. A new instance type replaces this holder, which replaces the scalable target
# (and its policy): Terraform deregisters them before it updates the endpoint (a dependent's destroy runs
# before its dependency's update) and registers them again afterwards.
resource "terraform_data" "this" {
  input = var.instance_type
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "sagemaker"
  resource_id        = "endpoint/${aws_sagemaker_endpoint.this.name}/variant/${local.variant_name}"
  scalable_dimension = "sagemaker:variant:DesiredInstanceCount"
  min_capacity       = var.autoscaling.min_capacity
  max_capacity       = var.autoscaling.max_capacity

  lifecycle {
    replace_triggered_by = [terraform_data.this] # the instance type
  }
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
