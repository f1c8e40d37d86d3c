# The service accounts, and the grants that can only be made on the project. Grants on one resource
# (a job, the function, the source bucket) sit beside that resource in its own file.
#
#   tick       the tick function's identity: its database user, and the runner of the jobs in jobs.tf
#   scheduler  signs the OIDC token of each scheduled call; the only principal given run.invoker on the tick
#   jobs       what the Cloud Run jobs run as unless a job names its own account; holds no roles
#   build      builds the function's container (Cloud Functions gen2 runs a Cloud Build for it)
#   deploy     runs cloudbuild.yaml: migrations as the schema's owner, `tickrun apply`, then terraform

resource "google_service_account" "tick" {
  account_id   = "${var.name}-tick"
  display_name = "tickrun tick function"
  description  = "Runs the tick: reads and writes tickrun's tables, runs and watches the Cloud Run jobs in jobs.tf."
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.name}-scheduler"
  display_name = "tickrun scheduler"
  description  = "Identity of Cloud Scheduler's calls to the tick function (OIDC); may invoke that function and nothing else."
}

resource "google_service_account" "jobs" {
  account_id   = "${var.name}-jobs"
  display_name = "tickrun jobs"
  description  = "Default identity of the Cloud Run jobs workflows launch; grant it what the jobs themselves need."
}

resource "google_service_account" "build" {
  account_id   = "${var.name}-build"
  display_name = "tickrun function build"
  description  = "Builds the tick function's container from the uploaded bundle."
}

resource "google_service_account" "deploy" {
  account_id   = "${var.name}-deploy"
  display_name = "tickrun deploy pipeline"
  description  = "Runs cloudbuild.yaml: migrations, tickrun apply, terraform apply."
}

locals {
  instance_resource_name = "projects/${var.project_id}/instances/${google_sql_database_instance.tickrun.name}"

  # The tick reaches Cloud SQL only through the connector (cloudsql.client: connect and read the
  # instance's metadata) as an IAM database user (cloudsql.instanceUser: log in). Both are project
  # roles; the condition narrows them to tickrun's instance.
  tick_project_roles = ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]

  # What the function's build needs: write its logs, push the image to the gcf-artifacts repository,
  # read the uploaded source (Cloud Functions copies it into a bucket of its own first).
  build_project_roles = ["roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectAdmin"]

  # The deploy account applies this whole configuration, so it administers what the configuration
  # manages, and nothing it does not: no owner or editor, no other products. It also connects to the
  # database as the schema's owner, and writes the build's logs (Cloud Build, CLOUD_LOGGING_ONLY).
  deploy_project_roles = [
    "roles/cloudsql.admin",
    "roles/cloudsql.client",
    "roles/cloudsql.instanceUser",
    "roles/cloudfunctions.developer",
    "roles/run.admin",
    "roles/cloudscheduler.admin",
    "roles/storage.admin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/resourcemanager.projectIamAdmin",
    "roles/logging.logWriter",
  ]
}

resource "google_project_iam_member" "tick" {
  for_each = toset(local.tick_project_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.tick.member

  condition {
    title       = "${var.name} instance only"
    description = "Only the Cloud SQL instance of this tickrun deployment."
    expression  = "resource.name == \"${local.instance_resource_name}\""
  }
}

resource "google_project_iam_member" "build" {
  for_each = toset(local.build_project_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

resource "google_project_iam_member" "deploy" {
  for_each = toset(local.deploy_project_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.deploy.member
}

# Operators act as the tick to run tickrun commands against the database (docs/deploy.md), so they
# get exactly the tick's access rather than a database user of their own.
resource "google_service_account_iam_member" "operators_act_as_tick" {
  for_each = toset(var.operators)

  service_account_id = google_service_account.tick.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}
