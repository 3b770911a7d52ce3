variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "cameras" {
  description = "Cameras by name: one Kinesis video stream each. retention_hours is how long KVS keeps the media (the archiver reads it back from there), media_type the codec the camera sends."
  type = map(object({
    site            = string
    retention_hours = optional(number, 24)
    media_type      = optional(string, "video/h264")
  }))
  validation {
    condition     = length(var.cameras) > 0 && alltrue([for name in keys(var.cameras) : can(regex("^[a-zA-Z0-9_.-]{1,64}$", name))])
    error_message = "cameras must name at least one camera; names are 1-64 characters of letters, digits, '_', '.' or '-'."
  }
  validation {
    condition     = alltrue([for camera in values(var.cameras) : camera.retention_hours >= 24 && camera.retention_hours <= 87600])
    error_message = "Every camera's retention_hours must be between 24 and 87600: the archiver cuts clips from KVS after the fact and needs at least a day."
  }
  validation {
    condition     = alltrue([for camera in values(var.cameras) : contains(["video/h264", "video/h265"], camera.media_type)])
    error_message = "media_type must be \"video/h264\" or \"video/h265\"."
  }
  validation {
    condition     = alltrue([for camera in values(var.cameras) : length(trimspace(camera.site)) > 0])
    error_message = "Every camera needs a non-empty site."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
