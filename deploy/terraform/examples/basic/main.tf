# Four Firehose delivery streams for the Fluent Bit DaemonSet of an existing EKS cluster
# that has an IAM OIDC provider (IRSA):
#
#   terraform init && terraform apply -var cluster_name=my-cluster
#
# then put the outputs into deploy/kubernetes (or deploy/helm/values.yaml):
# fluent_bit_role_arn -> the service account's eks.amazonaws.com/role-arn annotation,
# delivery_stream_prefix -> FIREHOSE_STREAM_PREFIX, region -> AWS_REGION.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "region" {
  description = "AWS region of the cluster and the delivery streams."
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  description = "Name of the EKS cluster Fluent Bit runs on."
  type        = string
}

provider "aws" {
  region = var.region
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_iam_openid_connect_provider" "this" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

module "firehose_fanout" {
  source = "../.."

  name_prefix       = "fluent-bit-logs"
  stream_count      = 4
  oidc_provider_arn = data.aws_iam_openid_connect_provider.this.arn
  oidc_provider_url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer

  # deploy/kubernetes's namespace and service account.
  service_account_namespace = "logging"
  service_account_name      = "fluent-bit"

  tags = {
    project = "firehose-fanout"
  }
}

output "region" {
  value = var.region
}

output "delivery_stream_prefix" {
  value = module.firehose_fanout.delivery_stream_prefix
}

output "delivery_stream_names" {
  value = module.firehose_fanout.delivery_stream_names
}

output "fluent_bit_role_arn" {
  value = module.firehose_fanout.fluent_bit_role_arn
}

output "bucket_name" {
  value = module.firehose_fanout.bucket_name
}
