output "delivery_stream_prefix" {
  description = "Fluent Bit's delivery_stream_prefix (the FIREHOSE_STREAM_PREFIX environment variable of deploy/kubernetes and deploy/helm): every stream of this module starts with it."
  value       = "${var.name_prefix}-"
}

output "delivery_stream_names" {
  description = "Names of the delivery streams (for delivery_streams, if listing them is preferred to the prefix)."
  value       = aws_kinesis_firehose_delivery_stream.this[*].name
}

output "delivery_stream_arns" {
  description = "ARNs of the delivery streams."
  value       = aws_kinesis_firehose_delivery_stream.this[*].arn
}

output "bucket_name" {
  description = "S3 bucket the streams deliver to."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the S3 bucket."
  value       = aws_s3_bucket.this.arn
}

output "firehose_role_arn" {
  description = "IAM role Firehose writes to S3 with."
  value       = aws_iam_role.firehose.arn
}

output "fluent_bit_role_arn" {
  description = "IAM role for Fluent Bit's service account: the eks.amazonaws.com/role-arn annotation."
  value       = aws_iam_role.fluent_bit.arn
}

output "service_account_annotations" {
  description = "Annotations that give Fluent Bit's Kubernetes service account the role (IRSA)."
  value = {
    "eks.amazonaws.com/role-arn" = aws_iam_role.fluent_bit.arn
  }
}
