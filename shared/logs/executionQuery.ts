const EXECUTION_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+)\/executions\/([^/]+)$/;

/** A Cloud Run execution's full name, split. */
export interface ExecutionParts {
  project: string;
  location: string;
  job: string;
  execution: string;
}

/** The parts of `projects/P/locations/L/jobs/J/executions/E`; null for other names (process executions). */
export function executionParts(name: string | null): ExecutionParts | null {
  const m = name ? EXECUTION_NAME.exec(name) : null;
  return m ? { project: m[1], location: m[2], job: m[3], execution: m[4] } : null;
}

/**
 * The query for one execution's container logs: the monitored resource `cloud_run_job` (labels job_name and
 * location) and the entry label `run.googleapis.com/execution_name`, which holds the execution's id. Google's
 * own Logging client labels a job's entries the same way (google-cloud-logging for Java,
 * MonitoredResourceUtil.Label: CloudRunJobName, CloudRunLocation, CloudRunJobExecutionName,
 * CloudRunJobTaskIndex, CloudRunJobTaskAttempt), and gcloud reads a job's logs by execution
 * (cloud.google.com/sdk/gcloud/reference/beta/run/jobs/executions/logs).
 * The task index and attempt labels are left out: an execution's own tasks (task_count) all belong to the
 * tickrun attempt. Terms are joined by AND (cloud.google.com/logging/docs/view/logging-query-language).
 */
export function executionLogTerms({ job, location, execution }: ExecutionParts): string[] {
  return [
    'resource.type="cloud_run_job"',
    `resource.labels.job_name="${job}"`,
    `resource.labels.location="${location}"`,
    `labels."run.googleapis.com/execution_name"="${execution}"`,
  ];
}
