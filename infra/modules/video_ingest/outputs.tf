output "camera_streams" {
  description = "Per camera: its site and its Kinesis video stream's name and ARN (what the worker consumes)."
  value = {
    for name, camera in var.cameras : name => {
      site        = camera.site
      stream_name = aws_kinesis_video_stream.this[name].name
      stream_arn  = aws_kinesis_video_stream.this[name].arn
    }
  }
}

output "camera_stream_arns" {
  description = "Kinesis video stream ARN by camera name."
  value       = { for name, stream in aws_kinesis_video_stream.this : name => stream.arn }
}

output "video_kms_key_arn" {
  description = "ARN of the customer managed key that encrypts the video streams (producers need kms:GenerateDataKey, consumers kms:Decrypt)."
  value       = aws_kms_key.this.arn
}
