const EXECUTION_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+)\/executions\/([^/]+)$/;

/** Where to look at one Cloud Run execution in the Google Cloud console. */
export interface ExecutionLinks {
  consoleUrl: string;
  logsUrl: string;
}

/**
 * Console links of a Cloud Run execution (`projects/P/locations/L/jobs/J/executions/E`): its page, and a
 * Logs Explorer query for its containers' logs. Null for other names (process executions).
 */
export function executionLinks(executionName: string | null): ExecutionLinks | null {
  const m = executionName ? EXECUTION_NAME.exec(executionName) : null;
  if (!m) return null;
  const [, project, location, job, execution] = m;
  const query = [
    'resource.type="cloud_run_job"',
    `resource.labels.job_name="${job}"`,
    `resource.labels.location="${location}"`,
    `labels."run.googleapis.com/execution_name"="${execution}"`,
  ].join('\n');
  const p = encodeURIComponent(project);
  return {
    consoleUrl: `https://console.cloud.google.com/run/jobs/executions/details/${encodeURIComponent(location)}/${encodeURIComponent(execution)}/tasks?project=${p}`,
    logsUrl: `https://console.cloud.google.com/logs/query;query=${encodeURIComponent(query)};duration=P30D?project=${p}`,
  };
}
