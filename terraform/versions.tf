# Terraform and provider versions. The state lives in a GCS bucket created by hand before the first
# `terraform init` (docs/deploy.md): `-backend-config=bucket=… -backend-config=prefix=…` at init.

terraform {
  # optional() attributes with defaults need 1.3; terraform_data (the bootstrap target) needs 1.4.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.18 added google_sql_user.database_roles, which lets the deploy account create the schema on
      # PostgreSQL 15+ without a password user (database.tf). 8.x may change resources: pin the major.
      version = ">= 7.18.0, < 8.0.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4.0, < 3.0.0"
    }
  }

  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app = var.name
  }
}
