# What `make deploy`, `make train` and operators read (`terraform output -json`).

output "region" {
  description = "AWS region of the deployment."
  value       = var.region
}

output "ecr_repository_url" {
  description = "Worker image repository: docker push <url>:<worker_image_tag>."
  value       = module.worker.ecr_repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster of the worker service."
  value       = module.worker.cluster_name
}

output "ecs_service_name" {
  description = "Worker ECS service (roll it with aws ecs update-service --force-new-deployment)."
  value       = module.worker.service_name
}

output "worker_task_definition_family" {
  description = "Family of the worker's task definition."
  value       = module.worker.task_definition_family
}

output "worker_container_name" {
  description = "Name of the worker container in the task definition."
  value       = module.worker.container_name
}

output "worker_log_group_name" {
  description = "CloudWatch log group of the worker."
  value       = module.worker.log_group_name
}

output "sagemaker_endpoint_name" {
  description = "SageMaker endpoint the worker invokes (VIGIL_ENDPOINT_NAME)."
  value       = module.model.endpoint_name
}

output "sagemaker_model_name" {
  description = "SageMaker model currently behind the endpoint."
  value       = module.model.model_name
}

output "sagemaker_training_role_arn" {
  description = "Role for SageMaker training jobs (make train)."
  value       = module.model.training_role_arn
}

output "archive_bucket_name" {
  description = "Archive bucket: clips/, alerts/, snapshots/, manifests/, models/, checkpoints/ (VIGIL_ARCHIVE_BUCKET)."
  value       = module.training_data.archive_bucket_name
}

output "archive_kms_key_arn" {
  description = "Key of the archive bucket (training jobs' output and volume KMS key)."
  value       = module.training_data.archive_kms_key_arn
}

output "alert_stream_name" {
  description = "Alert Kinesis Data Stream (VIGIL_ALERT_STREAM)."
  value       = module.alerts.alert_stream_name
}

output "alert_stream_arn" {
  description = "ARN of the alert stream."
  value       = module.alerts.alert_stream_arn
}

output "alert_topic_arn" {
  description = "SNS topic alerts are published to (VIGIL_ALERT_TOPIC_ARN)."
  value       = module.alerts.alert_topic_arn
}

output "alert_function_name" {
  description = "The alert Lambda (make deploy updates its code)."
  value       = module.alerts.alert_function_name
}

output "alert_dlq_arn" {
  description = "Dead-letter queue of failed alert batches."
  value       = module.alerts.alert_dlq_arn
}

output "alert_redrive_policy_arn" {
  description = "Managed policy to attach to the role that runs python -m alert_lambda.redrive."
  value       = module.alerts.alert_redrive_policy_arn
}

output "state_table_name" {
  description = "Worker checkpoints and camera leases (VIGIL_STATE_TABLE)."
  value       = module.worker.state_table_name
}

output "idempotency_table_name" {
  description = "Alert Lambda idempotency table (VIGIL_IDEMPOTENCY_TABLE)."
  value       = module.alerts.idempotency_table_name
}

output "alert_history_table_name" {
  description = "Every notified alert, written by the alert Lambda, listed and reviewed in the console (VIGIL_ALERT_HISTORY_TABLE)."
  value       = module.alerts.alert_history_table_name
}

output "console_url" {
  description = "The operator console; an alert's page is <console_url>/alerts/<alert_id>."
  value       = module.console.console_url
}

output "console_login_token_secret_arn" {
  description = "Secret holding the console's login token when console_egress.mode = \"none\" (token sign-in); null with Cognito."
  value       = module.console.login_token_secret_arn
}

output "nat_public_ips" {
  description = "Public IP of the NAT gateway the console's sign-in leaves through (console_egress.mode = \"nat_gateway\"); [] otherwise."
  value       = module.network.nat_public_ips
}

output "console_load_balancer_dns_name" {
  description = "DNS name of the console's internal load balancer: point console_domain_name's record at it."
  value       = module.console.load_balancer_dns_name
}

output "console_ecr_repository_url" {
  description = "Console image repository: docker push <url>:<console_image_tag>."
  value       = module.console.ecr_repository_url
}

output "console_service_name" {
  description = "Console ECS service, in the worker's cluster (ecs_cluster_name)."
  value       = module.console.service_name
}

output "console_audit_table_name" {
  description = "Review audit table of the console (VIGIL_CONSOLE_AUDIT_TABLE)."
  value       = module.console.audit_table_name
}

output "camera_stream_names" {
  description = "Kinesis video stream name by camera (what each camera's producer puts media to)."
  value       = { for name, camera in module.video_ingest.camera_streams : name => camera.stream_name }
}

output "ops_topic_arn" {
  description = "Operations SNS topic the alarms notify."
  value       = module.observability.ops_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the loop."
  value       = module.observability.dashboard_name
}

output "private_subnet_ids" {
  description = "Private subnets (for one-off tasks such as a backfill)."
  value       = module.network.private_subnet_ids
}

output "worker_security_group_id" {
  description = "Security group of the worker tasks."
  value       = module.network.worker_security_group_id
}
