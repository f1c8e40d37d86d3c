# What the pipelines and terraform/ need from the bootstrap.

output "ci_service_account" {
  description = "Email of the account cloudbuild.yaml runs as (gcloud builds submit --service-account)."
  value       = google_service_account.ci.email
}

output "deploy_service_account" {
  description = "Email of the account cloudbuild.deploy.yaml runs as; it applies terraform/."
  value       = google_service_account.deploy.email
}

output "releases_bucket" {
  description = "Bucket the ci build publishes releases to (under the commit SHA) and the deploy build reads."
  value       = google_storage_bucket.releases.name
}

output "service_accounts" {
  description = "Email of every tickrun service account, by role (tick, scheduler, jobs, build, ci, deploy)."
  value = {
    for k, sa in {
      tick      = google_service_account.tick
      scheduler = google_service_account.scheduler
      jobs      = google_service_account.jobs
      build     = google_service_account.build
      ci        = google_service_account.ci
      deploy    = google_service_account.deploy
    } : k => sa.email
  }
}

output "custom_roles" {
  description = "Ids of the custom roles (projects/PROJECT/roles/NAME.ROLE) terraform/ grants on its jobs and accounts."
  value       = { for k, r in google_project_iam_custom_role.tickrun : k => r.id }
}
