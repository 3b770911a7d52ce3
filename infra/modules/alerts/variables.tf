variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "stream" {
  description = "The alert Kinesis Data Stream: capacity mode (ON_DEMAND, or PROVISIONED with shard_count shards) and retention in hours."
  type = object({
    mode            = optional(string, "ON_DEMAND")
    shard_count     = optional(number, 1)
    retention_hours = optional(number, 24)
  })
  default = {}
  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream.mode)
    error_message = "stream.mode must be ON_DEMAND or PROVISIONED."
  }
  validation {
    condition     = var.stream.shard_count >= 1
    error_message = "stream.shard_count must be at least 1."
  }
  validation {
    condition     = var.stream.retention_hours >= 24 && var.stream.retention_hours <= 8760
    error_message = "stream.retention_hours must be between 24 and 8760."
  }
}

variable "lambda_zip_path" {
  description = "Path of the alert Lambda's deployment package (built by `make deploy`), relative to the directory terraform runs in."
  type        = string
  default     = "../dist/alert_lambda.zip"
  validation {
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must point to a .zip file."
  }
}

variable "lambda" {
  description = "The alert Lambda: memory (MB), timeout (s), CPU architecture of the built package, log level, reserved concurrency (null, the default: none, the function draws on the account's unreserved pool; a number reserves and caps it, and must be at least the PROVISIONED stream's shard_count x parallelization_factor)."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_s            = optional(number, 60)
    architecture         = optional(string, "x86_64")
    log_level            = optional(string, "INFO")
    reserved_concurrency = optional(number)
  })
  default = {}
  validation {
    condition     = var.lambda.memory_mb >= 128 && var.lambda.memory_mb <= 10240
    error_message = "lambda.memory_mb must be between 128 and 10240."
  }
  validation {
    condition     = var.lambda.timeout_s >= 1 && var.lambda.timeout_s <= 900
    error_message = "lambda.timeout_s must be between 1 and 900."
  }
  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda.architecture)
    error_message = "lambda.architecture must be x86_64 or arm64 (the one the package's wheels were built for)."
  }
  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.lambda.log_level)
    error_message = "lambda.log_level must be DEBUG, INFO, WARNING or ERROR."
  }
  validation {
    condition     = var.lambda.reserved_concurrency == null || (coalesce(var.lambda.reserved_concurrency, 1) >= 1 && coalesce(var.lambda.reserved_concurrency, 1) <= 1000)
    error_message = "lambda.reserved_concurrency must be null (no reservation) or between 1 and 1000."
  }
}

variable "link_expiry_s" {
  description = "Lifetime of the presigned snapshot and clip links in notifications, seconds (VIGIL_LINK_EXPIRY_S). A link signed with the function's temporary credentials stops working when they expire (hours), whatever this says."
  type        = number
  default     = 43200
  validation {
    condition     = var.link_expiry_s >= 60 && var.link_expiry_s <= 604800
    error_message = "link_expiry_s must be between 60 and 604800 (7 days, the SigV4 maximum)."
  }
}

variable "console_url" {
  description = "Base URL of the operator console (VIGIL_CONSOLE_URL): each email links to the alert's page there, which keeps working after the presigned links expire; empty: no link."
  type        = string
  default     = ""
  validation {
    condition     = var.console_url == "" || startswith(var.console_url, "https://")
    error_message = "console_url must be empty or an https:// URL."
  }
}

variable "idempotency_ttl_s" {
  description = "How long an alert id is remembered against duplicate notifications, seconds (VIGIL_IDEMPOTENCY_TTL_S); null means the stream's retention."
  type        = number
  default     = null
  validation {
    condition     = var.idempotency_ttl_s == null || try(var.idempotency_ttl_s >= var.stream.retention_hours * 3600, false)
    error_message = "idempotency_ttl_s must be at least the stream's retention (stream.retention_hours x 3600): a record retried until it expires must still be recognised."
  }
}

variable "site_timezones" {
  description = "IANA time zone per site, e.g. { \"lhr-t5\" = \"Europe/London\" }: notification times are shown in the site's zone (VIGIL_SITE_TIMEZONES); a site not listed gets UTC."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for zone in values(var.site_timezones) : can(regex("^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+)+)$", zone))])
    error_message = "site_timezones values must be IANA time zone names such as Europe/London or America/New_York."
  }
}

variable "event_source" {
  description = "The Kinesis event source mapping: batch size, batching window (s), retries (-1: until the record is maximum_record_age_s old) and record age before a batch goes to the DLQ, parallelization per shard, starting position. The function reports a poison record as done once it is in the DLQ, so only an outage (SNS, DynamoDB) holds a shard back, and the defaults ride out one of up to 6 hours."
  type = object({
    batch_size                = optional(number, 100)
    maximum_batching_window_s = optional(number, 1)
    maximum_retry_attempts    = optional(number, -1)
    maximum_record_age_s      = optional(number, 21600)
    parallelization_factor    = optional(number, 1)
    starting_position         = optional(string, "LATEST")
  })
  default = {}
  validation {
    condition     = var.event_source.batch_size >= 1 && var.event_source.batch_size <= 10000
    error_message = "event_source.batch_size must be between 1 and 10000."
  }
  validation {
    condition     = var.event_source.maximum_batching_window_s >= 0 && var.event_source.maximum_batching_window_s <= 300
    error_message = "event_source.maximum_batching_window_s must be between 0 and 300."
  }
  validation {
    condition     = var.event_source.maximum_retry_attempts >= -1 && var.event_source.maximum_retry_attempts <= 10000
    error_message = "event_source.maximum_retry_attempts must be between -1 (retry until maximum_record_age_s) and 10000."
  }
  validation {
    condition     = var.event_source.maximum_record_age_s >= 60 && var.event_source.maximum_record_age_s <= 604800
    error_message = "event_source.maximum_record_age_s must be between 60 and 604800 (-1, no limit, is not allowed: it bounds the retries)."
  }
  validation {
    condition     = try(var.event_source.maximum_record_age_s <= var.stream.retention_hours * 3600, false)
    error_message = "event_source.maximum_record_age_s must not exceed the stream's retention (stream.retention_hours x 3600): a record retried past it is gone from the stream."
  }
  validation {
    condition     = var.event_source.parallelization_factor >= 1 && var.event_source.parallelization_factor <= 10
    error_message = "event_source.parallelization_factor must be between 1 and 10."
  }
  validation {
    condition     = contains(["LATEST", "TRIM_HORIZON"], var.event_source.starting_position)
    error_message = "event_source.starting_position must be LATEST or TRIM_HORIZON."
  }
}

variable "subscriptions" {
  description = <<-EOT
    Who is notified of alerts: SNS subscriptions to the alert topic. filter_policy (optional) matches the
    message attributes the Lambda sets on each notification: severity, site, camera_id, event_type, and
    zone (only on alerts in a camera zone), e.g. { severity = ["high", "critical"], site = ["lhr-t5"] } or
    { event_type = ["intrusion"], zone = ["loading dock"] }.
  EOT
  type = list(object({
    protocol      = string
    endpoint      = string
    filter_policy = optional(map(list(string)))
  }))
  default = []
  validation {
    condition     = alltrue([for s in var.subscriptions : contains(["email", "email-json", "sms", "https", "sqs", "lambda", "firehose"], s.protocol)])
    error_message = "Subscription protocol must be email, email-json, sms, https, sqs, lambda or firehose (plain http is not allowed)."
  }
  validation {
    condition = alltrue([for s in var.subscriptions : (
      contains(["sqs", "lambda", "firehose"], s.protocol) ? can(regex("^arn:aws[a-z-]*:", s.endpoint)) :
      s.protocol == "https" ? startswith(s.endpoint, "https://") :
      s.protocol == "sms" ? can(regex("^\\+[0-9]{6,15}$", s.endpoint)) :
      can(regex("^[^@\\s]+@[^@\\s]+$", s.endpoint))
    )])
    error_message = "Subscription endpoint must fit its protocol: an ARN for sqs/lambda/firehose, https://... for https, +<digits> for sms, an address for email."
  }
  validation {
    condition     = length(distinct([for s in var.subscriptions : "${s.protocol}:${s.endpoint}"])) == length(var.subscriptions)
    error_message = "Each (protocol, endpoint) pair may be subscribed only once."
  }
  validation {
    condition = alltrue([for s in var.subscriptions : s.filter_policy == null ? true : alltrue([
      for key in keys(s.filter_policy) : contains(["severity", "site", "camera_id", "event_type", "zone"], key)
    ])])
    error_message = "filter_policy keys must be among severity, site, camera_id, event_type, zone (the message attributes the Lambda sets)."
  }
  validation {
    condition = alltrue([for s in var.subscriptions : s.filter_policy == null ? true : alltrue([
      for severity in lookup(s.filter_policy, "severity", []) : contains(["low", "medium", "high", "critical"], severity)
    ])])
    error_message = "filter_policy severity values must be low, medium, high or critical."
  }
}

variable "archive_bucket_arn" {
  description = "ARN of the archive bucket; the Lambda may read snapshots and clips there to presign links."
  type        = string
}

variable "archive_kms_key_arn" {
  description = "ARN of the key of the archive bucket (presigned GETs are made with the Lambda's credentials)."
  type        = string
}

variable "dlq_retention_s" {
  description = "How long failed-batch records stay on the dead-letter queue, in seconds."
  type        = number
  default     = 1209600
  validation {
    condition     = var.dlq_retention_s >= 60 && var.dlq_retention_s <= 1209600
    error_message = "dlq_retention_s must be between 60 and 1209600 (14 days, the SQS maximum)."
  }
}

variable "log_retention_days" {
  description = "Days the Lambda's logs are kept."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "deletion_protection" {
  description = "Protect the idempotency and alert history tables from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource of the module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
