output "archive_bucket_name" {
  description = "Name of the archive bucket (VIGIL_ARCHIVE_BUCKET)."
  value       = aws_s3_bucket.archive.id
}

output "archive_bucket_arn" {
  description = "ARN of the archive bucket; the other modules scope their S3 statements to prefixes under it."
  value       = aws_s3_bucket.archive.arn
}

output "log_bucket_name" {
  description = "Name of the bucket that receives the archive's S3 server access logs."
  value       = aws_s3_bucket.logs.id
}

output "archive_kms_key_arn" {
  description = "ARN of the customer managed key that encrypts both buckets (readers need kms:Decrypt, writers kms:GenerateDataKey)."
  value       = aws_kms_key.this.arn
}

output "archive_prefixes" {
  description = "The archive's top-level prefixes by role, each ending in '/'."
  value = {
    clips        = "clips/"
    alert_clips  = "alerts/"
    snapshots    = "snapshots/"
    manifests    = "manifests/"
    feedback     = "feedback/"
    tmp          = "tmp/"
    models       = "models/"
    checkpoints  = "checkpoints/"
    data_capture = "data-capture/"
  }
}
