# Cloud Scheduler fires the tick on var.tick.schedule (every minute by default) with an OIDC token of
# the scheduler's own account, the only principal allowed to invoke the function (function.tf).

resource "google_cloud_scheduler_job" "tick" {
  name        = "${var.name}-tick"
  region      = var.region
  description = "Runs one tickrun tick (cycles for up to ${var.tick.budget_seconds}s)"
  schedule    = var.tick.schedule
  time_zone   = "Etc/UTC"
  paused      = var.tick.paused

  # Above the budget: the same as the function's timeout (the budget plus one overrunning cycle), so
  # Scheduler never gives up on a tick that is still within its time.
  attempt_deadline = "${local.tick_timeout_seconds}s"

  # No retries: a failed tick leaves nothing half-done (the next one starts from the database), and a
  # retry landing beside the next scheduled firing would only stack ticks. The next firing is the retry.
  retry_config {
    retry_count = 0
  }

  http_target {
    uri         = google_cloudfunctions2_function.tick.service_config[0].uri
    http_method = "POST"
    # No body: the tick runs with TICKRUN_BUDGET_MS from its environment.

    oidc_token {
      service_account_email = local.accounts.scheduler
      audience              = google_cloudfunctions2_function.tick.service_config[0].uri
    }
  }

  # The first firing must find the invoker grant in place.
  depends_on = [google_cloud_run_v2_service_iam_binding.tick_invoker]
}
