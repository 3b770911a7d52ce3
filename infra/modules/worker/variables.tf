variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "camera_streams" {
  description = "Cameras the worker watches, by name: site and Kinesis video stream (the video_ingest module's camera_streams output). Passed to the worker as JSON in VIGIL_CAMERAS; the task role may read these streams only."
  type = map(object({
    site        = string
    stream_name = string
    stream_arn  = string
  }))
  validation {
    condition     = length(var.camera_streams) > 0
    error_message = "camera_streams must hold at least one camera."
  }
  validation {
    condition     = alltrue([for camera in values(var.camera_streams) : can(regex("^arn:aws[a-z-]*:kinesisvideo:", camera.stream_arn))])
    error_message = "Every camera's stream_arn must be a Kinesis video stream ARN (arn:aws:kinesisvideo:...)."
  }
}

variable "frame_sample_fps" {
  description = "Frames per second per camera that the worker analyses."
  type        = number
  default     = 5
  validation {
    condition     = var.frame_sample_fps > 0 && var.frame_sample_fps <= 30
    error_message = "frame_sample_fps must be in (0, 30]."
  }
}

variable "fleet_batch" {
  description = "Fleet mode: the task's cameras share InvokeEndpoint calls; a call goes out when max_batch frames wait or the oldest has waited max_wait_ms (VIGIL_FLEET_BATCH_ENABLED, VIGIL_FLEET_BATCH_MAX, VIGIL_FLEET_BATCH_WAIT_MS). Keep max_batch at or below the endpoint's VIGIL_MAX_BATCH."
  type = object({
    enabled     = optional(bool, true)
    max_batch   = optional(number, 8)
    max_wait_ms = optional(number, 20)
  })
  default  = {}
  nullable = false
  validation {
    condition     = var.fleet_batch.max_batch >= 1 && var.fleet_batch.max_batch <= 64 && floor(var.fleet_batch.max_batch) == var.fleet_batch.max_batch
    error_message = "fleet_batch.max_batch must be a whole number in [1, 64]."
  }
  validation {
    condition     = var.fleet_batch.max_wait_ms >= 0 && var.fleet_batch.max_wait_ms <= 1000
    error_message = "fleet_batch.max_wait_ms must be in [0, 1000]."
  }
}

variable "camera_scenes" {
  description = "Scenes seeded into the state table, by camera: the JSON of a contracts.camera_scene.CameraScene (zones, privacy masks, arming schedule, tamper). Each becomes the camera's scene item (camera-scene#<camera id>, revision 1) once; later applies leave it alone, so operators' edits in the console or with python -m worker.scene_cli stay. Cameras not listed run their configured scene."
  type        = map(string)
  default     = {}
  nullable    = false
  validation {
    condition     = alltrue([for camera_id in keys(var.camera_scenes) : contains(keys(var.camera_streams), camera_id)])
    error_message = "camera_scenes may only name cameras of camera_streams."
  }
  validation {
    condition     = alltrue([for scene in values(var.camera_scenes) : can(keys(jsondecode(scene)))])
    error_message = "Each camera_scenes value must be a JSON object (a CameraScene; check it with python -m worker.scene_cli validate --file scene.json)."
  }
  validation {
    condition = alltrue(flatten([for scene in values(var.camera_scenes) : [
      for shape in concat(try(jsondecode(scene).zones, []), try(jsondecode(scene).privacy_masks, [])) :
      can(length(shape.polygon)) && try(length(shape.polygon) >= 3 && length(shape.polygon) <= 64, false)
    ]]))
    error_message = "Every zone's and privacy mask's polygon needs 3 to 64 points [x, y] (fractions of the frame, 0..1)."
  }
  validation {
    condition = alltrue(flatten([for scene in values(var.camera_scenes) : [
      for shape in concat(try(jsondecode(scene).zones, []), try(jsondecode(scene).privacy_masks, [])) : [
        for point in try(shape.polygon, []) : try(length(point) == 2 && point[0] >= 0 && point[0] <= 1 && point[1] >= 0 && point[1] <= 1, false)
      ]
    ]]))
    error_message = "Every polygon point must be [x, y] with x and y in 0..1 (fractions of the frame width and height)."
  }
}

variable "archive_bucket_name" {
  description = "Archive bucket (VIGIL_ARCHIVE_BUCKET): snapshots, clips, alert clips and manifests."
  type        = string
}

variable "archive_bucket_arn" {
  description = "ARN of the archive bucket; the task role's S3 statement is scoped to prefixes under it."
  type        = string
}

variable "archive_kms_key_arn" {
  description = "ARN of the key that encrypts the archive bucket."
  type        = string
}

variable "alert_stream_name" {
  description = "Name of the Kinesis Data Stream the worker puts alerts on (VIGIL_ALERT_STREAM)."
  type        = string
}

variable "alert_stream_arn" {
  description = "ARN of the alert stream; kinesis:PutRecord(s) is scoped to it."
  type        = string
}

variable "alert_kms_key_arn" {
  description = "ARN of the key that encrypts the alert stream (the worker needs kms:GenerateDataKey to put records)."
  type        = string
}

variable "video_kms_key_arn" {
  description = "ARN of the key that encrypts the camera streams (the worker needs kms:Decrypt to read media)."
  type        = string
}

variable "endpoint_name" {
  description = "Name of the SageMaker endpoint the worker invokes (VIGIL_ENDPOINT_NAME)."
  type        = string
}

variable "endpoint_arn" {
  description = "ARN of the SageMaker endpoint; sagemaker:InvokeEndpoint is scoped to it."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the tasks run in (at least two availability zones)."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must list at least two subnets (two availability zones)."
  }
}

variable "security_group_ids" {
  description = "Security groups of the tasks (the network module's worker group)."
  type        = list(string)
  validation {
    condition     = length(var.security_group_ids) >= 1
    error_message = "security_group_ids must hold at least one security group."
  }
}

variable "image_tag" {
  description = "Tag of the worker image in the module's ECR repository (tags are immutable: use the git commit, never \"latest\")."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid Docker tag other than \"latest\" (the repository's tags are immutable)."
  }
}

variable "cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 2048
  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be one of the Fargate sizes 256, 512, 1024, 2048, 4096, 8192, 16384."
  }
}

variable "memory" {
  description = "Fargate task memory in MiB; must be a size Fargate offers for the chosen cpu."
  type        = number
  default     = 4096
  validation {
    condition = anytrue([
      for size in [
        { cpu = 256, min = 512, max = 2048, step = 512 },
        { cpu = 512, min = 1024, max = 4096, step = 1024 },
        { cpu = 1024, min = 2048, max = 8192, step = 1024 },
        { cpu = 2048, min = 4096, max = 16384, step = 1024 },
        { cpu = 4096, min = 8192, max = 30720, step = 1024 },
        { cpu = 8192, min = 16384, max = 61440, step = 4096 },
        { cpu = 16384, min = 32768, max = 122880, step = 8192 },
      ] : size.cpu == var.cpu && var.memory >= size.min && var.memory <= size.max && var.memory % size.step == 0
    ]) && !(var.cpu == 256 && var.memory == 1536)
    error_message = "memory must be a Fargate size for the cpu (e.g. cpu 1024: 2048-8192 in steps of 1024; cpu 2048: 4096-16384)."
  }
}

variable "autoscaling" {
  description = "Service auto scaling: task count bounds, the target average CPU percentage, and the target of the worst camera's frame lag in seconds (capture to analysis)."
  type = object({
    min_capacity       = optional(number, 1)
    max_capacity       = optional(number, 4)
    target_cpu_percent = optional(number, 60)
    target_frame_lag_s = optional(number, 5)
  })
  default = {}
  validation {
    condition     = var.autoscaling.min_capacity >= 1 && var.autoscaling.max_capacity >= var.autoscaling.min_capacity
    error_message = "autoscaling needs 1 <= min_capacity <= max_capacity."
  }
  validation {
    condition     = var.autoscaling.target_cpu_percent >= 10 && var.autoscaling.target_cpu_percent <= 90
    error_message = "autoscaling.target_cpu_percent must be between 10 and 90."
  }
  validation {
    condition     = var.autoscaling.target_frame_lag_s > 0 && var.autoscaling.target_frame_lag_s <= 300
    error_message = "autoscaling.target_frame_lag_s must be in (0, 300] seconds."
  }
}

variable "extra_environment" {
  description = "More environment variables for the worker container; they may not redefine the ones the module wires."
  type        = map(string)
  default     = {}
  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "AWS_REGION", "VIGIL_ALERT_STREAM", "VIGIL_ARCHIVE_BUCKET", "VIGIL_CAMERAS", "VIGIL_ENDPOINT_NAME",
      "VIGIL_FLEET_BATCH_ENABLED", "VIGIL_FLEET_BATCH_MAX", "VIGIL_FLEET_BATCH_WAIT_MS", "VIGIL_FRAME_SAMPLE_FPS",
      "VIGIL_STATE_TABLE",
    ])) == 0
    error_message = "extra_environment may not set AWS_REGION or the VIGIL_* variables the module wires from the other modules."
  }
}

variable "log_retention_days" {
  description = "Days the worker's logs are kept."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "ecr_keep_images" {
  description = "How many most recent images the ECR lifecycle policy keeps."
  type        = number
  default     = 30
  validation {
    condition     = var.ecr_keep_images >= 2
    error_message = "ecr_keep_images must be at least 2 (the running image and the one before it)."
  }
}

variable "deletion_protection" {
  description = "Protect the state table (checkpoints and leases) from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource of the module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
