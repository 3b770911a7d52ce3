variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; each private subnet is a /20 from its start, the NAT gateway's public subnets /24s from its last /20."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "vpc_cidr must be a valid IPv4 CIDR block of size /18 or larger: up to four /20 private subnets and the /20 the public subnets come from."
  }
}

variable "az_count" {
  description = "Number of availability zones that get a private subnet (and an endpoint ENI)."
  type        = number
  default     = 2
  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4: one AZ is not highly available."
  }
}

variable "excluded_zone_ids" {
  description = "Availability zone IDs never used (by ID: names differ per account). use1-az3 has no Fargate capacity."
  type        = list(string)
  default     = ["use1-az3"]
}

variable "egress" {
  description = "How the console's sign-in reaches the internet: `nat_gateway` (one NAT gateway, about $33/month plus $0.045/GB in us-east-1), `transit_gateway` (default route to transit_gateway_id: a central egress VPC or proxy the operator runs; the attachment is about $36/month plus $0.02/GB) or `none` (no route out: the console signs operators in with a token, no Cognito)."
  type = object({
    mode               = optional(string, "nat_gateway")
    transit_gateway_id = optional(string)
  })
  default = {}
  validation {
    condition     = contains(["nat_gateway", "transit_gateway", "none"], var.egress.mode)
    error_message = "egress.mode must be nat_gateway, transit_gateway or none."
  }
  validation {
    condition     = (var.egress.mode == "transit_gateway") == can(regex("^tgw-[0-9a-f]+$", var.egress.transit_gateway_id))
    error_message = "egress.transit_gateway_id (tgw-...) is required with mode transit_gateway, and only then."
  }
}

variable "interface_endpoint_services" {
  description = "AWS services reached through interface VPC endpoints (the suffix of com.amazonaws.<region>.<service>). A service missing here is unreachable from the private subnets (the optional egress is for the console's sign-in only)."
  type        = set(string)
  default     = ["kinesisvideo", "kinesis-streams", "sagemaker.runtime", "ecr.api", "ecr.dkr", "logs", "sts", "secretsmanager"]
  validation {
    condition     = length(setintersection(var.interface_endpoint_services, ["ecr.api", "ecr.dkr", "logs", "secretsmanager"])) == 4
    error_message = "interface_endpoint_services must include ecr.api, ecr.dkr, logs and secretsmanager: Fargate cannot pull images, ship logs or inject the console's secret without them."
  }
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
