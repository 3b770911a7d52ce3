# Vigil on AWS: the root only composes the modules and wires their outputs into each other.

module "network" {
  source = "./modules/network"

  name_prefix             = var.name_prefix
  vpc_cidr                = var.vpc_cidr
  flow_log_retention_days = var.log_retention_days
  egress                  = var.console_egress
}

module "video_ingest" {
  source = "./modules/video_ingest"

  name_prefix = var.name_prefix
  cameras     = var.cameras
}

module "training_data" {
  source = "./modules/training_data"

  name_prefix        = var.name_prefix
  bucket_name        = var.archive_bucket_name
  lifecycle_days     = var.archive_lifecycle_days
  clip_storage_class = var.clip_storage_class
  force_destroy      = var.force_destroy
}

module "model" {
  source = "./modules/model"

  name_prefix         = var.name_prefix
  image_uri           = var.model_image_uri
  training_image_uri  = var.training_image_uri
  model_data_url      = var.model_data_url
  archive_bucket_name = module.training_data.archive_bucket_name
  archive_bucket_arn  = module.training_data.archive_bucket_arn
  archive_kms_key_arn = module.training_data.archive_kms_key_arn
  instance_type       = var.endpoint_instance_type
  autoscaling         = var.endpoint_autoscaling
  data_capture        = var.endpoint_data_capture
  log_retention_days  = var.log_retention_days

  manage_training_log_group = var.manage_sagemaker_training_log_group
}

module "alerts" {
  source = "./modules/alerts"

  name_prefix         = var.name_prefix
  stream              = var.alert_stream
  lambda_zip_path     = var.alert_lambda_zip_path
  lambda              = var.alert_lambda
  link_expiry_s       = var.alert_link_expiry_s
  console_url         = "https://${var.console_domain_name}"
  idempotency_ttl_s   = var.alert_idempotency_ttl_s
  site_timezones      = var.site_timezones
  event_source        = var.alert_event_source
  subscriptions       = var.alert_subscriptions
  archive_bucket_arn  = module.training_data.archive_bucket_arn
  archive_kms_key_arn = module.training_data.archive_kms_key_arn
  log_retention_days  = var.log_retention_days
  deletion_protection = var.deletion_protection
}

module "worker" {
  source = "./modules/worker"

  name_prefix         = var.name_prefix
  camera_streams      = module.video_ingest.camera_streams
  frame_sample_fps    = var.frame_sample_fps
  fleet_batch         = var.worker_fleet_batch
  camera_scenes       = var.camera_scenes
  archive_bucket_name = module.training_data.archive_bucket_name
  archive_bucket_arn  = module.training_data.archive_bucket_arn
  archive_kms_key_arn = module.training_data.archive_kms_key_arn
  alert_stream_name   = module.alerts.alert_stream_name
  alert_stream_arn    = module.alerts.alert_stream_arn
  alert_kms_key_arn   = module.alerts.alert_kms_key_arn
  video_kms_key_arn   = module.video_ingest.video_kms_key_arn
  endpoint_name       = module.model.endpoint_name
  endpoint_arn        = module.model.endpoint_arn
  subnet_ids          = module.network.private_subnet_ids
  security_group_ids  = [module.network.worker_security_group_id]
  image_tag           = var.worker_image_tag
  cpu                 = var.worker_cpu
  memory              = var.worker_memory
  autoscaling         = var.worker_autoscaling
  extra_environment   = var.worker_extra_environment
  log_retention_days  = var.log_retention_days
  deletion_protection = var.deletion_protection
}

module "console" {
  source = "./modules/console"

  name_prefix                 = var.name_prefix
  vpc_id                      = module.network.vpc_id
  subnet_ids                  = module.network.private_subnet_ids
  endpoints_security_group_id = module.network.endpoints_security_group_id
  gateway_prefix_list_ids     = module.network.gateway_prefix_list_ids
  operator_cidrs              = var.console_operator_cidrs
  idp_egress_cidrs            = var.console_idp_egress_cidrs
  cluster_arn                 = module.worker.cluster_arn
  domain_name                 = var.console_domain_name
  certificate_arn             = var.console_certificate_arn
  cognito                     = var.console_cognito
  sign_in                     = var.console_egress.mode == "none" ? "token" : "cognito"
  alert_history_table_name    = module.alerts.alert_history_table_name
  alert_history_table_arn     = module.alerts.alert_history_table_arn
  alert_history_kms_key_arn   = module.alerts.alert_kms_key_arn
  archive_bucket_name         = module.training_data.archive_bucket_name
  archive_bucket_arn          = module.training_data.archive_bucket_arn
  archive_kms_key_arn         = module.training_data.archive_kms_key_arn
  state_table_name            = module.worker.state_table_name
  state_table_arn             = module.worker.state_table_arn
  state_kms_key_arn           = module.worker.worker_kms_key_arn
  access_logs_bucket          = var.console_access_logs_bucket
  image_tag                   = var.console_image_tag
  desired_count               = var.console_desired_count
  log_retention_days          = var.log_retention_days
  deletion_protection         = var.deletion_protection
}

module "observability" {
  source = "./modules/observability"

  name_prefix           = var.name_prefix
  ops_emails            = var.ops_emails
  alert_function_name   = module.alerts.alert_function_name
  alert_dlq_name        = module.alerts.alert_dlq_name
  alert_stream_name     = module.alerts.alert_stream_name
  endpoint_name         = module.model.endpoint_name
  endpoint_variant_name = module.model.endpoint_variant_name
  cluster_name          = module.worker.cluster_name
  service_name          = module.worker.service_name
  camera_ids            = keys(var.cameras)
  thresholds            = var.alarm_thresholds
}
