output "endpoint_name" {
  description = "Name of the SageMaker endpoint the worker invokes."
  value       = aws_sagemaker_endpoint.this.name
}

output "endpoint_arn" {
  description = "ARN of the SageMaker endpoint (the worker's sagemaker:InvokeEndpoint is scoped to it)."
  value       = aws_sagemaker_endpoint.this.arn
}

output "endpoint_variant_name" {
  description = "Name of the endpoint's production variant (dimension of the endpoint metrics)."
  value       = local.variant_name
}

output "model_name" {
  description = "Name of the SageMaker model currently behind the endpoint."
  value       = aws_sagemaker_model.this.name
}

output "endpoint_role_arn" {
  description = "ARN of the endpoint's SageMaker execution role."
  value       = aws_iam_role.endpoint.arn
}

output "training_role_arn" {
  description = "ARN of the role SageMaker training jobs run as (make train passes it to the job)."
  value       = aws_iam_role.training.arn
}

output "model_kms_key_arn" {
  description = "ARN of the customer managed key of the endpoint volume and the SageMaker log groups."
  value       = aws_kms_key.this.arn
}
