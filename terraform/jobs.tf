# The Cloud Run jobs workflows launch (var.jobs), and the tick's access to exactly those jobs.
# A workflow task names one by its id (`job: orders-extract`); the tick finds it in var.region of
# var.project_id (GOOGLE_CLOUD_PROJECT / TICKRUN_REGION in function.tf) unless the workflow says otherwise.
# Jobs elsewhere (a full name projects/P/locations/L/jobs/J) need the same two grants there.

resource "google_cloud_run_v2_job" "workflow" {
  for_each = var.jobs

  name     = each.key
  location = var.region
  # Jobs hold no data: removing one from var.jobs removes it.
  deletion_protection = false

  template {
    task_count = each.value.task_count
    # How many of an execution's tasks run at once (0: as many as Cloud Run can). jobs.run cannot override
    # it, so an array task's containers run this many at a time.
    parallelism = each.value.parallelism

    template {
      service_account = coalesce(each.value.service_account, local.accounts.jobs)
      timeout         = each.value.timeout
      # tickrun retries failed attempts itself (a workflow's `retries:` and `backoff:`) and counts
      # them; a retry inside Cloud Run would be invisible to it and run the attempt twice.
      max_retries = 0

      containers {
        image = each.value.image
        args  = each.value.args

        resources {
          limits = {
            cpu    = each.value.cpu
            memory = each.value.memory
          }
        }

        dynamic "env" {
          for_each = each.value.env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }
}

# Start executions of these jobs with overrides (tickrun passes TICKRUN_* in the container's env, and a
# task's args and task_count), and cancel them: roles/run.jobsExecutorWithOverrides on each job, whose
# three permissions (run.jobs.run, run.jobs.runWithOverrides, run.executions.cancel) are all used.
resource "google_cloud_run_v2_job_iam_member" "tick_runs" {
  for_each = google_cloud_run_v2_job.workflow

  project  = var.project_id
  location = each.value.location
  name     = each.value.name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = local.members.tick
}

# Read the executions of these jobs: their status on every poll, the list of a job's executions when a
# tick settles a batch or reconciles an attempt whose dispatch answer was lost, and the job itself to
# tell a vanished execution from a vanished job, and an array execution's tasks to learn which of its
# indexes failed. The bootstrap's jobReader role (run.jobs.get, run.executions.get, run.executions.list,
# run.tasks.list) on the job only: roles/run.viewer would add 40 more.
resource "google_cloud_run_v2_job_iam_member" "tick_reads" {
  for_each = google_cloud_run_v2_job.workflow

  project  = var.project_id
  location = each.value.location
  name     = each.value.name
  role     = "${local.custom_role}.jobReader"
  member   = local.members.tick
}

locals {
  # The accounts the jobs run as: the shared one, and each account a job names itself. The same
  # fallback as the job's own template (coalesce above), so the two cannot disagree.
  job_runtime_accounts = toset(concat(
    [local.accounts.jobs],
    [for j in values(var.jobs) : j.service_account if j.service_account != null],
  ))
  # Those of this project; an account of another project is granted by terraform/bootstrap/
  # (job_service_accounts there), since the deploy account has no say over that project's accounts.
  own_job_runtime_accounts = toset([for e in local.job_runtime_accounts : e if endswith(e, "@${var.project_id}.iam.gserviceaccount.com")])
}

# Running a job with overrides needs iam.serviceAccounts.actAs on the account the job runs as, besides
# run.jobs.runWithOverrides on the job (https://cloud.google.com/run/docs/execute/jobs#override-job-configuration).
# The bootstrap's actAs role, which holds that permission alone (roles/iam.serviceAccountUser adds get
# and list); on each of those accounts only, never on the project, where it would let the tick act as
# every account in it.
resource "google_service_account_iam_member" "tick_acts_as_job_runtime" {
  for_each = local.own_job_runtime_accounts

  service_account_id = "projects/${var.project_id}/serviceAccounts/${each.value}"
  role               = "${local.custom_role}.actAs"
  member             = local.members.tick
}
