# Cloud SQL for PostgreSQL. Nobody logs in with a password: the tick and the deploy pipeline are IAM
# database users, reached through the Cloud SQL connector (shared/db.ts), so no password exists in a
# variable, in the state or in an environment.
#
# Who owns the schema: on PostgreSQL 15+ only the database's owner may create tables in `public`, and
# a database made through the Cloud SQL API belongs to cloudsqlsuperuser. The deploy account is
# therefore a member of cloudsqlsuperuser (database_roles, below); it runs `tickrun migrate` and so owns
# every table. The tick's user gets no role here: the deploy pipeline's `grant` step (cloudbuild.deploy.yaml) gives
# it reading and writing on those tables, and nothing else (no DDL, no other database's objects).

resource "google_sql_database_instance" "tickrun" {
  name             = var.name
  region           = var.region
  database_version = var.database.version

  # Terraform refuses to destroy the instance, and so does the API (deletion_protection_enabled,
  # which also guards the console and gcloud). One variable for both: to remove everything on purpose,
  # set deletion_protection = false, apply, then destroy (docs/deploy.md).
  deletion_protection = var.deletion_protection

  settings {
    edition           = var.database.edition
    tier              = var.database.tier
    availability_type = var.database.availability_type
    disk_type         = "PD_SSD"
    disk_size         = var.database.disk_size_gb
    disk_autoresize   = true

    deletion_protection_enabled = var.deletion_protection
    # The automated backups outlive an instance deleted by mistake.
    retain_backups_on_delete = true

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }

    # Only the connector (the tick, the pipeline: shared/db.ts) or the Cloud SQL Auth Proxy (an operator)
    # may connect; a direct connection is refused (Settings.connectorEnforcement REQUIRED, Cloud SQL
    # Admin API: https://cloud.google.com/sql/docs/postgres/admin-api/rest/v1beta4/instances).
    connector_enforcement = "REQUIRED"

    # A public IP with no authorized network: the only way in is the connector (or the Cloud SQL Auth
    # Proxy), which authenticates with IAM and presents a client certificate.
    ip_configuration {
      ipv4_enabled = true
      ssl_mode     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    backup_configuration {
      enabled                        = true
      start_time                     = var.database.backup_start_time
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = var.database.log_retention_days

      backup_retention_settings {
        retained_backups = var.database.retained_backups
        retention_unit   = "COUNT"
      }
    }

    # Sunday 04:00 UTC, after the backup; a restart there costs at most a minute of ticks.
    maintenance_window {
      day          = 7
      hour         = 4
      update_track = "stable"
    }
  }
}

resource "google_sql_database" "tickrun" {
  name     = var.database.database_name
  instance = google_sql_database_instance.tickrun.name
}

# The tick's IAM database user. Cloud SQL names a service account's user by its email without
# ".gserviceaccount.com"; the function's DB_USER is this name.
resource "google_sql_user" "tick" {
  instance = google_sql_database_instance.tickrun.name
  name     = trimsuffix(local.accounts.tick, ".gserviceaccount.com")
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
  # PostgreSQL refuses to drop a role that still holds grants; leave the user to the instance's fate.
  deletion_policy = "ABANDON"
}

# The deploy pipeline's IAM database user: it creates and owns the schema (see the top of this file).
resource "google_sql_user" "deploy" {
  instance        = google_sql_database_instance.tickrun.name
  name            = trimsuffix(local.accounts.deploy, ".gserviceaccount.com")
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  database_roles  = ["cloudsqlsuperuser"]
  deletion_policy = "ABANDON"
}

# Everything the pipeline's database steps need, as one target for the first deploy, when the database
# must exist before `tickrun migrate` can run and before the function is created:
#   terraform apply -target=terraform_data.database_ready
# (targeting a resource applies everything it depends on; docs/deploy.md).
resource "terraform_data" "database_ready" {
  input = {
    instance_connection_name = google_sql_database_instance.tickrun.connection_name
    database                 = google_sql_database.tickrun.name
    deploy_db_user           = google_sql_user.deploy.name
    tick_db_user             = google_sql_user.tick.name
  }

  # The deploy account's own access to the database is the bootstrap's, made before this runs.
  depends_on = [google_project_iam_member.tick]
}
