# The bootstrap: what a project owner applies once, before the first deploy, and again whenever tickrun's
# own permissions change. It creates every tickrun service account, the custom roles, the grants of the
# ci and deploy accounts, the releases bucket, and enables the APIs. The deploy account applies
# terraform/ and nothing here, so it can never widen its own grants (IAM.md).
#
# State: local (terraform.tfstate beside this file, on the owner's machine or wherever the owner keeps
# it), not in the tfstate bucket the deploy account writes: a state the deploy account could edit would
# be a way to steer the owner's next apply. It holds no secret (no keys are made here), and everything
# in it can be imported again if it is lost.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The same range as terraform/versions.tf: one provider behaviour for both modules.
      version = ">= 7.18.0, < 8.0.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app = var.name
  }
}
