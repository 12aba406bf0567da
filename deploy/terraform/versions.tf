terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.0 renamed extended_s3_configuration's buffer_* arguments to buffering_*.
      version = ">= 5.0"
    }
  }
}
