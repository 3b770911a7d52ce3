# The operator console: its Fargate service behind an internal HTTPS load balancer that signs operators
# in with Cognito, the review audit table, the image repository, the key that encrypts them and the
# secret that signs CSRF tokens. The alert history it lists and reviews is the alerts module's table
# (alert_lambda writes it). Roles are in iam.tf.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

# The tasks take traffic from the console ALB only (security group task_from_alb), whose addresses are
# in the VPC: its X-Forwarded-Proto is believed from there (console/settings.py trusts_proxy).
data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  account_id     = data.aws_caller_identity.current.account_id
  region         = data.aws_region.current.region
  partition      = data.aws_partition.current.partition
  name           = "${var.name_prefix}-console"
  container_name = "console"
  container_port = 8080
  log_group_name = "/ecs/${local.name}"
  # cognito: the ALB signs operators in (needs HTTPS out to Cognito and the ALB key service); token: the
  # console checks a login token kept in Secrets Manager (no route out needed; every operator sees every site).
  cognito = var.sign_in == "cognito"

  # What the console reads at start-up (console/env.py holds these names).
  environment = {
    AWS_REGION                      = local.region
    VIGIL_CONSOLE_AUTH              = local.cognito ? "alb" : "token"
    VIGIL_CONSOLE_ALB_ARN           = aws_lb.this.arn
    VIGIL_CONSOLE_SITES_CLAIM       = try(var.cognito.sites_claim, "custom:vigil_sites")
    VIGIL_CONSOLE_GROUP_SITES       = jsonencode(try(var.cognito.group_sites, {}))
    VIGIL_CONSOLE_SUPERVISOR_GROUPS = join(",", try(var.cognito.supervisor_groups, []))
    VIGIL_CONSOLE_TRUSTED_PROXIES   = data.aws_vpc.this.cidr_block
    VIGIL_ALERT_HISTORY_TABLE       = var.alert_history_table_name
    VIGIL_CONSOLE_AUDIT_TABLE       = aws_dynamodb_table.this.name
    VIGIL_STATE_TABLE               = var.state_table_name
    VIGIL_ARCHIVE_BUCKET            = var.archive_bucket_name
  }
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
  description             = "${local.name}: review audit, image repository, logs and signing secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

# --- the review audit (the alert history it reviews is the alerts module's table) ------------------------

resource "aws_dynamodb_table" "this" {
  name                        = "${var.name_prefix}-console-audit"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "alert_id"
  range_key                   = "at" # "<reviewed_at>#<nonce>"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "alert_id"
    type = "S"
  }

  attribute {
    name = "at"
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

# --- CSRF signing secret, shared by every console task -----------------------------------------------

resource "aws_secretsmanager_secret" "signing" {
  #checkov:skip=CKV2_AWS_57:Rotation would sign every open form out; the secret only signs CSRF tokens and is replaced by tainting this resource.
  name                    = "${local.name}/signing-key"
  description             = "Signs the console's CSRF tokens (VIGIL_CONSOLE_SECRET)."
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

ephemeral "aws_secretsmanager_random_password" "signing" {
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "signing" {
  secret_id                = aws_secretsmanager_secret.signing.id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.signing.random_password
  secret_string_wo_version = 1
}

# --- token sign-in (sign_in = "token"): the login token operators open the console with ---------------

resource "aws_secretsmanager_secret" "token" {
  #checkov:skip=CKV2_AWS_57:Rotation would sign every operator out at random; the token is replaced by tainting the version (docs/deploy.md).
  count = local.cognito ? 0 : 1

  name                    = "${local.name}/login-token"
  description             = "The console's login token (VIGIL_CONSOLE_TOKEN): https://<console>/alerts?token=<value>."
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

ephemeral "aws_secretsmanager_random_password" "token" {
  count = local.cognito ? 0 : 1

  password_length     = 32
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "token" {
  count = local.cognito ? 0 : 1

  secret_id                = aws_secretsmanager_secret.token[0].id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.token[0].random_password
  secret_string_wo_version = 1
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

# --- internal load balancer with Cognito sign-in -------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Internal ALB of the console: HTTPS from the operator networks only."
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.operator_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from operators (${each.value})"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the console tasks"
  referenced_security_group_id = aws_security_group.task.id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_vpc_security_group_egress_rule" "alb_to_idp" {
  for_each          = toset(local.cognito ? var.idp_egress_cidrs : [])
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS to Cognito's token and user-info endpoints (sign-in)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_security_group" "task" {
  name        = "${local.name}-task"
  description = "Console tasks: HTTP from the console ALB only; HTTPS to the VPC endpoints and the ALB key service."
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "task_from_alb" {
  security_group_id            = aws_security_group.task.id
  description                  = "From the console ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_vpc_security_group_egress_rule" "task_to_endpoints" {
  security_group_id            = aws_security_group.task.id
  description                  = "AWS APIs through the VPC interface endpoints"
  referenced_security_group_id = var.endpoints_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "task_to_alb_keys" {
  for_each          = toset(local.cognito ? var.idp_egress_cidrs : [])
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to the ALB's public signing keys (public-keys.auth.elb.<region>.amazonaws.com) (${each.value})"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "task_to_gateways" {
  for_each          = var.gateway_prefix_list_ids
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to ${each.key} through its gateway endpoint (tables, archive, image layers)"
  prefix_list_id    = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# The interface endpoints admit the worker only (network module); the console's tasks are let in here.
resource "aws_vpc_security_group_ingress_rule" "endpoints_from_task" {
  security_group_id            = var.endpoints_security_group_id
  description                  = "HTTPS from the console tasks"
  referenced_security_group_id = aws_security_group.task.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:Internal load balancer reachable from the operator networks only; a WAF is optional for the deployer.
  name                       = local.name
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = var.subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = local.name
      enabled = true
    }
  }

  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  name        = local.name
  port        = local.container_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path                = "/healthz"
    matcher             = "200"
    healthy_threshold   = 2
    unhealthy_threshold = 3
    interval            = 15
  }

  tags = var.tags
}

resource "aws_cognito_user_pool_client" "this" {
  count = local.cognito ? 1 : 0

  name                                 = local.name
  user_pool_id                         = var.cognito.user_pool_id
  generate_secret                      = true # the ALB is a confidential client
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "email", "profile"]
  supported_identity_providers         = ["COGNITO"]
  callback_urls                        = ["https://${var.domain_name}/oauth2/idpresponse"]
  prevent_user_existence_errors        = "ENABLED"
}

resource "aws_lb_listener" "this" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  dynamic "default_action" {
    for_each = local.cognito ? [var.cognito] : []
    content {
      type  = "authenticate-cognito"
      order = 1
      authenticate_cognito {
        user_pool_arn              = default_action.value.user_pool_arn
        user_pool_client_id        = aws_cognito_user_pool_client.this[0].id
        user_pool_domain           = default_action.value.user_pool_domain
        on_unauthenticated_request = "authenticate"
        session_timeout            = default_action.value.session_timeout
        scope                      = "openid email profile"
      }
    }
  }

  default_action {
    type             = "forward"
    order            = local.cognito ? 2 : 1
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !local.cognito || var.cognito != null
      error_message = "sign_in = \"cognito\" needs the cognito user pool (cognito = { user_pool_arn, user_pool_id, user_pool_domain })."
    }
  }
}

# --- the console service ---------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
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

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
    essential              = true
    readonlyRootFilesystem = true
    command                = ["python", "-m", "console", "--host", "0.0.0.0", "--port", tostring(local.container_port)]
    portMappings           = [{ containerPort = local.container_port, protocol = "tcp" }]
    linuxParameters        = { initProcessEnabled = true }
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    environment            = [for name in sort(keys(local.environment)) : { name = name, value = local.environment[name] }]
    secrets = concat(
      [{ name = "VIGIL_CONSOLE_SECRET", valueFrom = aws_secretsmanager_secret.signing.arn }],
      [for secret in aws_secretsmanager_secret.token : { name = "VIGIL_CONSOLE_TOKEN", valueFrom = secret.arn }],
    )
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
  cluster                 = var.cluster_arn
  task_definition         = aws_ecs_task_definition.this.arn
  desired_count           = var.desired_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  enable_execute_command  = false
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The listener before the target group takes tasks; the execution role's policy (image pull, logs, the
  # secret) and the secret's value before the first task: ECS injects VIGIL_CONSOLE_SECRET at start and
  # a secret without a version fails the task. The task role's policy before the console calls AWS.
  depends_on = [
    aws_lb_listener.this,
    aws_iam_role_policy.task_exec,
    aws_iam_role_policy.task,
    aws_secretsmanager_secret_version.signing,
    aws_secretsmanager_secret_version.token,
  ]
  tags = var.tags
}
