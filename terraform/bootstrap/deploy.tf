# The deploy account applies terraform/ and runs the database steps. Everything it holds is here, out
# of its own reach. What it could still do if it were compromised: terraform/IAM.md.

locals {
  role_id = { for k, r in google_project_iam_custom_role.tickrun : k => r.id }

  # The roles terraform/ grants on the project (google_project_iam_member there); the only roles the
  # deploy account may add to or remove from the project's policy. test/unit/bootstrap.test.ts keeps
  # this list equal to what terraform/ grants, so the two cannot drift.
  main_project_roles = ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]

  instance_resource_name = "projects/${var.project_id}/instances/${var.name}"
}

# Administers what terraform/ manages, and nothing it does not (roles.tf, deployer).
resource "google_project_iam_member" "deploy_administers" {
  project = var.project_id
  role    = local.role_id.deployer
  member  = google_service_account.deploy.member
}

# The functions' source bucket of terraform/ (function.tf names it the same way) and its objects, and
# no other bucket. Cloud
# Storage names a bucket projects/_/buckets/NAME and its objects .../NAME/objects/OBJECT
# (https://cloud.google.com/iam/docs/conditions-resource-attributes).
resource "google_project_iam_member" "deploy_source_bucket" {
  project = var.project_id
  role    = local.role_id.sourceBucket
  member  = google_service_account.deploy.member

  condition {
    title       = "${var.name} source bucket only"
    description = "Only the bucket terraform/ uploads the functions' bundle to, and its objects."
    expression  = "resource.name == \"projects/_/buckets/${var.project_id}-${var.name}-source\" || resource.name.startsWith(\"projects/_/buckets/${var.project_id}-${var.name}-source/\")"
  }
}

# Builds run as a chosen account must write their own logs (CLOUD_LOGGING_ONLY).
resource "google_project_iam_member" "deploy_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.deploy.member
}

# Grants and revokes on the project only the roles terraform/ grants there
# (https://cloud.google.com/iam/docs/setting-limits-on-granting-roles). Without the condition,
# projectIamAdmin could grant roles/owner to anyone, itself included.
resource "google_project_iam_member" "deploy_grants" {
  project = var.project_id
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = google_service_account.deploy.member

  condition {
    title       = "${var.name} project roles only"
    description = "Only the roles terraform/ grants on the project."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(${jsonencode(local.main_project_roles)})"
  }
}

# migrate, grant and apply reach the database through the connector as the schema owner's IAM
# database user: connect and read the instance (cloudsql.client), log in (cloudsql.instanceUser).
# Both narrowed to tickrun's instance, which terraform/ names var.name.
resource "google_project_iam_member" "deploy_database" {
  for_each = toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.deploy.member

  condition {
    title       = "${var.name} instance only"
    description = "Only the Cloud SQL instance of this tickrun deployment."
    expression  = "resource.name == \"${local.instance_resource_name}\""
  }
}

# Attaches the scheduler's account to the scheduler job's OIDC token and the build account to the
# functions' builds: actAs only.
resource "google_service_account_iam_member" "deploy_attaches" {
  for_each = {
    scheduler = google_service_account.scheduler.name
    build     = google_service_account.build.name
  }

  service_account_id = each.value
  role               = local.role_id.actAs
  member             = google_service_account.deploy.member
}

# Attaches the tick's account to the functions and the jobs' accounts to the jobs, and sets the
# policies terraform/ keeps on them (operators on the tick; the tick's actAs on the jobs' accounts).
resource "google_service_account_iam_member" "deploy_binds" {
  for_each = merge(
    { tick = google_service_account.tick.name, jobs = google_service_account.jobs.name },
    { for e in local.own_job_accounts : e => "projects/${var.project_id}/serviceAccounts/${e}" },
  )

  service_account_id = each.value
  role               = local.role_id.accountBinder
  member             = google_service_account.deploy.member
}

# A job's account of another project: attach it to the job (actAs). A custom role of this project
# cannot be granted there; the tick's own grant on it is made in accounts.tf, not by terraform/.
resource "google_service_account_iam_member" "deploy_attaches_foreign" {
  for_each = local.foreign_job_accounts

  service_account_id = "projects/-/serviceAccounts/${each.value}"
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deploy.member
}

# terraform/'s state, in the bucket made by hand before the first `terraform init` (docs/deploy.md).
resource "google_storage_bucket_iam_member" "deploy_state" {
  bucket = "${var.project_id}-tfstate"
  role   = local.role_id.stateUser
  member = google_service_account.deploy.member
}
