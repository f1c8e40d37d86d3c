import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { completedCondition, executionResource, rpcError, taskResource, withNumericEnums } from './emulatedResources';
import { failedTaskCount, failedTaskIndexes, formatIndexes, logicalIndexes, taskIndexOf, tasksFailing } from './emulatedTasks';
import { FAULT_KINDS, faultsPicker, type FaultKind, type FaultPlan } from './emulatorFaults';
import { quotaKeeper, type Quotas, type Throttled } from './emulatorQuotas';
import { applyFieldMask, parseFieldMask } from './fieldMask';

export type { FaultKind, FaultPlan } from './emulatorFaults';
export type { Quotas, Throttled } from './emulatorQuotas';
export { logicalIndexes } from './emulatedTasks';

const EXECUTION_TYPE = 'type.googleapis.com/google.cloud.run.v2.Execution';

/** One execution the emulator started, as the tests inspect it. */
export interface EmulatedExecution {
  name: string;
  /** The job's full name, `projects/P/locations/L/jobs/J`. */
  job: string;
  env: Record<string, string>;
  args?: string[];
  taskCount: number;
  /** The `timeout` override (Cloud Run's task timeout), when one was sent. */
  timeoutSeconds?: number;
  createdAt: number;
  /** When it ends or ended: createdAt + durationMs, or when a cancel takes effect (see cancelDelayMs). */
  finishedAt?: number;
  outcome: 'success' | 'failed';
  durationMs: number;
  failedCount: number;
  /**
   * The Cloud Run task indexes that fail, ascending, when a behaviour listed them (Behaviour.failedTasks;
   * failedCount is then their number); unset, the first failedCount tasks fail (emulatedTasks.ts).
   */
  failedTasks?: ReadonlySet<number>;
  cancelled: boolean;
  startFailure?: StartFailure;
}

/** How a new execution will end. */
export interface Behaviour {
  /** The execution's Completed condition, when failedTasks is not given. */
  outcome: 'success' | 'failed';
  durationMs: number;
  /** How many tasks fail (the first ones), when failedTasks is not given: 1 if outcome is 'failed', else 0. */
  failedCount?: number;
  /**
   * Which Cloud Run tasks (CLOUD_RUN_TASK_INDEX, 0..taskCount-1) fail, each on its own; the others
   * succeed. When given it decides failedCount and the outcome: failed when any task failed.
   */
  failedTasks?: number[];
  /** It fails to start: no task runs, and its Completed condition fails with this reason (see StartFailure). */
  startFailure?: StartFailure;
}

/**
 * Why an execution could not start, as its Completed condition says: a Condition.CommonReason and its
 * message (Cloud Run Admin API v2 reference, "Condition": reason CONTAINER_MISSING, "Container image is not
 * present"; CONTAINER_PERMISSION_DENIED, SECRETS_ACCESS_CHECK_FAILED, …).
 */
export interface StartFailure {
  reason: string;
  message: string;
}

/**
 * How many completed executions a job keeps. "Execute jobs" (cloud.google.com/run/docs/execute/jobs):
 * the most recent 1,000 executions of a job, and any from the last seven days; older ones are removed.
 */
export interface Retention {
  completed: number;
  days: number;
}

/** The documented retention (see Retention). */
export const CLOUD_RUN_RETENTION: Retention = { completed: 1000, days: 7 };

/** A Cloud Run Admin API v2 (REST) on loopback, for the real client in fallback mode. */
export interface CloudRunEmulator {
  /** '127.0.0.1:PORT' for CLOUD_RUN_EMULATOR_HOST. */
  host: string;
  /** Requests per RPC, faulted ones included: runJob, getExecution, cancelExecution, listExecutions, getOperation, listTasks, getTask, other. */
  calls: Record<string, number>;
  /** In the order they were created. */
  executions: EmulatedExecution[];
  /**
   * Decides each new execution's outcome, failed tasks and duration; default behaviourFromEnv, which reads
   * the execution env: EMU_FAIL, EMU_FAIL_INDEXES, EMU_DURATION_MS.
   */
  setBehaviour(fn: (e: { job: string; env: Record<string, string>; args?: string[]; taskCount: number }) => Behaviour): void;
  /** The response field mask (`X-Goog-FieldMask`, or `$fields`/`fields`) of the last call of each RPC that sent one. */
  fieldMasks: Record<string, string>;
  /** Extra latency per request, ms (for later benchmarks). */
  latencyMs: number;
  /** How long an execution keeps running after a cancel was accepted before it ends cancelled, ms (default 0). */
  cancelDelayMs: number;
  /**
   * Makes requests fail from now on as the plan says (see FaultKind), or stops failing them (null).
   * Several plans apply at once, each drawing on its own; the first that hits decides (see faultsPicker).
   */
  setFaults(plan: FaultPlan | FaultPlan[] | null): void;
  /** Faults injected so far, by kind (FAULT_KINDS from zero; '401', '409' and 'hang' once injected). */
  injected: Record<FaultKind, number>;
  /**
   * Enforces Cloud Run's per-minute quotas and running-executions cap per location from now on, or none
   * (null, the default); a lowered quota applies at once (test/helpers/emulatorQuotas.ts).
   */
  setQuotas(quotas: Quotas | null): void;
  /** Requests the quotas refused so far, by kind (apart from `injected`; `calls` counts them too). */
  throttled: Throttled;
  /** Executions created per `TICKRUN_TASK_ID/TICKRUN_ATTEMPT`: more than 1 is an attempt started twice. */
  startsByAttempt(): Map<string, number>;
  /**
   * Executions created per `TICKRUN_RUN_ID/TICKRUN_TASK_NAME/<logical index>/TICKRUN_ATTEMPT`, each logical
   * index an execution runs counted (logicalIndexes of its env, the first taskCount of them; without
   * TICKRUN_TASK_INDEXES its one TICKRUN_TASK_INDEX): more than 1 is a logical task's attempt started twice.
   * Throws on a malformed TICKRUN_TASK_INDEXES, which no container could have read.
   */
  startsByIndex(): Map<string, number>;
  /** How many completed executions each job keeps from now on (default CLOUD_RUN_RETENTION). */
  setRetention(retention: Retention): void;
  /** The job no longer exists (deleted): its RPCs answer NOT_FOUND, and its executions are gone with it. */
  deleteJob(job: string): void;
  /** The caller lacks `permission` (run.jobs.runWithOverrides, run.executions.get, …) on the job: the RPCs needing it answer PERMISSION_DENIED. */
  denyPermission(job: string, permission: string): void;
  stop(): Promise<void>;
}

/**
 * The default behaviour: what the execution's environment asks of each task's container (a model of the
 * container, not of Cloud Run).
 * - EMU_FAIL: '1' fails, 'attempts<N' fails while TICKRUN_ATTEMPT < N; the first task fails (failedCount 1).
 * - EMU_FAIL_INDEXES: comma-separated logical indexes; only the tasks whose logical index (logicalIndexes:
 *   TICKRUN_TASK_INDEXES, else TICKRUN_TASK_INDEX for the whole execution) is listed fail, when EMU_FAIL
 *   says (unset: always).
 * - EMU_DURATION_MS: how long the execution runs (default 0).
 */
export function behaviourFromEnv({ env, taskCount = 1 }: { env: Record<string, string>; taskCount?: number }): Behaviour {
  const fail = env.EMU_FAIL ?? '';
  const attemptsBelow = /^attempts<(\d+)$/.exec(fail);
  const failing = fail === '1' || (attemptsBelow !== null && Number(env.TICKRUN_ATTEMPT ?? 1) < Number(attemptsBelow[1]));
  const durationMs = Number(env.EMU_DURATION_MS ?? 0);
  if (env.EMU_FAIL_INDEXES === undefined) return { outcome: failing ? 'failed' : 'success', durationMs };
  const listed = new Set(env.EMU_FAIL_INDEXES.split(',').filter((i) => i.trim() !== '').map(Number));
  const failedTasks = env.EMU_FAIL === undefined || failing ? tasksFailing(env, taskCount, listed) : [];
  return { outcome: failedTasks.length > 0 ? 'failed' : 'success', durationMs, failedTasks };
}

type Answer = { status: number; body: unknown };
const notFound = (what: string): Answer => rpcError(404, 'NOT_FOUND', `Resource '${what}' was not found`);
const DAY_MS = 86_400_000;
/** The job a request's resource is, or belongs to (its executions and their operations). */
const jobOf = (path: string) => /^\/v2\/(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/:]+)/.exec(path)?.[1];

/**
 * The IAM permission each RPC needs on its job ("Cloud Run IAM permissions",
 * cloud.google.com/run/docs/reference/iam/permissions): run.jobs.run invokes a job, and
 * run.jobs.runWithOverrides overrides its configuration, which every tickrun execution does.
 */
const PERMISSIONS: Record<string, string[]> = {
  runJob: ['run.jobs.run', 'run.jobs.runWithOverrides'],
  getJob: ['run.jobs.get'],
  getExecution: ['run.executions.get'],
  listExecutions: ['run.executions.list'],
  cancelExecution: ['run.executions.cancel'],
  // "Get job execution tasks", "List job execution tasks" (the same page; the tasks.get and tasks.list
  // references each name it too).
  getTask: ['run.tasks.get'],
  listTasks: ['run.tasks.list'],
};
/** What an injected error fault answers (google.rpc.Code's HTTP mapping: UNAUTHENTICATED 401, ABORTED 409). */
const FAULT_ANSWERS: Partial<Record<FaultKind, Answer>> = {
  '401': rpcError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential (injected).'),
  '409': rpcError(409, 'ABORTED', 'The operation was aborted because of a concurrent change (injected).'),
  '429': rpcError(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded for quota metric \'Job run requests\' (injected).'),
  '503': rpcError(503, 'UNAVAILABLE', 'The service is currently unavailable (injected).'),
  '500': rpcError(500, 'INTERNAL', 'Internal error encountered (injected).'),
};

/** What an injected '403' answers: PERMISSION_DENIED (HTTP 403) naming the permission and the resource. */
function permissionDenied(rpc: string, path: string): Answer {
  const resource = path.replace(/^\/v2\//, '').replace(/:\w+$/, '');
  // The permission the call needs last: run.jobs.runWithOverrides for runJob, as tickrun always overrides.
  return rpc in PERMISSIONS
    ? rpcError(403, 'PERMISSION_DENIED', `Permission '${PERMISSIONS[rpc].at(-1)}' denied on resource '${resource}' (or it may not exist) (injected).`)
    : rpcError(403, 'PERMISSION_DENIED', 'The caller does not have permission (injected).');
}

/**
 * How an execution the behaviour `b` decided ends: failed with no task failed when it cannot start; the
 * tasks listed in failedTasks (those of 0..taskCount-1, ascending) failing, and failed if any did; else
 * as outcome and failedCount say.
 */
function endOf(b: Behaviour, taskCount: number): Pick<EmulatedExecution, 'outcome' | 'failedCount' | 'failedTasks'> {
  if (b.startFailure) return { outcome: 'failed', failedCount: 0 };
  if (!b.failedTasks) return { outcome: b.outcome, failedCount: b.failedCount ?? (b.outcome === 'failed' ? 1 : 0) };
  const failed = b.failedTasks.filter((i) => Number.isInteger(i) && i >= 0 && i < taskCount).sort((x, y) => x - y);
  return failed.length > 0 ? { outcome: 'failed', failedCount: failed.length, failedTasks: new Set(failed) } : { outcome: 'success', failedCount: 0 };
}

/** Where a tasks.list page token says the next page starts, or undefined when it is not one of this listing's. */
function readTasksToken(token: string, execution: string, showDeleted: boolean, taskCount: number): number | undefined {
  try {
    const [name, deleted, next] = JSON.parse(Buffer.from(token, 'base64url').toString()) as unknown[];
    return name === execution && deleted === showDeleted && Number.isInteger(next) && (next as number) > 0 && (next as number) < taskCount ? (next as number) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the emulator on 127.0.0.1 (a free port unless `port` is given). Besides the API, it has a
 * control surface for a test runner in another process, never counted as calls:
 * `GET /_emulator/state` (calls, injected faults, quota refusals, executions and their failed tasks), `POST /_emulator/faults` (a FaultPlan, an array of them, or null) and `POST /_emulator/quotas` (Quotas, or null).
 */
export async function startCloudRunEmulator(opts: { latencyMs?: number; cancelDelayMs?: number; port?: number } = {}): Promise<CloudRunEmulator> {
  const byName = new Map<string, EmulatedExecution>();
  // Each job's executions in the order they were created, and each one's place there: a page is then
  // read without sorting every execution, as Cloud Run's own index would (the bench lists 10K deep).
  const byJob = new Map<string, EmulatedExecution[]>();
  const place = new Map<string, number>();
  const operations = new Map<string, { execution: string; kind: 'run' | 'cancel' }>();
  const timers = new Set<NodeJS.Timeout>();
  let behaviour: Parameters<CloudRunEmulator['setBehaviour']>[0] = behaviourFromEnv;
  let pickFault: ReturnType<typeof faultsPicker> | undefined;
  // Ends each request held by a 'hang' fault, so that stop() never waits on one.
  const hung = new Set<() => void>();
  let lostAnswers = 0;
  let stopped = false;
  let retention = CLOUD_RUN_RETENTION;
  const bornAt = Date.now();
  const deletedJobs = new Set<string>();
  const denied = new Map<string, Set<string>>();
  const quotas = quotaKeeper();

  function operation(kind: 'run' | 'cancel', e: EmulatedExecution, now: number, location: string, name?: string): Record<string, unknown> {
    const opName = name ?? `${location}/operations/${crypto.randomUUID()}`;
    operations.set(opName, { execution: e.name, kind });
    const execution = { '@type': EXECUTION_TYPE, ...executionResource(e, now) };
    if (now < e.finishedAt!) return { name: opName, metadata: execution, done: false };
    // A run that ends in failure fails its operation; a cancelled one ends it without an error.
    const failed = kind === 'run' && !e.cancelled && e.outcome === 'failed';
    const end = failed ? { error: { code: 2, message: completedCondition(e, true).message } } : { response: execution };
    return { name: opName, metadata: execution, done: true, ...end };
  }

  function runJob(job: string, body: string, now: number): Answer {
    const overrides = (JSON.parse(body || '{}') as { overrides?: { containerOverrides?: { args?: string[]; env?: { name: string; value?: string }[]; clearArgs?: boolean }[]; taskCount?: number; timeout?: string } }).overrides ?? {};
    const env: Record<string, string> = {};
    let args: string[] | undefined;
    for (const c of overrides.containerOverrides ?? []) {
      for (const v of c.env ?? []) env[v.name] = v.value ?? '';
      if (c.args || c.clearArgs) args = c.args ?? [];
    }
    const jobId = job.split('/').pop()!;
    let name: string;
    do name = `${job}/executions/${jobId}-${crypto.randomBytes(4).toString('hex').slice(0, 5)}`;
    while (byName.has(name));
    const taskCount = overrides.taskCount ?? 1;
    const b = behaviour({ job, env, args, taskCount });
    const e: EmulatedExecution = {
      name, job, env, args, taskCount,
      timeoutSeconds: overrides.timeout === undefined ? undefined : parseFloat(overrides.timeout),
      createdAt: now, finishedAt: now + b.durationMs, durationMs: b.durationMs, ...endOf(b, taskCount), cancelled: false,
      ...(b.startFailure && { startFailure: b.startFailure }),
    };
    byName.set(name, e);
    emulator.executions.push(e);
    const ofJob = byJob.get(job) ?? byJob.set(job, []).get(job)!;
    place.set(name, ofJob.push(e) - 1);
    // Cloud Run answers RunJob as soon as the execution exists, so the answer always shows it
    // just created (an earlier instant than any end), whatever its duration.
    return { status: 200, body: operation('run', e, now - 1, job.replace(/\/jobs\/.*$/, '')) };
  }

  function cancelExecution(name: string, now: number): Answer {
    const e = byName.get(name);
    if (!e) return notFound(name);
    if (now >= e.finishedAt!) return rpcError(400, 'FAILED_PRECONDITION', `Execution ${name} has already finished.`);
    // Cancelling is a long-running operation, done when the execution has stopped: the client returns
    // an LRO, `gcloud run jobs executions cancel --async` returns "without waiting for the operation in
    // progress to complete". Meanwhile the execution keeps running, its Completed condition's reason
    // CANCELLING, "in the process of being cancelled" (Condition.ExecutionReason, Cloud Run Admin API v2;
    // https://cloud.google.com/sdk/gcloud/reference/run/jobs/executions/cancel). An execution that ends on
    // its own first ends as it would have; a second cancel while it stops changes nothing.
    const stopsAt = now + emulator.cancelDelayMs;
    if (!e.cancelled && stopsAt < e.finishedAt!) Object.assign(e, { cancelled: true, finishedAt: stopsAt });
    return { status: 200, body: operation('cancel', e, now, name.replace(/\/jobs\/.*$/, '')) };
  }

  /**
   * One page of a job's executions, newest first as Cloud Run lists them (ties: the later created
   * first). The page token names the last execution given, so executions created between two pages
   * neither shift nor repeat the ones after it.
   */
  function listExecutions(job: string, query: URLSearchParams, now: number): Answer {
    const ofJob = byJob.get(job) ?? [];
    // Created in order, so the newest first is the list read backwards, unless a test moved a
    // createdAt: then they are sorted (ties: the later created first).
    const inOrder = ofJob.every((e, i) => i === 0 || ofJob[i - 1].createdAt <= e.createdAt);
    const sorted = inOrder ? undefined : ofJob.map((e, order) => ({ e, order })).sort((x, y) => y.e.createdAt - x.e.createdAt || y.order - x.order).map(({ e }) => e);
    const nth = (i: number) => (sorted ? sorted[i] : ofJob[ofJob.length - 1 - i]);
    const token = query.get('pageToken');
    let start = 0;
    if (token) {
      const name = Buffer.from(token, 'base64url').toString();
      const at = byName.get(name)?.job === job ? place.get(name) : undefined;
      const after = at === undefined ? -1 : sorted ? sorted.indexOf(ofJob[at]) : ofJob.length - 1 - at;
      if (after < 0) return rpcError(400, 'INVALID_ARGUMENT', `Invalid page token '${token}'.`);
      start = after + 1;
    }
    const size = Math.min(Number(query.get('pageSize')) || 100, 1000);
    const page = Array.from({ length: Math.max(0, Math.min(size, ofJob.length - start)) }, (_, i) => nth(start + i));
    const more = start + size < ofJob.length;
    return {
      status: 200,
      body: { executions: page.map((e) => executionResource(e, now)), ...(more && { nextPageToken: Buffer.from(page.at(-1)!.name).toString('base64url') }) },
    };
  }

  /**
   * tasks.list: one page of an execution's tasks ("Method: projects.locations.jobs.executions.tasks.list",
   * Cloud Run Admin API v2). The reference says nothing of their order (executions.list says "sorted by
   * creation time, descending"; tasks.list nothing), nor of pageSize's default or largest value ("Maximum
   * number of Tasks to return in this call"): they come here by index, ascending, 100 by default and at most
   * 1,000 a page, as listExecutions here; a negative pageSize is INVALID_ARGUMENT (AIP-158). The page token
   * names the execution, showDeleted and where the next page starts: "All other parameters must match", so
   * a token of another listing is INVALID_ARGUMENT. showDeleted ("deleted (but unexpired) resources") changes
   * nothing, no task here being deleted but unexpired: a task goes with its execution, retention or a deleted
   * job removing them together. The "-" wildcards for every execution or job are not modelled.
   */
  function listTasks(execution: string, query: URLSearchParams, now: number): Answer {
    const e = byName.get(execution);
    if (!e) return notFound(execution);
    const showDeleted = query.get('showDeleted') === 'true';
    const size = Math.min(Number(query.get('pageSize')) || 100, 1000);
    if (size < 0) return rpcError(400, 'INVALID_ARGUMENT', `Invalid page size ${query.get('pageSize')}: it must not be negative.`);
    const token = query.get('pageToken');
    const start = token ? readTasksToken(token, execution, showDeleted, e.taskCount) : 0;
    if (start === undefined) return rpcError(400, 'INVALID_ARGUMENT', `Invalid page token '${token}'.`);
    const end = Math.min(start + size, e.taskCount);
    const tasks = Array.from({ length: end - start }, (_, i) => taskResource(e, start + i, now));
    const next = end < e.taskCount && Buffer.from(JSON.stringify([execution, showDeleted, end])).toString('base64url');
    return { status: 200, body: { tasks, ...(next && { nextPageToken: next }) } };
  }

  /** tasks.get: the task `id` of an execution, or NOT_FOUND when either is unknown (see taskIndexOf). */
  function getTask(execution: string, id: string, now: number): Answer {
    const e = byName.get(execution);
    const index = e && taskIndexOf(e, id);
    return index === undefined ? notFound(`${execution}/tasks/${id}`) : { status: 200, body: taskResource(e!, index, now) };
  }

  /**
   * Removes the job's completed executions past retention (see Retention): beyond the newest
   * `completed` ones, those that ended before the window. Executions in flight are always kept.
   */
  function applyRetention(job: string, now: number): void {
    const ofJob = byJob.get(job);
    const cutoff = now - retention.days * DAY_MS;
    // Nothing this emulator made can have ended before the window: skip the scan.
    if (!ofJob || ofJob.length <= retention.completed || cutoff < bornAt) return;
    let kept = 0;
    const newestFirst = [...ofJob].sort((x, y) => y.createdAt - x.createdAt);
    const removed = new Set(newestFirst.filter((e) => {
      if (now < e.finishedAt!) return false;
      return ++kept > retention.completed && e.finishedAt! < cutoff;
    }));
    if (removed.size === 0) return;
    forget(job, ofJob.filter((e) => !removed.has(e)), removed);
  }

  /** Keeps only `left` of a job's executions, in creation order; `gone` answer NOT_FOUND from now on. */
  function forget(job: string, left: EmulatedExecution[], gone: Iterable<EmulatedExecution>): void {
    for (const e of gone) byName.delete(e.name);
    byJob.set(job, left);
    left.forEach((e, i) => place.set(e.name, i));
  }

  /** The job an RPC's resource belongs to, and the refusal it gets when the job is gone or the caller lacks a permission. */
  function refusal(rpc: string, path: string): Answer | undefined {
    const job = jobOf(path);
    if (!job) return undefined;
    const lacking = (PERMISSIONS[rpc] ?? []).find((p) => denied.get(job)?.has(p));
    // IAM's refusal: the permission named, and "or it may not exist", as Google APIs word it.
    if (lacking) return rpcError(403, 'PERMISSION_DENIED', `Permission '${lacking}' denied on resource '${job}' (or it may not exist).`);
    // A deleted job and whatever was under it answer NOT_FOUND (AIP-135, google.aip.dev/135: after a
    // delete, a get of the resource returns NOT_FOUND; the Admin API v2 follows the AIPs).
    return deletedJobs.has(job) ? notFound(job) : undefined;
  }

  function route(method: string, path: string, query: URLSearchParams, body: string): { rpc: string; answer: (now: number) => Answer } {
    let m: RegExpExecArray | null;
    const resource = 'projects/[^/]+/locations/[^/]+';
    if (method === 'POST' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/:]+):run$`).exec(path))) {
      const job = m[1];
      return { rpc: 'runJob', answer: (now) => runJob(job, body, now) };
    }
    // jobs.get: every job exists until a test deletes it (the Job resource's fields are not modelled).
    if (method === 'GET' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/:]+)$`).exec(path))) {
      const job = m[1];
      return { rpc: 'getJob', answer: () => ({ status: 200, body: { name: job } }) };
    }
    if (method === 'GET' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/]+)/executions$`).exec(path))) {
      const job = m[1];
      return { rpc: 'listExecutions', answer: (now) => listExecutions(job, query, now) };
    }
    if (method === 'GET' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/]+/executions/[^/:]+)$`).exec(path))) {
      const name = m[1];
      return { rpc: 'getExecution', answer: (now) => (byName.has(name) ? { status: 200, body: executionResource(byName.get(name)!, now) } : notFound(name)) };
    }
    if (method === 'POST' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/]+/executions/[^/:]+):cancel$`).exec(path))) {
      const name = m[1];
      return { rpc: 'cancelExecution', answer: (now) => cancelExecution(name, now) };
    }
    if (method === 'GET' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/]+/executions/[^/:]+)/tasks$`).exec(path))) {
      const execution = m[1];
      return { rpc: 'listTasks', answer: (now) => listTasks(execution, query, now) };
    }
    if (method === 'GET' && (m = new RegExp(`^/v2/(${resource}/jobs/[^/]+/executions/[^/:]+)/tasks/([^/:]+)$`).exec(path))) {
      const [, execution, id] = m;
      return { rpc: 'getTask', answer: (now) => getTask(execution, id, now) };
    }
    if (method === 'GET' && (m = new RegExp(`^/v2/(${resource}/operations/[^/:]+)$`).exec(path))) {
      const name = m[1];
      const op = operations.get(name);
      const e = op && byName.get(op.execution);
      return { rpc: 'getOperation', answer: (now) => (e ? { status: 200, body: operation(op.kind, e, now, '', name) } : notFound(name)) };
    }
    return { rpc: 'other', answer: () => notFound(`${method} ${path}`) };
  }

  /** The control surface: not an RPC, never counted nor faulted. */
  function control(method: string, path: string, body: string): Answer {
    if (method === 'GET' && path === '/_emulator/state') {
      // Each execution's failed tasks, if any, as one short string (`17,4242,9999`, `0-9999`).
      const executions = emulator.executions.map((e) => {
        const { name, job, env, createdAt, finishedAt, outcome, cancelled } = e;
        const failed = failedTaskCount(e) > 0 ? { failedTasks: formatIndexes(failedTaskIndexes(e)) } : {};
        return { name, job, env, createdAt, finishedAt, outcome, cancelled, ...failed };
      });
      return { status: 200, body: { calls: emulator.calls, injected: emulator.injected, throttled: emulator.throttled, executions } };
    }
    if (method === 'POST' && path === '/_emulator/quotas') {
      emulator.setQuotas(JSON.parse(body || 'null') as Quotas | null);
      return { status: 200, body: {} };
    }
    if (method === 'POST' && path === '/_emulator/faults') {
      emulator.setFaults(JSON.parse(body || 'null') as FaultPlan | FaultPlan[] | null);
      return { status: 200, body: {} };
    }
    return notFound(`${method} ${path}`);
  }

  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const t = setTimeout(() => { timers.delete(t); resolve(); }, ms);
    timers.add(t);
  });

  /** Holds a request unanswered until its connection closes (the client's deadline) or the emulator stops. */
  const hang = (res: http.ServerResponse) => new Promise<void>((resolve) => {
    const end = () => { hung.delete(end); resolve(); };
    hung.add(end);
    res.once('close', end);
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://emulator');
    const path = decodeURIComponent(url.pathname);
    const body = Buffer.concat(chunks).toString();
    const send = ({ status, body }: Answer) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(body));
    };
    if (path.startsWith('/_emulator/')) return send(control(req.method ?? 'GET', path, body));

    const { rpc, answer } = route(req.method ?? 'GET', path, url.searchParams, body);
    emulator.calls[rpc] = (emulator.calls[rpc] ?? 0) + 1;
    const hit = pickFault?.(rpc, path);
    const fault = hit?.kind;
    if (fault) emulator.injected[fault] = (emulator.injected[fault] ?? 0) + 1;
    if (emulator.latencyMs > 0) await sleep(emulator.latencyMs);
    if (stopped) return;
    // '401', '403', '409', '429', '503', '500', 'reset' and 'hang' refuse the call before doing it.
    if (fault === 'reset') return void req.socket.destroy();
    if (fault === 'hang') return hang(res);
    const injected = fault === '403' ? permissionDenied(rpc, path) : fault && FAULT_ANSWERS[fault];
    if (injected) return send(injected);

    const now = Date.now();
    // Quotas are checked before the call is carried out, like an injected 429, and never by the control surface.
    const location = /^\/v2\/(projects\/[^/]+\/locations\/[^/]+)/.exec(path)?.[1];
    const overQuota = location && quotas.admit(rpc, location, now, () => emulator.executions.filter((e) => now < e.finishedAt! && e.name.startsWith(`${location}/`)).length);
    if (overQuota) return send(overQuota);
    const refused = refusal(rpc, path);
    if (refused) return send(refused);
    const job = jobOf(path);
    if (job) applyRetention(job, now);
    let result = answer(now);
    if ((url.searchParams.get('$alt') ?? '').includes('enum-encoding=int') && result.status === 200) {
      result = { ...result, body: withNumericEnums(result.body as Record<string, unknown>) };
    }
    // The response field mask, a system parameter every Google API takes (header, or query for REST).
    const mask = req.headers['x-goog-fieldmask'] ?? url.searchParams.get('$fields') ?? url.searchParams.get('fields');
    if (typeof mask === 'string') emulator.fieldMasks[rpc] = mask;
    if (typeof mask === 'string' && result.status === 200) {
      try {
        result = { ...result, body: applyFieldMask(result.body, parseFieldMask(mask)) };
      } catch (err) {
        result = rpcError(400, 'INVALID_ARGUMENT', (err as Error).message);
      }
    }
    if (fault === 'delay') await sleep(hit?.plan.delayMs ?? 1000);
    if (stopped) return;
    // The call was carried out; its answer is lost: an INTERNAL error, or a dropped connection.
    if (fault === 'lost') return lostAnswers++ % 2 === 0 ? send(FAULT_ANSWERS['500']!) : void req.socket.destroy();
    send(result);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 400, message: String(err), status: 'INVALID_ARGUMENT' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));

  const emulator: CloudRunEmulator = {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: { runJob: 0, getExecution: 0, cancelExecution: 0, listExecutions: 0, getOperation: 0, listTasks: 0, getTask: 0, other: 0 },
    executions: [],
    fieldMasks: {},
    latencyMs: opts.latencyMs ?? 0,
    cancelDelayMs: opts.cancelDelayMs ?? 0,
    injected: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    throttled: quotas.throttled,
    setQuotas(next) {
      quotas.set(next);
    },
    setBehaviour(fn) {
      behaviour = fn;
    },
    setFaults(plan) {
      const plans = plan === null ? [] : Array.isArray(plan) ? plan : [plan];
      pickFault = plans.length > 0 ? faultsPicker(plans) : undefined;
      lostAnswers = 0;
    },
    startsByAttempt() {
      const starts = new Map<string, number>();
      for (const { env } of emulator.executions) {
        const key = `${env.TICKRUN_TASK_ID}/${env.TICKRUN_ATTEMPT}`;
        starts.set(key, (starts.get(key) ?? 0) + 1);
      }
      return starts;
    },
    startsByIndex() {
      const starts = new Map<string, number>();
      for (const { env, taskCount } of emulator.executions) {
        const indexes = logicalIndexes(env);
        // An array execution runs the first taskCount of its indexes; another runs its one for all its tasks.
        for (const i of env.TICKRUN_TASK_INDEXES ? indexes.slice(0, taskCount) : indexes) {
          const key = `${env.TICKRUN_RUN_ID}/${env.TICKRUN_TASK_NAME}/${i}/${env.TICKRUN_ATTEMPT}`;
          starts.set(key, (starts.get(key) ?? 0) + 1);
        }
      }
      return starts;
    },
    setRetention(r) {
      retention = r;
    },
    deleteJob(job) {
      deletedJobs.add(job);
      forget(job, [], byJob.get(job) ?? []);
    },
    denyPermission(job, permission) {
      (denied.get(job) ?? denied.set(job, new Set()).get(job)!).add(permission);
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const end of [...hung]) end();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
  return emulator;
}

