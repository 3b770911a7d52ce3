variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "ops_emails" {
  description = "E-mail addresses subscribed to the operations topic (alarm notifications; each must confirm)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for email in var.ops_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", email))])
    error_message = "ops_emails must hold e-mail addresses."
  }
}

variable "alert_function_name" {
  description = "Name of the alert Lambda (Errors and IteratorAge alarms)."
  type        = string
}

variable "alert_dlq_name" {
  description = "Name of the alert dead-letter queue (depth alarm)."
  type        = string
}

variable "alert_stream_name" {
  description = "Name of the alert Kinesis Data Stream (dashboard)."
  type        = string
}

variable "endpoint_name" {
  description = "Name of the SageMaker endpoint (5XX and ModelLatency alarms)."
  type        = string
}

variable "endpoint_variant_name" {
  description = "Name of the endpoint's production variant (dimension of the SageMaker metrics)."
  type        = string
}

variable "cluster_name" {
  description = "Name of the worker's ECS cluster (dashboard)."
  type        = string
}

variable "service_name" {
  description = "Name of the worker's ECS service (dashboard)."
  type        = string
}

variable "camera_ids" {
  description = "Camera names: one frame-lag alarm each on Vigil/FrameLagSeconds with dimension CameraId."
  type        = list(string)
  validation {
    condition     = length(var.camera_ids) > 0
    error_message = "camera_ids must hold at least one camera."
  }
}

variable "thresholds" {
  description = <<-EOT
    Alarm thresholds: lambda_errors (errors per 5 min), iterator_age_ms (alert Lambda behind the stream),
    dlq_messages (visible messages), endpoint_5xx (per 5 min), model_latency_p90_ms (endpoint ModelLatency,
    p90), frame_lag_s (worker: capture time to analysed, max per minute, 3 minutes running).
  EOT
  type = object({
    lambda_errors        = optional(number, 0)
    iterator_age_ms      = optional(number, 60000)
    dlq_messages         = optional(number, 0)
    endpoint_5xx         = optional(number, 5)
    model_latency_p90_ms = optional(number, 500)
    frame_lag_s          = optional(number, 10)
  })
  default = {}
  validation {
    condition     = alltrue([for value in values(var.thresholds) : value >= 0])
    error_message = "Alarm thresholds must not be negative."
  }
  validation {
    condition     = var.thresholds.frame_lag_s > 0 && var.thresholds.model_latency_p90_ms > 0 && var.thresholds.iterator_age_ms > 0
    error_message = "frame_lag_s, model_latency_p90_ms and iterator_age_ms must be positive."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
