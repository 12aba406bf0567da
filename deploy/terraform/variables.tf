variable "name_prefix" {
  description = "Start of every name: the delivery streams are \"<name_prefix>-0\" … \"<name_prefix>-<stream_count - 1>\", and Fluent Bit finds them with delivery_stream_prefix \"<name_prefix>-\"."
  type        = string
  default     = "fluent-bit-logs"

  validation {
    # Stream names allow a-z A-Z 0-9 _ . - (up to 64 characters); IAM role names, which
    # add "-fluent-bit", up to 64.
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,48}$", var.name_prefix))
    error_message = "name_prefix must be 1-48 characters from a-z A-Z 0-9 _ . -."
  }
}

variable "stream_count" {
  description = "Number of delivery streams. Each takes 5 MiB/s, 2,000 requests/s and 500,000 records/s in the large regions (less elsewhere); firehose-fanout spreads the load over all of them."
  type        = number
  default     = 4

  validation {
    condition     = var.stream_count >= 1 && var.stream_count <= 100 && floor(var.stream_count) == var.stream_count
    error_message = "stream_count must be a whole number from 1 to 100."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket the streams deliver to; null makes one from name_prefix, the account ID and the region."
  type        = string
  default     = null
}

variable "bucket_force_destroy" {
  description = "Let terraform destroy the bucket even when it holds objects."
  type        = bool
  default     = false
}

variable "s3_prefix" {
  description = "Prefix of delivered objects. Firehose expands !{timestamp:…}; object names start with the delivery stream's name."
  type        = string
  default     = "logs/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
}

variable "s3_error_prefix" {
  description = "Prefix of objects for records Firehose could not deliver."
  type        = string
  default     = "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
}

variable "buffering_size" {
  description = "MiB Firehose buffers before it writes an object (1-128)."
  type        = number
  default     = 64
}

variable "buffering_interval" {
  description = "Seconds Firehose buffers before it writes an object (0-900)."
  type        = number
  default     = 60
}

variable "compression_format" {
  description = "Compression of delivered objects: UNCOMPRESSED, GZIP, ZIP, Snappy or HADOOP_SNAPPY."
  type        = string
  default     = "GZIP"
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log group where Firehose reports delivery errors."
  type        = number
  default     = 30
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (IRSA), e.g. arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE."
  type        = string
}

variable "oidc_provider_url" {
  description = "Issuer URL of the cluster's OIDC provider, with or without https://, e.g. https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE."
  type        = string
}

variable "service_account_namespace" {
  description = "Namespace of Fluent Bit's Kubernetes service account (deploy/kubernetes uses logging)."
  type        = string
  default     = "logging"
}

variable "service_account_name" {
  description = "Name of Fluent Bit's Kubernetes service account (deploy/kubernetes and deploy/helm use fluent-bit)."
  type        = string
  default     = "fluent-bit"
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
