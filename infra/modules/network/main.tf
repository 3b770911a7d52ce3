# Private-only network: two (or more) private subnets, no NAT and no internet gateway. Every AWS API the
# worker needs is reached through a VPC endpoint; the security groups allow HTTPS to those and nothing else.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:The subnets take the first az_count zones by name (slice); a zone AWS adds later gets a later letter and never moves an existing subnet.
  state = "available"
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  azs        = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition
  # /20 subnets from the start of the VPC range: 4096 addresses each, room for many Fargate tasks.
  private_subnet_cidrs = { for index, az in local.azs : az => cidrsubnet(var.vpc_cidr, 20 - tonumber(split("/", var.vpc_cidr)[1]), index) }
  flow_log_group_name  = "/vpc/${var.name_prefix}/flow-logs"
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true # interface endpoints with private DNS need both
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = var.name_prefix })
}

# The default security group of the VPC allows nothing: nothing may be launched into it by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-default-deny" })
}

resource "aws_subnet" "this" {
  for_each = local.private_subnet_cidrs

  vpc_id                  = aws_vpc.this.id
  availability_zone       = each.key
  cidr_block              = each.value
  map_public_ip_on_launch = false
  tags                    = merge(var.tags, { Name = "${var.name_prefix}-private-${each.key}", Tier = "private" })
}

resource "aws_route_table" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-private" })
}

resource "aws_route_table_association" "this" {
  for_each = aws_subnet.this

  subnet_id      = each.value.id
  route_table_id = aws_route_table.this.id
}

# --- security groups --------------------------------------------------------------------------------

resource "aws_security_group" "worker" {
  #checkov:skip=CKV2_AWS_5:Attached in the worker module: the root passes it to the ECS service as security_group_ids (checkov does not follow module outputs).
  name        = "${var.name_prefix}-worker"
  description = "Vigil worker tasks: HTTPS out to the VPC endpoints only."
  vpc_id      = aws_vpc.this.id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-worker" })
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name_prefix}-endpoints"
  description = "Interface VPC endpoints: HTTPS in from the worker tasks."
  vpc_id      = aws_vpc.this.id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-endpoints" })
}

resource "aws_vpc_security_group_egress_rule" "worker_to_endpoints" {
  security_group_id            = aws_security_group.worker.id
  description                  = "HTTPS to the interface endpoints."
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "worker_to_gateways" {
  for_each = aws_vpc_endpoint.gateway

  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to ${each.key} through its gateway endpoint."
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = each.value.prefix_list_id
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the worker tasks."
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.worker.id
}

# --- VPC endpoints (no NAT: these are the only way out) ----------------------------------------------

resource "aws_vpc_endpoint" "interface" {
  for_each = var.interface_endpoint_services

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = [for subnet in aws_subnet.this : subnet.id]
  security_group_ids  = [aws_security_group.endpoints.id]
  tags                = merge(var.tags, { Name = "${var.name_prefix}-${each.key}" })
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = toset(["s3", "dynamodb"])

  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.this.id]
  tags              = merge(var.tags, { Name = "${var.name_prefix}-${each.key}" })
}

# --- flow logs, encrypted with the module's key ------------------------------------------------------

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
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.flow_log_group_name}"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix} network: VPC flow logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-network"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.flow_log_group_name
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name_prefix}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "this" {
  name   = "flow-logs"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.this.arn
  iam_role_arn             = aws_iam_role.this.arn
  max_aggregation_interval = 600
  tags                     = var.tags
}
