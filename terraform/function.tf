# The tick: a Cloud Functions gen2 HTTP function (functions-framework target `tick`) built from the
# esbuild bundle. `npm run build` writes dist/tick.js; Terraform zips it with a package.json that names
# the one dependency the bundle leaves out (functions-framework, whose function registry the runtime
# and the bundle must share), uploads the zip and points the function at it.

locals {
  # The packages the bundle leaves external (scripts/build.js) that the functions load, at the versions the
  # tests run: functions-framework, whose registry the runtime and the bundle share, and
  # @google-cloud/logging, which the dashboard imports only when someone loads a Cloud Run task's logs.
  package_dependencies = jsondecode(file("${path.module}/../package.json")).dependencies
  function_dependencies = {
    for name in ["@google-cloud/functions-framework", "@google-cloud/logging"] : name => local.package_dependencies[name]
  }

  # Sizing follows the budget. Every Cloud Run call of dispatch, status checks and reconciliation ends within
  # the budget (less 1 s to record the last answers: a call's deadline is cut to what is left), so a tick
  # ends within it; a one-cycle tick (budget 0) within its calls' deadlines (TICKRUN_LIST_TIMEOUT, 10 s, at
  # most three pages). 120 s covers either, the statements after them and a cold start (connector
  # handshake). The function's timeout and the scheduler's attempt deadline are both this, so a tick is
  # never cut off while it can still finish, and a stuck one ends long before the 60-minute limit.
  tick_timeout_seconds = var.tick.budget_seconds + 120

  tick_env = merge(var.tick.env, {
    TICKRUN_PROFILE          = var.tick.profile
    TICKRUN_BUDGET_MS        = tostring(var.tick.budget_seconds * 1000)
    INSTANCE_CONNECTION_NAME = google_sql_database_instance.tickrun.connection_name
    DB_USER                  = google_sql_user.tick.name
    DB_NAME                  = google_sql_database.tickrun.name
    # Where a workflow's bare job id is looked up when the workflow names no project or region.
    GOOGLE_CLOUD_PROJECT = var.project_id
    TICKRUN_REGION       = var.region
  })
}

data "archive_file" "tick" {
  type = "zip"
  # dist/ is ignored by git, like the bundle beside it.
  output_path = "${path.module}/../dist/tick-function.zip"

  source {
    filename = "tick.js"
    content  = file("${path.module}/../dist/tick.js")
  }

  source {
    filename = "package.json"
    content = jsonencode({
      name         = "tickrun-tick"
      private      = true
      main         = "tick.js"
      engines      = { node = ">=20" }
      dependencies = local.function_dependencies
    })
  }
}

resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # It only ever holds build artefacts that `terraform apply` uploads again.
  force_destroy = true
}

resource "google_storage_bucket_object" "tick" {
  # Named by content: a new bundle is a new object, which is what makes the function redeploy.
  name   = "tick-${data.archive_file.tick.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.tick.output_path
}

resource "google_cloudfunctions2_function" "tick" {
  name        = var.tick.function_name
  location    = var.region
  description = "tickrun tick: claims tasks from Cloud SQL and runs them as Cloud Run job executions"

  build_config {
    runtime         = var.tick.runtime
    entry_point     = "tick"
    service_account = "projects/${var.project_id}/serviceAccounts/${local.accounts.build}"

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.tick.name
      }
    }
  }

  service_config {
    service_account_email = local.accounts.tick
    environment_variables = local.tick_env

    # One request per instance and, by default, one instance: a scheduled tick that finds the last one
    # still running is turned away (429) instead of piling up, and the next firing tries again. Ticks are safe to
    # overlap (claims are leases), so max_instances may grow, but each instance holds a pool of the
    # profile's size, and db-f1-micro accepts 25 connections.
    max_instance_count               = var.tick.max_instances
    min_instance_count               = 0
    max_instance_request_concurrency = 1
    timeout_seconds                  = local.tick_timeout_seconds

    # The tick mostly waits on Postgres and the Cloud Run API; 512Mi (and the 1/3 vCPU Cloud Functions
    # gives it) holds the bundle and a batch of executions. CPU is billed only while a tick runs.
    available_memory = var.tick.memory
    available_cpu    = var.tick.cpu

    # Reachable from the internet, but only with an identity token of a principal holding
    # run.invoker (below): Cloud Scheduler, and project owners for a manual `gcloud functions call`.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
  }

  # The database must be migrated before a new tick runs against it: cloudbuild.deploy.yaml migrates before
  # it applies this, and the first deploy creates the database alone first (database_ready).
  depends_on = [terraform_data.database_ready]
}

# Only the scheduler's account may invoke the tick. A binding (not a member) is authoritative for the
# role on this service: any other run.invoker granted on it by hand is removed on the next apply.
resource "google_cloud_run_v2_service_iam_binding" "tick_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.tick.service_config[0].service
  role     = "roles/run.invoker"
  members  = [local.members.scheduler]
}

# The dashboard: a second function from the same bundle and the same uploaded object, under its own
# entry point. It reads and acts on the same database as the tick and cancels executions through the
# same jobs, so it runs as the tick's account rather than a new one with the same grants.
resource "google_cloudfunctions2_function" "dashboard" {
  name        = "${var.name}-dashboard"
  location    = var.region
  description = "tickrun dashboard: runs, their task graphs and timelines, workflows; trigger, cancel and retry"

  build_config {
    runtime         = var.tick.runtime
    entry_point     = "dashboard"
    service_account = "projects/${var.project_id}/serviceAccounts/${local.accounts.build}"

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.tick.name
      }
    }
  }

  service_config {
    service_account_email = local.accounts.tick
    # Two connections per instance: a page load makes a few short queries, and every instance's pool
    # counts against the database tier's connection limit beside the tick's.
    environment_variables = merge(local.tick_env, { TICKRUN_POOL_SIZE = "2" })

    max_instance_count               = 2
    min_instance_count               = 0
    max_instance_request_concurrency = 1
    timeout_seconds                  = 60
    available_memory                 = "256Mi"

    # Reachable only with an identity token of a principal holding run.invoker (below); people open it
    # through `gcloud run services proxy`, which adds their token (README, "Dashboard").
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
  }

  depends_on = [terraform_data.database_ready]
}

# Only the listed people and groups may open the dashboard. Authoritative for run.invoker on this
# service, like the tick's; with nobody listed there is no binding, and only principals holding
# run.invoker on the whole project (owners, run.admin) reach it.
resource "google_cloud_run_v2_service_iam_binding" "dashboard_invoker" {
  count = length(var.dashboard_invokers) > 0 ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.dashboard.service_config[0].service
  role     = "roles/run.invoker"
  members  = var.dashboard_invokers
}
