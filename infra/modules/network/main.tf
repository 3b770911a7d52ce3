# Private network: two (or more) private subnets. Every AWS API the worker and the console call is reached
# through a VPC endpoint; the security groups allow HTTPS to those and nothing else. The one way out to
# the internet is optional (var.egress): the console's Cognito sign-in (the ALB calls Cognito's public
# token endpoints) and its fetch of the ALB's public signing keys need it; nothing else routes through it.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Zones are taken by name from those that offer every interface endpoint service (sorted, sliced); a zone AWS adds later never moves an existing subnet.
  state = "available"
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"] # availability zones only: no Local Zones or Wavelength Zones
  }
}

# Each interface endpoint service, looked up at plan time: a service this region does not offer (the
# kinesisvideo endpoint exists only in some regions) fails the plan with its name, not the apply; and
# each lists the zones it is offered in, which not every zone of every account is.
data "aws_vpc_endpoint_service" "interface" {
  for_each = var.interface_endpoint_services

  service_name = "com.amazonaws.${local.region}.${each.key}"
  service_type = "Interface"
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition

  # Zones where every interface endpoint service is offered (and Fargate runs: excluded_zone_ids), by
  # name; the first az_count of them get a private subnet.
  endpoint_zones = setintersection([for service in data.aws_vpc_endpoint_service.interface : service.availability_zones]...)
  usable_zones = sort([
    for index, name in data.aws_availability_zones.available.names : name
    if contains(local.endpoint_zones, name) && !contains(var.excluded_zone_ids, data.aws_availability_zones.available.zone_ids[index])
  ])
  azs = slice(local.usable_zones, 0, min(var.az_count, length(local.usable_zones)))

  # /20 private subnets from the start of the VPC range (4096 addresses each, room for many Fargate
  # tasks); the public subnets of the NAT gateway are /24s from the last /20 of the range.
  newbits              = 20 - tonumber(split("/", var.vpc_cidr)[1])
  private_subnet_cidrs = { for index, az in local.azs : az => cidrsubnet(var.vpc_cidr, local.newbits, index) }
  public_subnet_cidrs = var.egress.mode == "nat_gateway" ? {
    for index, az in local.azs : az => cidrsubnet(cidrsubnet(var.vpc_cidr, local.newbits, pow(2, local.newbits) - 1), 4, index)
  } : {}
  flow_log_group_name = "/vpc/${var.name_prefix}/flow-logs"
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true # interface endpoints with private DNS need both
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = var.name_prefix })

  lifecycle {
    precondition {
      condition     = length(local.azs) == var.az_count
      error_message = "Fewer than az_count availability zones of this account offer every interface endpoint service (${join(", ", sort(var.interface_endpoint_services))}) outside excluded_zone_ids: lower az_count or choose another region."
    }
    precondition {
      condition     = var.egress.mode != "nat_gateway" || pow(2, local.newbits) > var.az_count
      error_message = "vpc_cidr has room for az_count /20 private subnets but not for the NAT gateway's public subnets (its last /20): use a larger range (/17 for four zones)."
    }
  }
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

# --- egress for the console's sign-in (var.egress.mode) ------------------------------------------------
# nat_gateway: one NAT gateway in a public subnet, the private route table's default route to it. Only
#   the console's load balancer and tasks have a security group rule that lets HTTPS out (to
#   idp_egress_cidrs); the worker's group still reaches the endpoints only.
# transit_gateway: the default route goes to the operator's transit gateway (a central egress VPC,
#   firewall or proxy); the VPC is attached to it here.
# none: no route out; the console signs operators in with a token instead of Cognito.

resource "aws_subnet" "public" {
  for_each = local.public_subnet_cidrs

  vpc_id                  = aws_vpc.this.id
  availability_zone       = each.key
  cidr_block              = each.value
  map_public_ip_on_launch = false # only the NAT gateway lives here, with its Elastic IP
  tags                    = merge(var.tags, { Name = "${var.name_prefix}-public-${each.key}", Tier = "public" })
}

resource "aws_internet_gateway" "this" {
  count = var.egress.mode == "nat_gateway" ? 1 : 0

  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = var.name_prefix })
}

resource "aws_route_table" "public" {
  count = var.egress.mode == "nat_gateway" ? 1 : 0

  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name_prefix}-public" })
}

resource "aws_route" "public_internet" {
  count = var.egress.mode == "nat_gateway" ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_eip" "this" {
  count = var.egress.mode == "nat_gateway" ? 1 : 0

  domain = "vpc"
  tags   = merge(var.tags, { Name = "${var.name_prefix}-nat" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = var.egress.mode == "nat_gateway" ? 1 : 0

  allocation_id = aws_eip.this[0].id
  subnet_id     = aws_subnet.public[local.azs[0]].id
  tags          = merge(var.tags, { Name = var.name_prefix })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route" "private_nat" {
  count = var.egress.mode == "nat_gateway" ? 1 : 0

  route_table_id         = aws_route_table.this.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

resource "aws_ec2_transit_gateway_vpc_attachment" "this" {
  count = var.egress.mode == "transit_gateway" ? 1 : 0

  transit_gateway_id = var.egress.transit_gateway_id
  vpc_id             = aws_vpc.this.id
  subnet_ids         = [for subnet in aws_subnet.this : subnet.id]
  tags               = merge(var.tags, { Name = var.name_prefix })
}

resource "aws_route" "private_transit_gateway" {
  count = var.egress.mode == "transit_gateway" ? 1 : 0

  route_table_id         = aws_route_table.this.id
  destination_cidr_block = "0.0.0.0/0"
  transit_gateway_id     = aws_ec2_transit_gateway_vpc_attachment.this[0].transit_gateway_id
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

# --- VPC endpoints (the only way to AWS APIs; the optional egress above is for the console's sign-in) ----

resource "aws_vpc_endpoint" "interface" {
  for_each = var.interface_endpoint_services

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = [for az, subnet in aws_subnet.this : subnet.id if contains(data.aws_vpc_endpoint_service.interface[each.key].availability_zones, az)]
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
