output "console_url" {
  description = "HTTPS URL of the console (domain_name); alert emails can link to <console_url>/alerts/<alert_id>."
  value       = "https://${var.domain_name}"
}

output "load_balancer_dns_name" {
  description = "DNS name of the internal load balancer: the target of domain_name's record."
  value       = aws_lb.this.dns_name
}

output "audit_table_name" {
  description = "Review audit table (VIGIL_CONSOLE_AUDIT_TABLE)."
  value       = aws_dynamodb_table.this.name
}

output "console_kms_key_arn" {
  description = "ARN of the key that encrypts the console's audit table, logs, repository and secret."
  value       = aws_kms_key.this.arn
}

output "load_balancer_arn" {
  description = "ARN of the internal load balancer (the `signer` the console checks in the OIDC token)."
  value       = aws_lb.this.arn
}

output "ecr_repository_url" {
  description = "Repository the console image is pushed to."
  value       = aws_ecr_repository.this.repository_url
}

output "service_name" {
  description = "Name of the console's ECS service (aws ecs update-service --force-new-deployment)."
  value       = aws_ecs_service.this.name
}

output "task_role_arn" {
  description = "Role of the console's code."
  value       = aws_iam_role.task.arn
}

output "security_group_ids" {
  description = "Security groups of the load balancer (alb) and the tasks (task)."
  value       = { alb = aws_security_group.alb.id, task = aws_security_group.task.id }
}

output "login_token_secret_arn" {
  description = "Secret holding the login token (sign_in = \"token\"); null with Cognito sign-in."
  value       = one(aws_secretsmanager_secret.token[*].arn)
}
