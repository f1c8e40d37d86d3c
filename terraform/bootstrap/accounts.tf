# Every tickrun service account is made here, not in terraform/: the deploy account then needs no
# iam.serviceAccounts.create, nor roles/iam.serviceAccountAdmin on the project, which would let it
# change the policy of every account in the project and so mint tokens as any of them.
#
#   tick       runs the tick and dashboard functions; operators impersonate it
#   scheduler  signs the OIDC token of each scheduled call to the tick
#   jobs       what the Cloud Run jobs run as unless a job names its own account; holds no roles
#   build      builds the functions' containers (Cloud Functions gen2 runs a Cloud Build for it)
#   ci         runs cloudbuild.yaml: install, build, tests, publishes a release (ci.tf)
#   deploy     runs cloudbuild.deploy.yaml: migrations, then terraform apply of terraform/ (deploy.tf)

locals {
  accounts = {
    tick      = { display = "tickrun tick function", about = "Runs the tick and dashboard: reads and writes tickrun's tables, runs and watches the Cloud Run jobs of terraform/jobs.tf." }
    scheduler = { display = "tickrun scheduler", about = "Identity of Cloud Scheduler's calls to the tick function (OIDC); may invoke that function and nothing else." }
    jobs      = { display = "tickrun jobs", about = "Default identity of the Cloud Run jobs workflows launch; grant it what the jobs themselves need." }
    build     = { display = "tickrun function build", about = "Builds the tick function's container from the uploaded bundle." }
    ci        = { display = "tickrun ci", about = "Runs cloudbuild.yaml: install, build, tests; publishes the release to the releases bucket." }
    deploy    = { display = "tickrun deploy pipeline", about = "Runs cloudbuild.deploy.yaml: migrations as the schema's owner, tickrun apply, terraform apply of terraform/." }
  }
}

resource "google_service_account" "tick" {
  account_id   = "${var.name}-tick"
  display_name = local.accounts.tick.display
  description  = local.accounts.tick.about

  # On a new project the IAM API is enabled in the same apply.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.name}-scheduler"
  display_name = local.accounts.scheduler.display
  description  = local.accounts.scheduler.about

  # On a new project the IAM API is enabled in the same apply.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "jobs" {
  account_id   = "${var.name}-jobs"
  display_name = local.accounts.jobs.display
  description  = local.accounts.jobs.about

  # On a new project the IAM API is enabled in the same apply.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "build" {
  account_id   = "${var.name}-build"
  display_name = local.accounts.build.display
  description  = local.accounts.build.about

  # On a new project the IAM API is enabled in the same apply.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "ci" {
  account_id   = "${var.name}-ci"
  display_name = local.accounts.ci.display
  description  = local.accounts.ci.about

  # On a new project the IAM API is enabled in the same apply.
  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "deploy" {
  account_id   = "${var.name}-deploy"
  display_name = local.accounts.deploy.display
  description  = local.accounts.deploy.about

  # On a new project the IAM API is enabled in the same apply.
  depends_on = [google_project_service.enabled]
}

# What the functions' build needs: write its logs, push the image to the gcf-artifacts repository, read
# the uploaded source (Cloud Functions copies it into a bucket of its own first). Granted here rather
# than in terraform/, so the deploy account's projectIamAdmin need not reach these project-wide roles
# (with it, it could hand storage.objectAdmin on every bucket to anyone).
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectAdmin"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# The tick's account reads log entries for the dashboard, which runs as it: entries are read over the
# project (a log view of one job would need a log bucket of tickrun's own), so this grant sits here.
resource "google_project_iam_member" "tick_reads_logs" {
  project = var.project_id
  role    = google_project_iam_custom_role.tickrun["logReader"].name
  member  = google_service_account.tick.member
}

# A job's own account of another project: the tick may run jobs as it (jobs:run with overrides needs
# iam.serviceAccounts.actAs on it, https://cloud.google.com/run/docs/execute/jobs#override-job-configuration).
# roles/iam.serviceAccountUser because a custom role of this project cannot be granted on another
# project's resources; it also carries iam.serviceAccounts.get and list on that one account.
resource "google_service_account_iam_member" "tick_acts_as_foreign_job_runtime" {
  for_each = local.foreign_job_accounts

  service_account_id = "projects/-/serviceAccounts/${each.value}"
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.tick.member
}

locals {
  own_account_suffix   = "@${var.project_id}.iam.gserviceaccount.com"
  own_job_accounts     = toset([for e in var.job_service_accounts : e if endswith(e, local.own_account_suffix)])
  foreign_job_accounts = toset([for e in var.job_service_accounts : e if !endswith(e, local.own_account_suffix)])
}
