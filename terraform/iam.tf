# The service accounts this configuration uses, and the grants that can only be made on the project.
# Grants on one resource (a job, the function, an account) sit beside that resource in its own file.
#
# The accounts themselves, the custom roles, and every grant to the deploy account that applies this
# configuration are made by terraform/bootstrap/, which a project owner applies first: the deploy
# account can then neither create accounts nor widen its own access (IAM.md).
#
#   tick       the tick function's identity: its database user, and the runner of the jobs in jobs.tf
#   scheduler  signs the OIDC token of each scheduled call; the only principal given run.invoker on the tick
#   jobs       what the Cloud Run jobs run as unless a job names its own account; holds no roles
#   build      builds the function's container (Cloud Functions gen2 runs a Cloud Build for it)
#   deploy     runs the deploy pipeline: migrations as the schema's owner, `tickrun apply`, then terraform

locals {
  # The bootstrap's accounts, by the names it gives them.
  accounts = { for a in ["tick", "scheduler", "jobs", "build", "deploy"] : a => "${var.name}-${a}@${var.project_id}.iam.gserviceaccount.com" }
  members  = { for a, email in local.accounts : a => "serviceAccount:${email}" }
  # The bootstrap's custom roles (terraform/bootstrap/roles.tf), by the same prefix rule.
  custom_role = "projects/${var.project_id}/roles/${replace(var.name, "-", "_")}"

  instance_resource_name = "projects/${var.project_id}/instances/${google_sql_database_instance.tickrun.name}"

  # The tick reaches Cloud SQL only through the connector (cloudsql.client: connect and read the
  # instance's metadata) as an IAM database user (cloudsql.instanceUser: log in). Both are project
  # roles; the condition narrows them to tickrun's instance.
  tick_project_roles = ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]
}

resource "google_project_iam_member" "tick" {
  for_each = toset(local.tick_project_roles)

  project = var.project_id
  role    = each.value
  member  = local.members.tick

  condition {
    title       = "${var.name} instance only"
    description = "Only the Cloud SQL instance of this tickrun deployment."
    expression  = "resource.name == \"${local.instance_resource_name}\""
  }
}

# Operators act as the tick to run tickrun commands against the database (docs/deploy.md), so they
# get exactly the tick's access rather than a database user of their own.
resource "google_service_account_iam_member" "operators_act_as_tick" {
  for_each = toset(var.operators)

  service_account_id = "projects/${var.project_id}/serviceAccounts/${local.accounts.tick}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}
