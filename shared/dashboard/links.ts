import { executionLogTerms, executionParts } from '../logs/executionQuery';

/** Where to look at one Cloud Run execution in the Google Cloud console. */
export interface ExecutionLinks {
  consoleUrl: string;
  logsUrl: string;
}

/**
 * Console links of a Cloud Run execution (`projects/P/locations/L/jobs/J/executions/E`): its page, and a
 * Logs Explorer query for its containers' logs (the one `tickrun logs` sends to Cloud Logging). Null for
 * other names (process executions).
 */
export function executionLinks(executionName: string | null): ExecutionLinks | null {
  const parts = executionParts(executionName);
  if (!parts) return null;
  const { project, location, execution } = parts;
  const query = executionLogTerms(parts).join('\n');
  const p = encodeURIComponent(project);
  return {
    consoleUrl: `https://console.cloud.google.com/run/jobs/executions/details/${encodeURIComponent(location)}/${encodeURIComponent(execution)}/tasks?project=${p}`,
    logsUrl: `https://console.cloud.google.com/logs/query;query=${encodeURIComponent(query)};duration=P30D?project=${p}`,
  };
}
