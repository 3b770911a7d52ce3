terraform {
  required_version = ">= 1.11" # the console module: ephemeral resources and write-only attributes

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 6.20.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "vigil", ManagedBy = "terraform" }, var.tags)
  }
}
