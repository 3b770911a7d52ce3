terraform {
  required_version = ">= 1.11" # write-only secret_string_wo and ephemeral resources

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }
}
