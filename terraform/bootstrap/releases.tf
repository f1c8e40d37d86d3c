# Releases: what the ci build publishes (dist/, migrations/, package.json) under the commit SHA, and
# the only thing the deploy build runs. Between them sits this bucket: ci may create objects (not
# read, replace or delete them), deploy may read them. Neither may change the bucket.

resource "google_storage_bucket" "releases" {
  name                        = "${var.project_id}-${var.name}-releases"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # A rollback deploys an older commit's release; past the retention window it is built again.
  lifecycle_rule {
    condition {
      age = var.release_retention_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# Create only: a release once written cannot be replaced by a later ci run (objectCreator has no
# storage.objects.delete, which overwriting needs).
resource "google_storage_bucket_iam_member" "ci_publishes" {
  bucket = google_storage_bucket.releases.name
  role   = "roles/storage.objectCreator"
  member = google_service_account.ci.member
}

resource "google_storage_bucket_iam_member" "deploy_fetches" {
  bucket = google_storage_bucket.releases.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.deploy.member
}
