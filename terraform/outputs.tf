# What the deploy pipeline, docs/deploy.md and an operator need to know after `terraform apply`.

output "function_url" {
  description = "URL of the tick function; a POST with an identity token of an invoker runs one tick."
  value       = google_cloudfunctions2_function.tick.service_config[0].uri
}

output "function_name" {
  description = "Name of the tick function, for `gcloud functions call NAME --region REGION`."
  value       = google_cloudfunctions2_function.tick.name
}

output "instance_connection_name" {
  description = "Cloud SQL instance as PROJECT:REGION:INSTANCE, the INSTANCE_CONNECTION_NAME of tickrun commands."
  value       = google_sql_database_instance.tickrun.connection_name
}

output "database_name" {
  description = "The database tickrun uses (DB_NAME)."
  value       = google_sql_database.tickrun.name
}

output "tick_db_user" {
  description = "The tick's IAM database user (DB_USER for the tick, and for operators acting as it)."
  value       = google_sql_user.tick.name
}

output "deploy_db_user" {
  description = "The deploy pipeline's IAM database user, owner of the schema (DB_USER of the migrate step)."
  value       = google_sql_user.deploy.name
}

output "tick_service_account" {
  description = "Email of the tick function's service account."
  value       = local.accounts.tick
}

output "scheduler_service_account" {
  description = "Email of the account Cloud Scheduler calls the tick as (the only run.invoker on it)."
  value       = local.accounts.scheduler
}

output "deploy_service_account" {
  description = "Email of the account the deploy pipeline runs as and applies this configuration with (made by terraform/bootstrap/, like every account here)."
  value       = local.accounts.deploy
}

output "jobs_service_account" {
  description = "Email of the default identity of the Cloud Run jobs; grant it what the jobs need."
  value       = local.accounts.jobs
}

output "jobs" {
  description = "Full names of the Cloud Run jobs, by the id workflows use in `job:`."
  value       = { for id, job in google_cloud_run_v2_job.workflow : id => job.id }
}

output "scheduler_job" {
  description = "Name of the Cloud Scheduler job (pause it to stop ticking: gcloud scheduler jobs pause NAME --location REGION)."
  value       = google_cloud_scheduler_job.tick.name
}

output "dashboard_url" {
  description = "URL of the dashboard function; open it with dashboard_proxy_command as one of dashboard_invokers."
  value       = google_cloudfunctions2_function.dashboard.service_config[0].uri
}

locals {
  # service_config.service is the service's full resource name (projects/P/locations/R/services/S);
  # `gcloud run services proxy` takes only S, with the region apart.
  dashboard_service = reverse(split("/", google_cloudfunctions2_function.dashboard.service_config[0].service))[0]
}

output "dashboard_service" {
  description = "Name of the Cloud Run service behind the dashboard function, the SERVICE of `gcloud run services proxy SERVICE --region REGION`."
  value       = reverse(split("/", google_cloudfunctions2_function.dashboard.service_config[0].service))[0]
}

output "dashboard_region" {
  description = "Region of the dashboard's service, the --region of `gcloud run services proxy`."
  value       = var.region
}

output "dashboard_proxy_command" {
  description = "Opens the dashboard on http://localhost:8080 as the caller (one of dashboard_invokers)."
  value       = "gcloud run services proxy ${local.dashboard_service} --region ${var.region} --project ${var.project_id} --port 8080"
}
