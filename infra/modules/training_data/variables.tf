variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "bucket_name" {
  description = "Name of the archive bucket; null means \"<name_prefix>-archive-<account id>-<region>\". The access-log bucket gets the same name with \"-logs\" appended."
  type        = string
  default     = null
  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,56}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name of at most 58 characters (\"-logs\" is appended for the log bucket)."
  }
}

variable "lifecycle_days" {
  description = <<-EOT
    Archive lifecycle, in days after an object is written:
    clip_transition / clip_expiration: normal footage under clips/ moves to clip_storage_class, then is deleted;
    alert_clip_transition / alert_clip_expiration: alert clips under alerts/ (kept longer: evidence and training positives);
    snapshot_expiration: alert JPEGs under snapshots/; noncurrent_version_expiration: overwritten or deleted versions;
    access_log_expiration: the S3 access logs.
  EOT
  type = object({
    clip_transition               = optional(number, 30)
    clip_expiration               = optional(number, 90)
    alert_clip_transition         = optional(number, 30)
    alert_clip_expiration         = optional(number, 730)
    snapshot_expiration           = optional(number, 90)
    noncurrent_version_expiration = optional(number, 30)
    access_log_expiration         = optional(number, 365)
  })
  default = {}
  validation {
    condition     = alltrue([for days in values(var.lifecycle_days) : days >= 1])
    error_message = "Every lifecycle_days value must be at least 1."
  }
  validation {
    condition     = var.lifecycle_days.clip_expiration > var.lifecycle_days.clip_transition && var.lifecycle_days.alert_clip_expiration > var.lifecycle_days.alert_clip_transition
    error_message = "Clips must expire after they transition (clip_expiration > clip_transition, alert_clip_expiration > alert_clip_transition)."
  }
  validation {
    condition     = var.lifecycle_days.alert_clip_expiration >= var.lifecycle_days.clip_expiration
    error_message = "alert_clip_expiration must be at least clip_expiration: alert clips are kept longer than normal footage."
  }
}

variable "clip_storage_class" {
  description = "Storage class clips move to after their transition days."
  type        = string
  default     = "STANDARD_IA"
  validation {
    condition     = contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"], var.clip_storage_class)
    error_message = "clip_storage_class must be STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING or GLACIER_IR (training reads clips back, so no archive tier that needs a restore)."
  }
  validation {
    condition     = !contains(["STANDARD_IA", "ONEZONE_IA"], var.clip_storage_class) || (var.lifecycle_days.clip_transition >= 30 && var.lifecycle_days.alert_clip_transition >= 30)
    error_message = "S3 moves objects to STANDARD_IA or ONEZONE_IA only after 30 days: clip_transition and alert_clip_transition must be >= 30 for those classes."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets. Keep false outside throw-away environments."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of the module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
