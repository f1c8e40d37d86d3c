/**
 * Cloud Run's limits as the emulator enforces them, per project and region (the location of the request's
 * path), each from Google's documentation:
 * - Per-minute API quotas. "Cloud Run quotas and limits" (cloud.google.com/run/quotas), Cloud Run Admin
 *   API: "Job run requests per minute per region" and "Read requests per minute per region", whose values
 *   are the project's own. The page does not say whether a minute is a rolling or a calendar one; the
 *   emulator takes the stricter reading: at most N requests accepted in ANY 60 s. A refused request is not
 *   counted (an assumption: the docs do not say; counting it would only make a client's backoff longer).
 * - The refusal of a rate quota: HTTP 429, status RESOURCE_EXHAUSTED, message "Quota exceeded for quota
 *   metric '…' and limit '…' of service '…' for consumer '…'." as Google APIs word it, with a
 *   google.rpc.ErrorInfo of reason RATE_LIMIT_EXCEEDED, domain googleapis.com and the metadata keys
 *   consumer, service, quota_metric, quota_limit (google/api/error_reason.proto, RATE_LIMIT_EXCEEDED:
 *   "The request is denied because there is not enough rate quota for the consumer"), and a google.rpc.Help
 *   link to request more (cloud.google.com/apis/design/errors, "Error details").
 * - Running executions: "Maximum number of running job executions: 1000, per project and region" (the
 *   same page). What Cloud Run answers a jobs.run past it is not documented; the emulator refuses it as
 *   a quota (429 RESOURCE_EXHAUSTED, naming the limit), which is how Google APIs report a limit reached.
 * Nothing is limited until a test sets a quota (setQuotas), so every other test runs as before.
 */
import { rpcError } from './emulatedResources';

/** The limits the emulator enforces; unset: none. */
export interface Quotas {
  /** Accepted jobs.run requests in any 60 s, per location. */
  runPerMinute?: number;
  /** Accepted reads (executions.get/list, tasks.get/list, jobs.get, operations.get) in any 60 s, per location. */
  readPerMinute?: number;
  /** Executions running at once per location (Cloud Run's limit is 1,000). */
  maxRunning?: number;
  /** The window's length: a minute, as the quotas are; shorter only in a test of the window itself. */
  windowMs?: number;
}

/**
 * The kind of quota each RPC spends (cancel is a write, which no quota here limits). A tasks.get or
 * tasks.list is a read of the Admin API like an executions.get: the quotas page names no other quota for it.
 */
const KIND: Record<string, 'run' | 'read' | undefined> = {
  runJob: 'run', getExecution: 'read', listExecutions: 'read', getJob: 'read', getOperation: 'read', getTask: 'read', listTasks: 'read',
};

/** The names in the refusal, per kind: the metric and the limit as the quotas page names them. */
const NAMES = {
  run: { metric: 'Job run requests', limit: 'Job run requests per minute per region', id: 'run.googleapis.com/job_run_requests' },
  read: { metric: 'Read requests', limit: 'Read requests per minute per region', id: 'run.googleapis.com/read_requests' },
  running: { metric: 'Running job executions', limit: 'Maximum number of running job executions per region', id: 'run.googleapis.com/running_job_executions' },
} as const;

const MINUTE_MS = 60_000;
/** The project number a consumer is named by in a refusal (the emulator knows no other). */
const PROJECT_NUMBER = '123456789012';

/** What the quotas refused so far, per kind. */
export type Throttled = Record<'run' | 'read' | 'running', number>;

/** The 429 a quota answers, naming it (see the header). */
function refusal(kind: keyof typeof NAMES, location: string, value: number): { status: number; body: unknown } {
  const n = NAMES[kind];
  const region = location.split('/')[3] ?? location;
  const base = rpcError(429, 'RESOURCE_EXHAUSTED', `Quota exceeded for quota metric '${n.metric}' and limit '${n.limit}' of service 'run.googleapis.com' for consumer 'project_number:${PROJECT_NUMBER}'.`);
  const error = (base.body as { error: Record<string, unknown> }).error;
  error.details = [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com',
      metadata: { consumer: `projects/${PROJECT_NUMBER}`, service: 'run.googleapis.com', quota_metric: n.id, quota_limit: n.limit, quota_limit_value: String(value), quota_location: region },
    },
    { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Request a higher quota limit.', url: 'https://cloud.google.com/docs/quotas/help/request_increase' }] },
  ];
  return base;
}

/** Keeps each location's accepted requests of the last minute and refuses what a quota does not allow. */
export function quotaKeeper() {
  let quotas: Quotas = {};
  const accepted = new Map<string, number[]>();
  const throttled: Throttled = { run: 0, read: 0, running: 0 };
  return {
    throttled,
    get quotas(): Quotas {
      return quotas;
    },
    set(next: Quotas | null): void {
      // A changed quota applies at once, to the window as it is: the requests already in it still count.
      quotas = { ...(next ?? {}) };
    },
    /**
     * The refusal of a request, or undefined when it may go on (and then it counts). `running` counts the
     * location's executions running now, asked only for a jobs.run under a cap.
     */
    admit(rpc: string, location: string, now: number, running: () => number): { status: number; body: unknown } | undefined {
      const kind = KIND[rpc];
      if (!kind) return undefined;
      const limit = kind === 'run' ? quotas.runPerMinute : quotas.readPerMinute;
      const key = `${location} ${kind}`;
      const times = accepted.get(key) ?? accepted.set(key, []).get(key)!;
      while (times.length > 0 && times[0] <= now - (quotas.windowMs ?? MINUTE_MS)) times.shift();
      if (limit !== undefined && times.length >= limit) {
        throttled[kind]++;
        return refusal(kind, location, limit);
      }
      if (kind === 'run' && quotas.maxRunning !== undefined && running() >= quotas.maxRunning) {
        throttled.running++;
        return refusal('running', location, quotas.maxRunning);
      }
      times.push(now);
      return undefined;
    },
  };
}
