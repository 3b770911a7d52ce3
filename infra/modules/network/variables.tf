variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; each private subnet is a /20 carved from it."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be a valid IPv4 CIDR block of size /20 or larger."
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

variable "interface_endpoint_services" {
  description = "AWS services reached through interface VPC endpoints (the suffix of com.amazonaws.<region>.<service>). There is no NAT: a service missing here is unreachable from the private subnets."
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
