# Inputs. Settings that belong together are one typed object whose attributes all have defaults, so
# `terraform apply -var project_id=…` is a complete deployment and a tfvars file states only what differs.

variable "project_id" {
  description = "ID of the Google Cloud project everything is created in (not its number or display name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID such as my-project-123 (6-30 lower-case letters, digits and '-'); `gcloud projects list` shows it."
  }
}

variable "region" {
  description = "Region of the database, the tick function, its scheduler job and the Cloud Run jobs."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1 (`gcloud run regions list`)."
  }
}

variable "name" {
  description = "Prefix of every resource name (Cloud SQL instance, service accounts, buckets, scheduler job). Cloud Build's _NAME substitution must be the same."
  type        = string
  default     = "tickrun"

  validation {
    # Service account ids are at most 30 characters, and the longest suffix used is "-scheduler".
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 lower-case letters, digits and '-', starting with a letter and not ending with '-', e.g. tickrun or tickrun-prod."
  }
}

variable "database" {
  description = <<-EOT
    The Cloud SQL for PostgreSQL instance and database. version: POSTGRES_17 is what the tests run on
    (embedded-postgres 17). tier and edition: shared-core and custom tiers (db-f1-micro, db-g1-small,
    db-custom-1-3840) need ENTERPRISE; ENTERPRISE_PLUS takes only db-perf-optimized-N-* tiers.
    Backups run daily at backup_start_time (UTC) and keep retained_backups of them; transaction logs
    for point-in-time recovery are kept log_retention_days days.
  EOT
  type = object({
    version            = optional(string, "POSTGRES_17")
    edition            = optional(string, "ENTERPRISE")
    tier               = optional(string, "db-f1-micro")
    availability_type  = optional(string, "ZONAL")
    disk_size_gb       = optional(number, 10)
    database_name      = optional(string, "tickrun")
    backup_start_time  = optional(string, "03:00")
    retained_backups   = optional(number, 7)
    log_retention_days = optional(number, 7)
  })
  default = {}

  validation {
    condition     = contains(["POSTGRES_15", "POSTGRES_16", "POSTGRES_17"], var.database.version)
    error_message = "database.version must be POSTGRES_15, POSTGRES_16 or POSTGRES_17 (the migrations use PostgreSQL 15+ features; the tests run 17)."
  }
  validation {
    condition     = contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.database.edition)
    error_message = "database.edition must be ENTERPRISE or ENTERPRISE_PLUS."
  }
  validation {
    condition = (
      var.database.edition == "ENTERPRISE_PLUS"
      ? startswith(var.database.tier, "db-perf-optimized-")
      : can(regex("^db-(f1-micro|g1-small|custom-[0-9]+-[0-9]+)$", var.database.tier))
    )
    error_message = "database.tier does not fit database.edition: use db-f1-micro, db-g1-small or db-custom-CPUS-MEMORY_MB with ENTERPRISE, and db-perf-optimized-N-CPUS with ENTERPRISE_PLUS."
  }
  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.database.availability_type)
    error_message = "database.availability_type must be ZONAL (one zone) or REGIONAL (high availability, about twice the price)."
  }
  validation {
    condition     = var.database.disk_size_gb >= 10 && floor(var.database.disk_size_gb) == var.database.disk_size_gb
    error_message = "database.disk_size_gb must be a whole number of GB, at least 10; the disk grows by itself after that."
  }
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database.database_name))
    error_message = "database.database_name must be lower-case letters, digits and '_', starting with a letter; Cloud Build's _DB_NAME substitution must be the same."
  }
  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):00$", var.database.backup_start_time))
    error_message = "database.backup_start_time must be a whole hour in UTC written HH:00, e.g. 03:00."
  }
  validation {
    condition     = var.database.retained_backups >= 1 && var.database.retained_backups <= 365
    error_message = "database.retained_backups must be from 1 to 365 daily backups."
  }
  validation {
    condition = var.database.log_retention_days >= 1 && var.database.log_retention_days <= (
      var.database.edition == "ENTERPRISE_PLUS" ? 35 : 7
    )
    error_message = "database.log_retention_days (point-in-time recovery window) must be from 1 to 7 days with ENTERPRISE, 1 to 35 with ENTERPRISE_PLUS."
  }
}

variable "deletion_protection" {
  description = "Whether Terraform and the Cloud SQL API refuse to delete the instance. Set false, apply, then destroy to remove tickrun on purpose; the automated backups are kept (retain_backups_on_delete) and keep costing until deleted."
  type        = bool
  default     = true
}

variable "tick" {
  description = <<-EOT
    The tick function and the scheduler job that calls it. schedule: five-field cron in UTC (every
    minute by default; Cloud Scheduler fires at most once a minute). budget_seconds: how long one tick
    keeps cycling (TICKRUN_BUDGET_MS); keep it under the schedule's period, so ticks do not overlap:
    50 s under a one-minute schedule gives a cycle every poll interval. 0 is one cycle per firing, the
    cheapest at idle. profile: TICKRUN_PROFILE. env: further TICKRUN_* overrides (see `tickrun --help`).
    max_instances x the profile's pool size must stay under the database tier's connection limit.
  EOT
  type = object({
    function_name  = optional(string, "tick")
    schedule       = optional(string, "* * * * *")
    budget_seconds = optional(number, 50)
    profile        = optional(string, "optimized")
    runtime        = optional(string, "nodejs22")
    memory         = optional(string, "512Mi")
    cpu            = optional(string)
    max_instances  = optional(number, 1)
    paused         = optional(bool, false)
    env            = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}[a-z0-9]$", var.tick.function_name))
    error_message = "tick.function_name must be lower-case letters, digits and '-', starting with a letter, at most 50 characters."
  }
  validation {
    condition     = can(regex("^\\S+( \\S+){4}$", var.tick.schedule))
    error_message = "tick.schedule must be a five-field cron with single spaces, e.g. \"* * * * *\" (every minute) or \"*/5 * * * *\"."
  }
  validation {
    # The scheduler's attempt deadline is the budget plus a margin (function.tf) and may not pass 30 minutes.
    condition     = var.tick.budget_seconds >= 0 && var.tick.budget_seconds <= 1680 && floor(var.tick.budget_seconds) == var.tick.budget_seconds
    error_message = "tick.budget_seconds must be a whole number from 0 (one cycle per tick) to 1680; under a one-minute schedule use at most 50."
  }
  validation {
    condition     = contains(["optimized", "default", "high_throughput"], var.tick.profile)
    error_message = "tick.profile must be optimized, default or high_throughput (the TICKRUN_PROFILE values)."
  }
  validation {
    condition     = contains(["nodejs20", "nodejs22"], var.tick.runtime)
    error_message = "tick.runtime must be nodejs20 or nodejs22 (the bundle targets Node 20)."
  }
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.tick.memory))
    error_message = "tick.memory must be a size such as 256Mi, 512Mi or 1Gi."
  }
  validation {
    condition     = var.tick.cpu == null || can(regex("^(0\\.[0-9]{1,3}|[1-8])$", coalesce(var.tick.cpu, "1")))
    error_message = "tick.cpu must be left unset (derived from memory) or a number of vCPUs such as 0.333, 1 or 2."
  }
  validation {
    condition     = var.tick.max_instances >= 1 && var.tick.max_instances <= 10 && floor(var.tick.max_instances) == var.tick.max_instances
    error_message = "tick.max_instances must be a whole number from 1 to 10; 1 keeps ticks one at a time and database connections at one pool."
  }
  validation {
    condition = alltrue([
      for k in keys(var.tick.env) : startswith(k, "TICKRUN_") && !contains(["TICKRUN_PROFILE", "TICKRUN_BUDGET_MS"], k)
    ])
    error_message = "tick.env must hold only TICKRUN_* settings, e.g. TICKRUN_BATCH_SIZE; use tick.profile and tick.budget_seconds for TICKRUN_PROFILE and TICKRUN_BUDGET_MS. The database variables come from database.tf."
  }
}

variable "jobs" {
  description = <<-EOT
    The Cloud Run jobs workflows launch, by job id (what a workflow task names in `job:`). Each runs
    `image` with `cpu`/`memory` limits; `timeout` bounds one attempt (tickrun's own `timeout:` in the
    workflow can cancel it earlier); Cloud Run's own retries are off (max_retries 0): tickrun retries.
    `parallelism` is how many of an execution's tasks run at once (0: as many as Cloud Run can), for an
    array task's executions too: jobs.run cannot override it.
    `service_account` is the email the job runs as; unset, the shared jobs account, which holds no roles.
    A job's own account must also be listed in terraform/bootstrap's job_service_accounts (applied by a
    project owner first): the deploy account may attach, and the tick run jobs as, only the accounts there.
    Example: { orders-extract = { image = "us-docker.pkg.dev/my-project/etl/extract:1.4", memory = "2Gi" } }
  EOT
  type = map(object({
    image           = string
    cpu             = optional(string, "1")
    memory          = optional(string, "512Mi")
    timeout         = optional(string, "3600s")
    task_count      = optional(number, 1)
    parallelism     = optional(number, 0)
    args            = optional(list(string))
    env             = optional(map(string), {})
    service_account = optional(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for id in keys(var.jobs) : can(regex("^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$", id))])
    error_message = "Each key of jobs must be a Cloud Run job id: lower-case letters, digits and '-', starting with a letter, at most 49 characters, e.g. orders-extract."
  }
  validation {
    # Cloud Run: parallelism "must be <= taskCount" (ExecutionTemplate, Admin API v2); 0 means the most it can.
    condition     = alltrue([for j in values(var.jobs) : j.parallelism >= 0 && j.parallelism <= j.task_count && floor(j.parallelism) == j.parallelism])
    error_message = "Each job's parallelism must be a whole number from 0 (as many as Cloud Run can) to its task_count (Cloud Run refuses more); raise task_count with it."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : length(trimspace(j.image)) > 0])
    error_message = "Each job needs an image, e.g. us-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : contains(["1", "2", "4", "6", "8"], j.cpu)])
    error_message = "Each job's cpu must be \"1\", \"2\", \"4\", \"6\" or \"8\" (Cloud Run jobs take whole vCPUs; 4 needs memory of 2Gi or more, 6 and 8 need 4Gi)."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : can(regex("^[0-9]+(Mi|Gi)$", j.memory))])
    error_message = "Each job's memory must be a size such as 512Mi or 2Gi."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : can(regex("^[0-9]+s$", j.timeout)) && try(tonumber(trimsuffix(j.timeout, "s")) <= 604800, false)])
    error_message = "Each job's timeout must be whole seconds written like 600s, at most 604800s (7 days)."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : j.task_count >= 1 && floor(j.task_count) == j.task_count])
    error_message = "Each job's task_count must be a whole number, at least 1 (a workflow's task_count overrides it per run)."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : alltrue([for k in keys(j.env) : !startswith(k, "TICKRUN_")])])
    error_message = "A job's env must not set TICKRUN_* variables: tickrun sets those on every execution; rename the variable."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : j.service_account == null || can(regex("^[^@ ]+@[^@ ]+\\.iam\\.gserviceaccount\\.com$", coalesce(j.service_account, "x@x.iam.gserviceaccount.com")))])
    error_message = "A job's service_account must be a service account email (NAME@PROJECT.iam.gserviceaccount.com), not a member string."
  }
}

variable "operators" {
  description = "Principals (user:…, group:…) allowed to act as the tick's service account, to run tickrun commands (status, trigger, cancel) against the Cloud SQL database from their machine; see docs/deploy.md."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.operators : can(regex("^(user|group|serviceAccount):[^@ ]+@[^@ ]+$", m))])
    error_message = "Each operator must be a named principal such as user:alice@example.com or group:ops@example.com; allUsers, allAuthenticatedUsers and domain: are refused."
  }
}

variable "dashboard_invokers" {
  description = "Principals (user:…, group:…, serviceAccount:…) allowed to open the dashboard function (roles/run.invoker on its service); they reach it with `gcloud run services proxy`. Anyone listed can also trigger, cancel and retry runs from it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.dashboard_invokers : can(regex("^(user|group|serviceAccount):[^@ ]+@[^@ ]+$", m))])
    error_message = "Each dashboard_invokers entry must be a named principal such as user:alice@example.com or group:ops@example.com; allUsers, allAuthenticatedUsers and domain: are refused, since the dashboard can trigger and cancel runs."
  }
}
