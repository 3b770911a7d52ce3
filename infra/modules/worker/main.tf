# The worker: its image repository, the ECS cluster and Fargate service in the private subnets, the
# DynamoDB table of checkpoints and camera leases, logs, and CPU auto scaling. Roles are in iam.tf.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id     = data.aws_caller_identity.current.account_id
  region         = data.aws_region.current.region
  partition      = data.aws_partition.current.partition
  name           = "${var.name_prefix}-worker"
  container_name = "worker"
  log_group_name = "/ecs/${local.name}"
  # The lag metric the worker writes as CloudWatch EMF on stdout (the awslogs driver delivers it).
  # The fleet-wide series the metric filter below derives from it has no dimension.
  lag_metric = { namespace = "Vigil", name = "FrameLagSeconds", dimension = "CameraId", fleet_name = "FleetFrameLagSeconds" }

  # What the worker reads at start-up (one constants module in worker/ holds these names).
  environment = merge(var.extra_environment, {
    AWS_REGION                = local.region
    VIGIL_ARCHIVE_BUCKET      = var.archive_bucket_name
    VIGIL_ALERT_STREAM        = var.alert_stream_name
    VIGIL_STATE_TABLE         = aws_dynamodb_table.this.name
    VIGIL_ENDPOINT_NAME       = var.endpoint_name
    VIGIL_CAMERAS             = jsonencode({ for name, camera in var.camera_streams : name => { site = camera.site, stream_name = camera.stream_name } })
    VIGIL_FRAME_SAMPLE_FPS    = tostring(var.frame_sample_fps)
    VIGIL_FLEET_BATCH_ENABLED = tostring(var.fleet_batch.enabled)
    VIGIL_FLEET_BATCH_MAX     = tostring(var.fleet_batch.max_batch)
    VIGIL_FLEET_BATCH_WAIT_MS = tostring(var.fleet_batch.max_wait_ms)
  })
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
  description             = "${local.name}: image repository, logs and state table"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

# --- image repository ------------------------------------------------------------------------------

resource "aws_ecr_repository" "this" {
  name                 = local.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = !var.deletion_protection # destroy takes the images along only where the tables may go too

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the ${var.ecr_keep_images} most recent images."
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.ecr_keep_images }
      action       = { type = "expire" }
    }]
  })
}

# --- state: checkpoints and camera leases ----------------------------------------------------------

resource "aws_dynamodb_table" "this" {
  name                        = "${var.name_prefix}-state"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "id"
    type = "S"
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

# --- camera scenes: seeded once, then the operators' ---------------------------------------------------
# One item per camera (contracts/camera_scene_item.py): the worker re-reads it every heartbeat
# (worker/live_scene.py). Terraform writes revision 1 at creation and never again: operators change the
# scene in the console or with `python -m worker.scene_cli set`, and the next apply must not undo that.

resource "aws_dynamodb_table_item" "this" {
  for_each   = var.camera_scenes
  table_name = aws_dynamodb_table.this.name
  hash_key   = aws_dynamodb_table.this.hash_key

  item = jsonencode({
    id             = { S = "camera-scene#${each.key}" }
    schema_version = { S = "1" }
    camera_id      = { S = each.key }
    scene          = { S = jsonencode(jsondecode(each.value)) }
    revision       = { N = "1" }
    updated_at     = { S = timestamp() }
    updated_by     = { S = "terraform" }
  })

  lifecycle {
    ignore_changes = [item]
  }
}

# --- cluster, task definition, service --------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name_prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_task_definition" "this" {
  family                   = local.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.task_exec.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Scratch space for clip cutting; the root filesystem is read-only.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
    essential              = true
    readonlyRootFilesystem = true
    stopTimeout            = 60 # SIGTERM sets the stop event; the worker flushes alerts and checkpoints
    linuxParameters        = { initProcessEnabled = true }
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    environment            = [for name in sort(keys(local.environment)) : { name = name, value = local.environment[name] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = local.region
        awslogs-stream-prefix = local.container_name
      }
    }
  }])

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name                    = local.name
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.this.arn
  desired_count           = var.autoscaling.min_capacity
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  enable_execute_command  = false
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  # The task definition names the roles, not their policies: without these the first tasks can start
  # before the execution role may pull the image or write logs (and before the task role may read its
  # streams), fail, and trip the circuit breaker on day one.
  depends_on = [aws_iam_role_policy.task_exec, aws_iam_role_policy.task]

  lifecycle {
    ignore_changes = [desired_count] # owned by auto scaling after creation
  }
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.autoscaling.min_capacity
  max_capacity       = var.autoscaling.max_capacity
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${local.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target_cpu_percent
    scale_in_cooldown  = 300 # scaling in moves camera leases: do it slowly
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# The worker's own lag: seconds from a frame's capture to its analysis. The worker writes it per camera as
# EMF (Vigil / FrameLagSeconds / CameraId). A target-tracking policy with one metric query per camera
# grows with the fleet until CloudWatch refuses it (metric math over at most a handful of queries), so
# this metric filter turns every camera's EMF line into one fleet-wide series instead, and the policy
# tracks its Maximum: the worst camera, with one query at any fleet size.
resource "aws_cloudwatch_log_metric_filter" "this" {
  name           = "${local.name}-fleet-frame-lag"
  log_group_name = aws_cloudwatch_log_group.this.name
  pattern        = "{ $.${local.lag_metric.name}[0] >= 0 }" # EMF values are arrays of one
  metric_transformation {
    namespace = local.lag_metric.namespace
    name      = local.lag_metric.fleet_name
    value     = "$.${local.lag_metric.name}[0]"
    unit      = "Seconds"
  }
}

resource "aws_appautoscaling_policy" "lag" {
  name               = "${local.name}-frame-lag"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target_frame_lag_s
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      namespace   = aws_cloudwatch_log_metric_filter.this.metric_transformation[0].namespace
      metric_name = aws_cloudwatch_log_metric_filter.this.metric_transformation[0].name
      statistic   = "Maximum" # the worst camera
      unit        = "Seconds"
    }
  }
}
