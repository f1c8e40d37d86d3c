# The APIs tickrun and its pipelines call, enabled once by the owner (enabling needs
# serviceusage.services.enable, which neither pipeline account holds). Never disabled on destroy:
# other things in the project may use them too.

locals {
  apis = {
    "run.googleapis.com"                  = "Cloud Run: the jobs, and the services behind the gen2 functions"
    "cloudfunctions.googleapis.com"       = "the tick and dashboard functions"
    "cloudbuild.googleapis.com"           = "the ci and deploy pipelines, and the functions' container builds"
    "cloudscheduler.googleapis.com"       = "the scheduler job that fires the tick"
    "sqladmin.googleapis.com"             = "the Cloud SQL instance, and the connector's certificates"
    "artifactregistry.googleapis.com"     = "the functions' images (gcf-artifacts) and the jobs' images"
    "storage.googleapis.com"              = "the source, releases and state buckets"
    "iam.googleapis.com"                  = "service accounts, their policies and the custom roles"
    "iamcredentials.googleapis.com"       = "operators impersonating the tick (docs/deploy.md), and OIDC tokens"
    "logging.googleapis.com"              = "the builds' logs (CLOUD_LOGGING_ONLY) and the tick's"
    "cloudresourcemanager.googleapis.com" = "terraform reading and changing the project's IAM policy"
  }
}

resource "google_project_service" "enabled" {
  for_each = local.apis

  service            = each.key
  disable_on_destroy = false
}
