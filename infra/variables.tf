# Root inputs. Domain rules are validated in the modules that own them; each description names the module.

variable "region" {
  description = "AWS region everything is deployed to: one where Kinesis Video Streams runs (docs/deploy.md lists them; the China regions are not supported: their endpoint service names differ). The network module also checks at plan time that every interface endpoint service, kinesisvideo included, is offered there."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1 or eu-west-2."
  }
  validation {
    # Kinesis Video Streams regions (https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/availability.html and
    # https://docs.aws.amazon.com/general/latest/gr/akv.html, 2025).
    condition = contains([
      "us-east-1", "us-east-2", "us-west-2", "us-gov-east-1", "us-gov-west-1", "af-south-1", "ap-east-1",
      "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
      "ap-southeast-5", "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-2", "me-south-1",
      "sa-east-1",
    ], var.region)
    error_message = "region must be one where Kinesis Video Streams runs (us-east-1, us-east-2, us-west-2, eu-west-1 ...: see docs/deploy.md); e.g. us-west-1 and eu-north-1 have no KVS."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (all modules)."
  type        = string
  default     = "vigil"
}

variable "tags" {
  description = "Tags on every resource (provider default_tags), on top of Project and ManagedBy."
  type        = map(string)
  default     = {}
}

# --- network ---------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC (network module)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps flow logs, worker, Lambda, SageMaker and console logs (network, worker, alerts, model, console modules)."
  type        = number
  default     = 365
}

# --- cameras and archive ---------------------------------------------------------------------------

variable "cameras" {
  description = "Cameras by name (video_ingest module): site, KVS retention in hours (>= 24), media type."
  type = map(object({
    site            = string
    retention_hours = optional(number, 24)
    media_type      = optional(string, "video/h264")
  }))
}

variable "camera_scenes" {
  description = "Scenes seeded once per camera (worker module's camera_scenes): the JSON of a CameraScene (zones, privacy masks, arming schedule, tamper), e.g. a heredoc or file(\"scenes/gate-north.json\"). Later applies leave the item alone: operators edit it in the console or with python -m worker.scene_cli."
  type        = map(string)
  default     = {}
  nullable    = false
  validation {
    condition     = alltrue([for camera_id in keys(var.camera_scenes) : contains(keys(var.cameras), camera_id)])
    error_message = "camera_scenes may only name cameras of var.cameras."
  }
  validation {
    condition     = alltrue([for scene in values(var.camera_scenes) : can(keys(jsondecode(scene)))])
    error_message = "Each camera_scenes value must be a JSON object (check it with python -m worker.scene_cli validate --file scene.json)."
  }
}

variable "archive_bucket_name" {
  description = "Archive bucket name (training_data module); null derives it from name_prefix, account and region."
  type        = string
  default     = null
}

variable "archive_lifecycle_days" {
  description = "Archive lifecycle in days (training_data module's lifecycle_days): clips, alert clips, snapshots, old versions, access logs."
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
}

variable "clip_storage_class" {
  description = "Storage class clips transition to (training_data module)."
  type        = string
  default     = "STANDARD_IA"
}

variable "force_destroy" {
  description = "Let terraform destroy delete non-empty buckets (training_data module). Throw-away environments only."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Deletion protection of the state, idempotency, alert history and audit tables and the console's load balancer (worker, alerts, console modules)."
  type        = bool
  default     = true
}

# --- model -----------------------------------------------------------------------------------------

variable "model_image_uri" {
  description = "ECR image of the inference container (model module's image_uri)."
  type        = string
}

variable "model_data_url" {
  description = "S3 URL of model.tar.gz under s3://<archive bucket>/models/ (model module)."
  type        = string
}

variable "training_image_uri" {
  description = "ECR image of the training jobs; null means the inference image's repository (model module)."
  type        = string
  default     = null
}

variable "endpoint_instance_type" {
  description = "SageMaker instance type of the endpoint (model module's instance_type)."
  type        = string
  default     = "ml.g4dn.xlarge"
}

variable "endpoint_autoscaling" {
  description = "Endpoint auto scaling on SageMakerVariantInvocationsPerInstance, and the instance count a roll-out starts at (null: max_capacity) (model module's autoscaling)."
  type = object({
    min_capacity                    = optional(number, 1)
    max_capacity                    = optional(number, 4)
    rollout_instance_count          = optional(number)
    target_invocations_per_instance = optional(number, 600)
    scale_in_cooldown_s             = optional(number, 300)
    scale_out_cooldown_s            = optional(number, 60)
  })
  default = {}
}

variable "manage_sagemaker_training_log_group" {
  description = "Create the account-wide /aws/sagemaker/TrainingJobs log group with the model module's key and log_retention_days. Leave false in an account that ever ran a SageMaker training job (the group exists and creating it fails), or import it first (docs/deploy.md)."
  type        = bool
  default     = false
}

variable "endpoint_data_capture" {
  description = "Endpoint data capture to s3://<archive>/data-capture/ (model module's data_capture)."
  type = object({
    enabled             = optional(bool, false)
    sampling_percentage = optional(number, 5)
  })
  default = {}
}

# --- worker ----------------------------------------------------------------------------------------

variable "worker_image_tag" {
  description = "Tag of the worker image in the worker's ECR repository; immutable, never \"latest\" (worker module's image_tag)."
  type        = string
}

variable "worker_cpu" {
  description = "Fargate CPU units of a worker task (worker module's cpu)."
  type        = number
  default     = 2048
}

variable "worker_memory" {
  description = "Fargate memory (MiB) of a worker task (worker module's memory)."
  type        = number
  default     = 4096
}

variable "worker_autoscaling" {
  description = "Worker service auto scaling on average CPU and on the worst camera's frame lag (worker module's autoscaling)."
  type = object({
    min_capacity       = optional(number, 1)
    max_capacity       = optional(number, 4)
    target_cpu_percent = optional(number, 60)
    target_frame_lag_s = optional(number, 5)
  })
  default = {}
}

variable "frame_sample_fps" {
  description = "Frames per second per camera that the worker analyses (worker module)."
  type        = number
  default     = 5
}

variable "worker_fleet_batch" {
  description = "Fleet mode: the worker task's cameras share InvokeEndpoint calls of at most max_batch frames, a frame waiting at most max_wait_ms (worker module's fleet_batch)."
  type = object({
    enabled     = optional(bool, true)
    max_batch   = optional(number, 8)
    max_wait_ms = optional(number, 20)
  })
  default = {}
}

variable "worker_extra_environment" {
  description = "More environment variables for the worker container (worker module's extra_environment)."
  type        = map(string)
  default     = {}
}

# --- alerts ----------------------------------------------------------------------------------------

variable "alert_lambda_zip_path" {
  description = "Path of the alert Lambda package, relative to infra/ (alerts module's lambda_zip_path)."
  type        = string
  default     = "../dist/alert_lambda.zip"
}

variable "alert_lambda" {
  description = "The alert Lambda's memory (MB), timeout (s), architecture, log level and reserved concurrency (null: none; alerts module's lambda)."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_s            = optional(number, 60)
    architecture         = optional(string, "x86_64")
    log_level            = optional(string, "INFO")
    reserved_concurrency = optional(number)
  })
  default = {}
}

variable "alert_link_expiry_s" {
  description = "Lifetime in seconds of the presigned snapshot/clip links in notifications (alerts module's link_expiry_s)."
  type        = number
  default     = 43200
}

variable "alert_idempotency_ttl_s" {
  description = "Seconds an alert id is remembered against duplicate notifications; null = the stream's retention (alerts module's idempotency_ttl_s)."
  type        = number
  default     = null
}

variable "site_timezones" {
  description = "IANA time zone per site for the times in notifications; unlisted sites get UTC (alerts module's site_timezones)."
  type        = map(string)
  default     = {}
}

variable "alert_stream" {
  description = "Alert Kinesis Data Stream capacity mode, shards and retention (alerts module's stream)."
  type = object({
    mode            = optional(string, "ON_DEMAND")
    shard_count     = optional(number, 1)
    retention_hours = optional(number, 24)
  })
  default = {}
}

variable "alert_event_source" {
  description = "Kinesis event source mapping of the alert Lambda (alerts module's event_source)."
  type = object({
    batch_size                = optional(number, 100)
    maximum_batching_window_s = optional(number, 1)
    maximum_retry_attempts    = optional(number, -1)
    maximum_record_age_s      = optional(number, 21600)
    parallelization_factor    = optional(number, 1)
    starting_position         = optional(string, "LATEST")
  })
  default = {}
}

variable "alert_subscriptions" {
  description = "SNS subscriptions to the alert topic with optional filter policies on severity, site, camera_id, event_type, zone (alerts module's subscriptions)."
  type = list(object({
    protocol      = string
    endpoint      = string
    filter_policy = optional(map(list(string)))
  }))
  default = []
}

# --- console ---------------------------------------------------------------------------------------

variable "console_image_tag" {
  description = "Tag of the console image in the console's ECR repository; immutable, never \"latest\" (console module's image_tag)."
  type        = string
}

variable "console_domain_name" {
  description = "DNS name operators open, e.g. console.vigil.internal: a private-zone record to the console_load_balancer_dns_name output (console module's domain_name)."
  type        = string
}

variable "console_certificate_arn" {
  description = "ACM certificate covering console_domain_name, for the load balancer's HTTPS listener (console module's certificate_arn)."
  type        = string
}

variable "console_operator_cidrs" {
  description = "Networks operators reach the internal console from (VPN, office, peered VPCs); never 0.0.0.0/0 (console module's operator_cidrs)."
  type        = list(string)
}

variable "console_cognito" {
  description = "Cognito user pool operators sign in with: ARN, id, hosted-UI domain prefix, the attribute listing an operator's sites, group -> sites, the groups whose members edit camera scenes, session timeout (console module's cognito); null with console_egress.mode = \"none\" (token sign-in)."
  type = object({
    user_pool_arn     = string
    user_pool_id      = string
    user_pool_domain  = string
    sites_claim       = optional(string, "custom:vigil_sites")
    group_sites       = optional(map(list(string)), {})
    supervisor_groups = optional(list(string), []) # members also edit camera scenes
    session_timeout   = optional(number, 43200)
  })
  default = null # needed unless console_egress.mode = "none" (token sign-in)
}

variable "console_egress" {
  description = "How the console's Cognito sign-in reaches the internet (network module's egress): `nat_gateway` (default; one NAT gateway, about $33/month plus $0.045/GB in us-east-1), `transit_gateway` with transit_gateway_id (a central egress VPC or proxy you run; attachment about $36/month plus $0.02/GB), or `none` (no route out, $0: operators sign in with a login token from Secrets Manager instead of Cognito). See docs/deploy.md."
  type = object({
    mode               = optional(string, "nat_gateway")
    transit_gateway_id = optional(string)
  })
  default = {}
}

variable "console_idp_egress_cidrs" {
  description = "Where the console's load balancer may open HTTPS connections to Cognito's token and user-info endpoints: the range of an egress proxy or NAT the subnets route to (console module's idp_egress_cidrs)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "console_access_logs_bucket" {
  description = "S3 bucket for the console load balancer's access logs; null: none (console module's access_logs_bucket)."
  type        = string
  default     = null
}

variable "console_desired_count" {
  description = "Console tasks behind the load balancer (console module's desired_count)."
  type        = number
  default     = 2
}

# --- observability ---------------------------------------------------------------------------------

variable "ops_emails" {
  description = "E-mail addresses that receive alarm notifications (observability module)."
  type        = list(string)
  default     = []
}

variable "alarm_thresholds" {
  description = "Alarm thresholds (observability module's thresholds)."
  type = object({
    lambda_errors        = optional(number, 0)
    iterator_age_ms      = optional(number, 60000)
    dlq_messages         = optional(number, 0)
    endpoint_5xx         = optional(number, 5)
    model_latency_p90_ms = optional(number, 500)
    frame_lag_s          = optional(number, 10)
  })
  default = {}
}
