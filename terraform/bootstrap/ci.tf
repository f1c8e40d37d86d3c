# The ci account runs code from any commit (npm ci runs install scripts, the tests run everything), so
# it holds nothing a release could abuse: its build logs (a build run as a chosen account logs with
# CLOUD_LOGGING_ONLY) and creating objects in the releases bucket (releases.tf).

resource "google_project_iam_member" "ci_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.ci.member
}
