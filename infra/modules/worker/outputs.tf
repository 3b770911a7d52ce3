output "ecr_repository_url" {
  description = "URL of the worker's ECR repository (docker push <url>:<tag>)."
  value       = aws_ecr_repository.this.repository_url
}

output "ecr_repository_arn" {
  description = "ARN of the worker's ECR repository."
  value       = aws_ecr_repository.this.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster (the console's service runs in it too)."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Name of the worker's ECS service (aws ecs update-service --force-new-deployment)."
  value       = aws_ecs_service.this.name
}

output "task_definition_family" {
  description = "Family of the worker's task definition."
  value       = aws_ecs_task_definition.this.family
}

output "task_definition_arn" {
  description = "ARN of the worker's current task definition revision."
  value       = aws_ecs_task_definition.this.arn
}

output "container_name" {
  description = "Name of the worker container in the task definition."
  value       = local.container_name
}

output "log_group_name" {
  description = "CloudWatch log group of the worker (the Vigil/FrameLagSeconds metric is emitted there in EMF)."
  value       = aws_cloudwatch_log_group.this.name
}

output "state_table_name" {
  description = "Name of the DynamoDB table of checkpoints and camera leases (VIGIL_STATE_TABLE)."
  value       = aws_dynamodb_table.this.name
}

output "state_table_arn" {
  description = "ARN of the state table."
  value       = aws_dynamodb_table.this.arn
}

output "task_role_arn" {
  description = "ARN of the role the worker's code runs as."
  value       = aws_iam_role.task.arn
}

output "task_exec_role_arn" {
  description = "ARN of the ECS task execution role."
  value       = aws_iam_role.task_exec.arn
}

output "worker_kms_key_arn" {
  description = "ARN of the customer managed key of the repository, the logs and the state table."
  value       = aws_kms_key.this.arn
}
