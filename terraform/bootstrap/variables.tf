# The same project_id, region and name as terraform/ (and cloudbuild's _REGION and _NAME): the accounts,
# roles and buckets made here are found there by these names.

variable "project_id" {
  description = "ID of the Google Cloud project tickrun runs in (the project_id of terraform/)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID such as my-project-123 (6-30 lower-case letters, digits and '-'); `gcloud projects list` shows it."
  }
}

variable "region" {
  description = "Region of the releases bucket; the region of terraform/ (var.region)."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1, the same as terraform/'s."
  }
}

variable "name" {
  description = "Prefix of every resource name; must equal terraform/'s var.name and Cloud Build's _NAME."
  type        = string
  default     = "tickrun"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 lower-case letters, digits and '-', starting with a letter and not ending with '-', the same as terraform/'s name."
  }
}

variable "job_service_accounts" {
  description = <<-EOT
    Emails of the service accounts jobs in terraform/'s var.jobs name as their own `service_account`
    (the shared NAME-jobs account is always covered). The deploy account may attach each to a job
    and the tick may run jobs as it. An account of this project: terraform/ grants the tick on it. An
    account of another project: granted here, since a custom role of this project cannot be granted
    there, and the deploy account has no say over that project's accounts.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.job_service_accounts : can(regex("^[^@ ]+@[^@ ]+\\.iam\\.gserviceaccount\\.com$", e))])
    error_message = "Each job_service_accounts entry must be a service account email such as etl@my-project.iam.gserviceaccount.com, not a member string."
  }
}

variable "release_retention_days" {
  description = "Days a release stays in the releases bucket; a deploy or a rollback needs the release of its commit."
  type        = number
  default     = 365

  validation {
    condition     = var.release_retention_days >= 7 && floor(var.release_retention_days) == var.release_retention_days
    error_message = "release_retention_days must be a whole number of days, at least 7, e.g. 365."
  }
}
