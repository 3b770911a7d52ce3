variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the console's load balancer and tasks (the network module's vpc_id)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the internal load balancer and the console tasks (at least two zones)."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must hold at least two subnets (an ALB spans two zones)."
  }
}

variable "operator_cidrs" {
  description = "Networks operators reach the internal load balancer from (VPN, office, peered VPCs); HTTPS only."
  type        = list(string)
  validation {
    condition     = length(var.operator_cidrs) > 0 && alltrue([for cidr in var.operator_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "operator_cidrs must be valid CIDR blocks, and never 0.0.0.0/0: the console is internal."
  }
}

variable "endpoints_security_group_id" {
  description = "Security group of the VPC interface endpoints (network module); the tasks reach AWS APIs through them."
  type        = string
}

variable "idp_egress_cidrs" {
  description = "Where HTTPS may go outside the VPC: the load balancer to Cognito's token and user-info endpoints, the tasks to the ALB's public signing keys (public-keys.auth.elb.<region>.amazonaws.com). An egress proxy or NAT range; the subnets need a route to it (the network module has no NAT)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "cluster_arn" {
  description = "ECS cluster the console service runs in (the worker's cluster)."
  type        = string
}

variable "domain_name" {
  description = "DNS name operators open (a record in a private zone pointing at the load balancer); the certificate must cover it."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", var.domain_name))
    error_message = "domain_name must be a lowercase DNS name, e.g. console.vigil.internal."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the console's HTTPS listener."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "sign_in" {
  description = "How operators sign in: `cognito` (the ALB's Cognito sign-in; the subnets need a route to the internet for Cognito's endpoints and the ALB's public keys) or `token` (a login token kept in Secrets Manager, no route out; every operator sees every site)."
  type        = string
  default     = "cognito"
  validation {
    condition     = contains(["cognito", "token"], var.sign_in)
    error_message = "sign_in must be cognito or token."
  }
}

variable "cognito" {
  description = "The Cognito user pool operators sign in with (sign_in = cognito; null otherwise): its ARN and id, and its hosted-UI domain (prefix). `sites_claim` is the user attribute listing an operator's sites (comma-separated or *); `group_sites` maps Cognito groups to sites; members of `supervisor_groups` also edit camera scenes (zones, privacy masks, arming schedule)."
  type = object({
    user_pool_arn     = string
    user_pool_id      = string
    user_pool_domain  = string
    sites_claim       = optional(string, "custom:vigil_sites")
    group_sites       = optional(map(list(string)), {})
    supervisor_groups = optional(list(string), [])
    session_timeout   = optional(number, 43200)
  })
  default = null
  validation {
    condition     = var.cognito == null || try(alltrue([for group in var.cognito.supervisor_groups : can(regex("^[^,\\s]+$", group))]), false)
    error_message = "cognito.supervisor_groups are Cognito group names (no commas or spaces)."
  }
  validation {
    condition     = var.cognito == null || try(var.cognito.session_timeout >= 300 && var.cognito.session_timeout <= 604800, false)
    error_message = "cognito.session_timeout must be between 300 s and 7 days."
  }
}

variable "archive_bucket_name" {
  description = "Archive bucket: snapshots and clips the console links to, feedback labels it writes (VIGIL_ARCHIVE_BUCKET)."
  type        = string
}

variable "archive_bucket_arn" {
  description = "ARN of the archive bucket; the task role's S3 statements are scoped to prefixes under it."
  type        = string
}

variable "archive_kms_key_arn" {
  description = "ARN of the key that encrypts the archive bucket."
  type        = string
}

variable "alert_history_table_name" {
  description = "The alert history table alert_lambda writes (alerts module; VIGIL_ALERT_HISTORY_TABLE)."
  type        = string
}

variable "alert_history_table_arn" {
  description = "ARN of the alert history table: the console queries it and its indexes and records reviews on it."
  type        = string
}

variable "alert_history_kms_key_arn" {
  description = "ARN of the key that encrypts the alert history table (the alerts module's key)."
  type        = string
}

variable "gateway_prefix_list_ids" {
  description = "Prefix lists of the S3 and DynamoDB gateway endpoints by service (network module): the tasks' HTTPS egress to the tables, the archive and the image layers."
  type        = map(string)
}

variable "state_table_name" {
  description = "The worker's state table (camera status and checkpoint items; VIGIL_STATE_TABLE)."
  type        = string
}

variable "state_table_arn" {
  description = "ARN of the worker's state table; the console may only Scan it."
  type        = string
}

variable "state_kms_key_arn" {
  description = "ARN of the key that encrypts the state table (the worker module's key)."
  type        = string
}

variable "access_logs_bucket" {
  description = "S3 bucket for the load balancer's access logs (null: none)."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag of the console image in the module's ECR repository (tags are immutable: use the git commit, never \"latest\")."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid Docker tag other than \"latest\" (the repository's tags are immutable)."
  }
}

variable "cpu" {
  description = "Fargate CPU units per console task."
  type        = number
  default     = 256
  validation {
    condition     = contains([256, 512, 1024], var.cpu)
    error_message = "cpu must be 256, 512 or 1024."
  }
}

variable "memory" {
  description = "Fargate memory per console task, MiB; must be a size Fargate offers for the chosen cpu."
  type        = number
  default     = 512
  validation {
    condition = anytrue([
      for size in [
        { cpu = 256, sizes = [512, 1024, 2048] },
        { cpu = 512, sizes = [1024, 2048, 3072, 4096] },
        { cpu = 1024, sizes = [2048, 3072, 4096, 5120, 6144, 7168, 8192] },
      ] : size.cpu == var.cpu && contains(size.sizes, var.memory)
    ])
    error_message = "memory must be a Fargate size for the cpu: cpu 256: 512, 1024 or 2048; cpu 512: 1024-4096 in steps of 1024; cpu 1024: 2048-8192 in steps of 1024."
  }
}

variable "desired_count" {
  description = "Console tasks behind the load balancer."
  type        = number
  default     = 2
  validation {
    condition     = var.desired_count >= 1 && var.desired_count <= 10
    error_message = "desired_count must be between 1 and 10."
  }
}

variable "log_retention_days" {
  description = "Days the console's logs are kept."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "deletion_protection" {
  description = "Protect the audit table and the load balancer from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource of the module."
  type        = map(string)
  default     = {}
}
