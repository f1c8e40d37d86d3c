# Custom roles, where a predefined role carries permissions the identity never uses (the permission
# matrix, test/unit/permissions.test.ts, checks both ways). They live here, not in terraform/: an
# identity that may edit a role bound to an account it can act as can widen its own access.
#
# A custom role made in this project can be granted only within this project
# (https://cloud.google.com/iam/docs/understanding-custom-roles), hence the predefined fallback for a
# job's account in another project (accounts.tf, deploy.tf). A deleted custom role can be undeleted for 7
# days and its id stays taken for up to 30 more (the google provider's google_project_iam_custom_role
# page): a bootstrap destroyed and applied again within that time must keep var.name or wait.

locals {
  # Role ids take letters, digits, '_' and '.', not '-'.
  role_prefix = replace(var.name, "-", "_")

  custom_roles = {
    # The tick's reads of the jobs it runs: getExecution on every status check, listExecutions to
    # settle a batch and to find an attempt whose dispatch answer was lost, getJob to tell a vanished
    # execution from a vanished job (shared/executors/cloudRun.ts). roles/run.viewer has these and
    # 40 more (services, revisions, tasks, IAM policies).
    jobReader = {
      title       = "tickrun job reader"
      permissions = ["run.jobs.get", "run.executions.get", "run.executions.list", "run.tasks.list"]
    }
    # The dashboard's Load logs of a Cloud Run task (shared/logs/): entries.list over the project, whose
    # permission is logging.logEntries.list (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list).
    # roles/logging.viewer adds reading the project's log buckets, sinks, metrics and exclusions.
    logReader = {
      title       = "tickrun log reader"
      permissions = ["logging.logEntries.list"]
    }
    # Attach or run as an account and nothing else: roles/iam.serviceAccountUser adds get and list.
    actAs = {
      title       = "tickrun act as"
      permissions = ["iam.serviceAccounts.actAs"]
    }
    # The deploy account on the accounts whose policy terraform/ changes (the tick: operators; the jobs'
    # accounts: the tick's actAs), which it also attaches to functions and jobs.
    accountBinder = {
      title       = "tickrun account binder"
      permissions = ["iam.serviceAccounts.actAs", "iam.serviceAccounts.getIamPolicy", "iam.serviceAccounts.setIamPolicy"]
    }
    # The GCS backend: the state object, its lock object (created and deleted around each run), and
    # the listing of workspaces.
    stateUser = {
      title       = "tickrun terraform state user"
      permissions = ["storage.objects.create", "storage.objects.get", "storage.objects.list", "storage.objects.delete"]
    }
    # The functions' source bucket and its objects (the bundle terraform/ uploads, force_destroy),
    # granted under a condition naming that bucket (deploy.tf): project-wide, these would let the deploy
    # account replace a release in the releases bucket or empty any bucket of the project.
    sourceBucket = {
      title       = "tickrun source bucket admin"
      permissions = ["storage.buckets.get", "storage.buckets.update", "storage.buckets.delete", "storage.objects.create", "storage.objects.get", "storage.objects.list", "storage.objects.delete"]
    }
    # What terraform/ manages, by resource type; grants are made through projectIamAdmin (conditioned)
    # and accountBinder, the database reached through cloudsql.client and instanceUser (deploy.tf).
    deployer = {
      title = "tickrun deployer"
      permissions = concat(
        # google_sql_database_instance, google_sql_database, google_sql_user (IAM users)
        ["cloudsql.instances.create", "cloudsql.instances.get", "cloudsql.instances.update", "cloudsql.instances.delete"],
        ["cloudsql.databases.create", "cloudsql.databases.get", "cloudsql.databases.update", "cloudsql.databases.delete"],
        ["cloudsql.users.create", "cloudsql.users.get", "cloudsql.users.list", "cloudsql.users.update", "cloudsql.users.delete"],
        # google_storage_bucket: creating it is checked on the project; the rest is sourceBucket's
        ["storage.buckets.create"],
        # google_cloudfunctions2_function, waited on through its operation
        ["cloudfunctions.functions.create", "cloudfunctions.functions.get", "cloudfunctions.functions.update", "cloudfunctions.functions.delete", "cloudfunctions.operations.get"],
        # google_cloud_run_v2_service_iam_binding on the functions' services
        ["run.services.getIamPolicy", "run.services.setIamPolicy"],
        # google_cloud_run_v2_job (a long-running operation) and google_cloud_run_v2_job_iam_member
        ["run.jobs.create", "run.jobs.get", "run.jobs.update", "run.jobs.delete", "run.operations.get"],
        ["run.jobs.getIamPolicy", "run.jobs.setIamPolicy"],
        # google_cloud_scheduler_job, paused and resumed through var.tick.paused
        ["cloudscheduler.jobs.create", "cloudscheduler.jobs.get", "cloudscheduler.jobs.update", "cloudscheduler.jobs.delete", "cloudscheduler.jobs.pause", "cloudscheduler.jobs.enable"],
      )
    }
  }
}

resource "google_project_iam_custom_role" "tickrun" {
  for_each = local.custom_roles

  role_id     = "${local.role_prefix}.${each.key}"
  title       = each.value.title
  description = "Made by terraform/bootstrap for ${var.name}; see terraform/IAM.md."
  permissions = each.value.permissions

  depends_on = [google_project_service.enabled]
}
