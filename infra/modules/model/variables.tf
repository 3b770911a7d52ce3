variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"vigil\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "image_uri" {
  description = "ECR image of the inference container (the SageMaker PyTorch serving image, or our own build), as <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:<digest>. The execution role may pull from that repository only."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.image_uri))
    error_message = "image_uri must be an ECR image: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> (or @sha256:<digest>)."
  }
}

variable "training_image_uri" {
  description = "ECR image that training jobs run; null means the same repository as image_uri."
  type        = string
  default     = null
  validation {
    condition     = var.training_image_uri == null || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.training_image_uri))
    error_message = "training_image_uri must be null or an ECR image: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>."
  }
}

variable "model_data_url" {
  description = "S3 URL of the model artifact (model.tar.gz, SageMaker layout) under the archive bucket's models/ prefix."
  type        = string
  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]+[a-z0-9]/models/.+\\.tar\\.gz$", var.model_data_url))
    error_message = "model_data_url must look like s3://<archive bucket>/models/<...>.tar.gz: the endpoint role may read models/ only."
  }
}

variable "archive_bucket_name" {
  description = "Name of the archive bucket (training_data module): model artifacts, training data, data capture."
  type        = string
}

variable "archive_bucket_arn" {
  description = "ARN of the archive bucket; the roles' S3 statements are scoped to prefixes under it."
  type        = string
}

variable "archive_kms_key_arn" {
  description = "ARN of the key that encrypts the archive bucket."
  type        = string
}

variable "instance_type" {
  description = "SageMaker instance type of the endpoint's production variant."
  type        = string
  default     = "ml.g4dn.xlarge"
  validation {
    condition     = can(regex("^ml\\.[a-z0-9]+(-[a-z0-9]+)?\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be a SageMaker hosting instance type such as ml.g4dn.xlarge or ml.c6i.xlarge."
  }
}

variable "autoscaling" {
  description = "Endpoint auto scaling: instance count bounds, the target of SageMakerVariantInvocationsPerInstance (invocations per instance per minute), and the instance count a roll-out (new model or configuration) starts at (null: max_capacity; auto scaling scales in afterwards)."
  type = object({
    min_capacity                    = optional(number, 1)
    max_capacity                    = optional(number, 4)
    rollout_instance_count          = optional(number)
    target_invocations_per_instance = optional(number, 600)
    scale_in_cooldown_s             = optional(number, 300)
    scale_out_cooldown_s            = optional(number, 60)
  })
  default = {}
  validation {
    condition     = var.autoscaling.min_capacity >= 1 && var.autoscaling.max_capacity >= var.autoscaling.min_capacity
    error_message = "autoscaling needs 1 <= min_capacity <= max_capacity: a real-time endpoint cannot scale to zero."
  }
  validation {
    condition     = var.autoscaling.target_invocations_per_instance > 0 && var.autoscaling.scale_in_cooldown_s >= 0 && var.autoscaling.scale_out_cooldown_s >= 0
    error_message = "target_invocations_per_instance must be positive and the cooldowns non-negative."
  }
  validation {
    condition     = var.autoscaling.rollout_instance_count == null || (coalesce(var.autoscaling.rollout_instance_count, 1) >= var.autoscaling.min_capacity && coalesce(var.autoscaling.rollout_instance_count, 1) <= var.autoscaling.max_capacity)
    error_message = "autoscaling.rollout_instance_count must lie between min_capacity and max_capacity (or be null: max_capacity)."
  }
}

variable "data_capture" {
  description = "Endpoint data capture into s3://<archive>/data-capture/ (requests and responses, for drift checks and relabelling)."
  type = object({
    enabled             = optional(bool, false)
    sampling_percentage = optional(number, 5)
  })
  default = {}
  validation {
    condition     = var.data_capture.sampling_percentage >= 1 && var.data_capture.sampling_percentage <= 100
    error_message = "data_capture.sampling_percentage must be between 1 and 100."
  }
}

variable "container_environment" {
  description = "Extra environment variables of the inference container (e.g. thresholds, log level)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Days the endpoint and training-job logs are kept."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "manage_training_log_group" {
  description = "Create the account-wide /aws/sagemaker/TrainingJobs log group (KMS, retention). Off by default: it exists in every account and region that ever ran a training job, and creating it there fails. Turn it on only where it does not exist yet, or import it first (docs/deploy.md)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of the module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
