import type { protos } from '@google-cloud/run';
import type { LostAttempt } from './executor';
import { ARRAY_ID_ENV } from '../arrays';

type Execution = protos.google.cloud.run.v2.IExecution;
type ListRequest = protos.google.cloud.run.v2.IListExecutionsRequest;
type Timestamp = protos.google.protobuf.ITimestamp;

/** One page of a job's executions, newest first, and the request for the next page (null after the last). */
export type ListPage = (request: ListRequest) => Promise<[Execution[], ListRequest | null, unknown]>;

/**
 * The response field mask (the `X-Goog-FieldMask` system parameter, on gRPC and REST alike) of a status
 * listing: the page token and what executionStatus reads. A full Execution also carries its task
 * template, env included, and a dozen timestamps, which the client would decode for nothing.
 */
export const STATUS_FIELDS = ['nextPageToken', ...['name', 'taskCount', 'succeededCount', 'failedCount', 'cancelledCount',
  'conditions.type', 'conditions.state', 'conditions.executionReason', 'conditions.message'].map((f) => `executions.${f}`)].join(',');
/** The same for findStarted: what executionKey and the paging's stop read. */
export const STARTED_FIELDS = 'nextPageToken,executions.name,executions.createTime,executions.template.containers.env';

/**
 * A job's executions are read from its listing when at least this many of them are to be checked: below
 * that, listing saves at most one call and may cost two more. The poll's read budget counts on it
 * (steps/poll.ts).
 */
export const LIST_FROM = 3;
/** Most executions asked for in one listing page (the emulator's ceiling too; Cloud Run may give fewer). */
const LIST_PAGE_MAX = 1000;
/** Allowance for Cloud Run's clock running behind ours when comparing createTime with claimedAt. */
const CLOCK_SKEW_MS = 5 * 60_000;
/**
 * Most pages one search for lost attempts reads of a job. Cloud Run keeps at most 1,000 completed
 * executions of a job and runs at most 1,000 at once in a region (cloud.google.com/run/quotas), so
 * 3 pages of 1,000 reach through any job's whole listing; the cap bounds what a listing costs otherwise.
 */
const SEARCH_PAGES_MAX = 3;

/** The jobs worth listing (see LIST_FROM), each with the names of its executions to be checked. */
export function jobsToList(executionNames: string[]): [string, Set<string>][] {
  return [...executionsByJob(executionNames)].filter(([, wanted]) => wanted.size >= LIST_FROM);
}

/**
 * Hands `settle` each wanted execution found in its job's listing, newest first (those in flight come early),
 * in pages of as many as are wanted (100 to 1,000), read only while fewer pages are read than wanted remain:
 * each one missed costs a getExecution afterwards, so listing plus those calls stays within twice the wanted.
 */
export async function settleFromListing(job: string, wanted: Set<string>, settle: (execution: Execution) => void, listPage: ListPage, deadline = Infinity): Promise<void> {
  const left = new Set(wanted);
  const pageSize = Math.min(LIST_PAGE_MAX, Math.max(100, wanted.size));
  let request: ListRequest | null = { parent: job, pageSize };
  for (let pages = 0; request && left.size > pages && performance.now() <= deadline; pages++) {
    const [page, next]: [Execution[], ListRequest | null, unknown] = await listPage(request);
    for (const execution of page) if (execution.name && left.delete(execution.name)) settle(execution);
    request = next;
  }
}

/**
 * For each attempt of one job that the listing settles, the name of the execution started for it, or null:
 * found by the TICKRUN_TASK_ID and TICKRUN_ATTEMPT of their container env. Cloud Run lists a job's
 * executions newest first, so the search ends at the first page reaching back before the oldest claim
 * (nothing older can be one of them). It reads at most SEARCH_PAGES_MAX pages and asks for none past
 * `deadline` (performance.now()); an attempt not found before it stops is left out: undecided.
 */
export async function startedIn(job: string, attempts: LostAttempt[], listPage: ListPage, deadline = Infinity): Promise<Map<LostAttempt, string | null>> {
  const wanted = new Set(attempts.map(attemptKey));
  const since = Math.min(...attempts.map((a) => a.claimedAt.getTime())) - CLOCK_SKEW_MS;
  const started = new Map<string, string>();
  let request: ListRequest = { parent: job, pageSize: LIST_PAGE_MAX };
  // Whether every execution created since the oldest claim was seen: then an attempt not found never started.
  let searched = false;
  for (let pages = 0; started.size < wanted.size && pages < SEARCH_PAGES_MAX && performance.now() <= deadline; pages++) {
    const [page, next]: [Execution[], ListRequest | null, unknown] = await listPage(request);
    for (const execution of page) {
      const key = executionKey(execution);
      // A second execution of one attempt should not exist; if it does, the newest is named.
      if (wanted.has(key) && execution.name && !started.has(key)) started.set(key, execution.name);
    }
    const created = page.map((e) => timestampMs(e.createTime)).filter((t) => t !== undefined);
    if (!next || (created.length > 0 && Math.min(...created) < since)) {
      searched = true;
      break;
    }
    request = next;
  }
  const settled = new Map<LostAttempt, string | null>();
  for (const attempt of attempts) {
    const name = started.get(attemptKey(attempt));
    if (name || searched) settled.set(attempt, name ?? null);
  }
  return settled;
}

const attemptKey = (a: LostAttempt) => `${a.array ? 'array:' : ''}${a.taskId}/${a.attempt}`;

/** Execution names (`projects/P/locations/L/jobs/J/executions/X`) by the full name of their job; others are left out. */
function executionsByJob(names: string[]): Map<string, Set<string>> {
  const byJob = new Map<string, Set<string>>();
  for (const name of names) {
    const job = /^(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+)\/executions\/[^/]+$/.exec(name)?.[1];
    if (job) byJob.set(job, (byJob.get(job) ?? new Set()).add(name));
  }
  return byJob;
}

/** attemptKey from the env Cloud Run shows for an execution (its template, overrides applied): a task's, or an array execution's (shared/arrays.ts). */
function executionKey(execution: Execution): string {
  const env = new Map((execution.template?.containers ?? []).flatMap((c) => c.env ?? []).map((v) => [v.name, v.value]));
  const array = env.get(ARRAY_ID_ENV);
  return array ? `array:${array}/${env.get('TICKRUN_ATTEMPT')}` : `${env.get('TICKRUN_TASK_ID')}/${env.get('TICKRUN_ATTEMPT')}`;
}

function timestampMs(t: Timestamp | null | undefined): number | undefined {
  if (!t || t.seconds == null) return undefined;
  // Over REST the client gives seconds as a string; protobufjs may give a Long: Number() reads both.
  return Number(String(t.seconds)) * 1000 + (t.nanos ?? 0) / 1e6;
}
