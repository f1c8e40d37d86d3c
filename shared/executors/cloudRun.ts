import type { protos } from '@google-cloud/run';
import jsonProtos from '@google-cloud/run/build/protos/protos.json';
import pLimit from 'p-limit';
import { log } from '../log';
import type { TaskSpec } from '../workflows/definition';
import { createCloudRunClients } from './cloudRunClients';
import { CloudRunCallError, callError } from './cloudRunErrors';
import { ExecutorFault, executionEnv, statusEach, type DispatchRequest, type ExecutionStatus, type Executor, type LostAttempt } from './executor';

type Execution = protos.google.cloud.run.v2.IExecution;
type Overrides = protos.google.cloud.run.v2.RunJobRequest.IOverrides;
type Timestamp = protos.google.protobuf.ITimestamp;

/** Where the Cloud Run Admin API is and how long each call may take. */
export interface CloudRunOptions {
  /** host:port of a Cloud Run Admin API v2 emulator (CLOUD_RUN_EMULATOR_HOST); REST over plain HTTP, no credentials. */
  emulatorHost?: string;
  /** Deadline of each API call, ms (the client's default is 60 s and it never retries these RPCs). */
  apiTimeoutMs: number;
  /** Used when a task's `job` is a bare id and the task names no project/region. */
  defaultProject?: string;
  defaultRegion?: string;
}

/**
 * Runs each attempt as one execution of a Cloud Run job (Admin API v2), with the contract's
 * environment as a container override. The clients are made once: each holds its own channel.
 */
export function createCloudRunExecutor(options: CloudRunOptions): Executor {
  const { jobs, executions, decodeExecution } = createCloudRunClients(options);
  // A fresh object per call: the client writes routing headers into the options it is given.
  const callOptions = () => ({ timeout: options.apiTimeoutMs });
  const call = async <T>(method: string, name: string, send: () => Promise<T>): Promise<T> => {
    try {
      return await send();
    } catch (err) {
      throw callError(method, name, options.apiTimeoutMs, err);
    }
  };

  /**
   * One page of a job's executions, newest first (autoPaginate off: we decide when to stop), with only
   * the `fields` asked for (see STATUS_FIELDS).
   */
  const listPage = (job: string, fields: string): ListPage => (request) =>
    call('listExecutions', job, () => executions.listExecutions(request, {
      ...callOptions(), autoPaginate: false, otherArgs: { headers: { 'x-goog-fieldmask': fields } },
    }));

  /** One execution's state by getExecution; one that no longer exists is a failed attempt. */
  const status = async (executionName: string): Promise<ExecutionStatus> => {
    try {
      const [execution] = await call('getExecution', executionName, () =>
        executions.getExecution({ name: executionName }, callOptions()),
      );
      return executionStatus(execution);
    } catch (err) {
      if (err instanceof CloudRunCallError && err.status === 'NOT_FOUND') {
        return { state: 'failed', error: `execution ${executionName} no longer exists` };
      }
      throw err;
    }
  };

  return {
    async dispatch(req) {
      const name = jobName(req.spec, `task "${req.taskName}"`, options);
      const [operation] = await call('runJob', name, () =>
        jobs.runJob({ name, overrides: overridesFor(req) }, callOptions()),
      );
      // The operation ends only when the execution does; its metadata already is the new
      // Execution, so the name is known without waiting.
      const executionName = operationExecution(operation, decodeExecution)?.name;
      // Accepted, so an execution most likely exists: findStarted can name it.
      if (!executionName) throw new ExecutorFault('ambiguous', `Cloud Run runJob ${name}: operation ${operation.name} names no execution`);
      return executionName;
    },

    status,

    async statusMany(names, concurrency) {
      const statuses = new Map<string, ExecutionStatus | Error>();
      const limit = pLimit(concurrency);
      const listed = [...executionsByJob(names)].filter(([, wanted]) => wanted.size >= LIST_FROM);
      await Promise.all(listed.map(([job, wanted]) => limit(async () => {
        try {
          await settleFromListing(job, wanted, (execution) => statuses.set(execution.name!, executionStatus(execution)), listPage(job, STATUS_FIELDS));
        } catch (err) {
          const left = [...wanted].filter((name) => !statuses.has(name));
          // Out of quota: one call per execution would only spend more of it. Read again next cycle.
          if (err instanceof ExecutorFault && err.kind === 'quota') {
            for (const name of left) statuses.set(name, err);
            return;
          }
          // Any other fault, or no such job: each execution is read on its own below, so a missing one
          // still ends its task ("no longer exists") and a fault fails only the names it hits.
          log('WARNING', `listing ${job} failed, reading ${left.length} execution(s) one by one: ${(err as Error).message}`);
        }
      })));
      const left = [...new Set(names)].filter((name) => !statuses.has(name));
      for (const [name, read] of await statusEach(left, status, concurrency)) statuses.set(name, read);
      return statuses;
    },

    async cancel(executionName) {
      try {
        // The operation ends when the execution has stopped; the next status check sees that.
        await call('cancelExecution', executionName, () =>
          executions.cancelExecution({ name: executionName }, callOptions()),
        );
      } catch (err) {
        // Gone, or already finished: either way there is nothing left to stop.
        if (err instanceof CloudRunCallError && (err.status === 'NOT_FOUND' || err.status === 'FAILED_PRECONDITION')) return;
        throw err;
      }
    },

    async findStarted(lost) {
      const { byJob, unsendable } = groupByJob(lost, options);
      // dispatch refuses these before any API call, so they cannot have started.
      const found = new Map<LostAttempt, string | null>(unsendable.map((attempt) => [attempt, null]));
      const limit = pLimit(LIST_CONCURRENCY);
      await Promise.all([...byJob].map(([job, attempts]) => limit(async () => {
        try {
          const started = await startedIn(job, attempts, listPage(job, STARTED_FIELDS));
          for (const attempt of attempts) found.set(attempt, started.get(attemptKey(attempt)) ?? null);
        } catch (err) {
          // No such job: nothing of it can be running, and sending the attempt again would fail the same way.
          if (err instanceof CloudRunCallError && err.status === 'NOT_FOUND') {
            for (const attempt of attempts) found.set(attempt, null);
            return;
          }
          // Left out of the map: undecided, asked again on a later tick.
          log('WARNING', `could not tell whether ${attempts.length} lost attempt(s) of ${job} started: ${(err as Error).message}`);
        }
      })));
      return found;
    },
  };
}

/** Lost attempts by the full name of their job (as dispatch resolves it), and those that have none. */
function groupByJob(lost: LostAttempt[], options: CloudRunOptions) {
  const byJob = new Map<string, LostAttempt[]>();
  const unsendable: LostAttempt[] = [];
  for (const attempt of lost) {
    let job: string;
    try {
      job = jobName(attempt.spec, `task ${attempt.taskId}`, options);
    } catch {
      unsendable.push(attempt);
      continue;
    }
    byJob.set(job, [...(byJob.get(job) ?? []), attempt]);
  }
  return { byJob, unsendable };
}

/** How many jobs findStarted lists at once. */
const LIST_CONCURRENCY = 10;
/** Allowance for Cloud Run's clock running behind ours when comparing createTime with claimedAt. */
const CLOCK_SKEW_MS = 5 * 60_000;

type ListRequest = protos.google.cloud.run.v2.IListExecutionsRequest;
type ListPage = (request: ListRequest) => Promise<[Execution[], ListRequest | null, unknown]>;

/**
 * The executions of one job started for these attempts, by attemptKey, found by the TICKRUN_TASK_ID
 * and TICKRUN_ATTEMPT of their container env. Cloud Run lists a job's executions newest first, so
 * paging stops at the first page reaching back before the oldest claim: nothing older can be one of them.
 */
async function startedIn(job: string, attempts: LostAttempt[], listPage: ListPage): Promise<Map<string, string>> {
  const wanted = new Set(attempts.map(attemptKey));
  const since = Math.min(...attempts.map((a) => a.claimedAt.getTime())) - CLOCK_SKEW_MS;
  const started = new Map<string, string>();
  let request: ListRequest | null = { parent: job, pageSize: 100 };
  while (request && started.size < wanted.size) {
    const [page, next]: [Execution[], ListRequest | null, unknown] = await listPage(request);
    for (const execution of page) {
      const key = executionKey(execution);
      // A second execution of one attempt should not exist; if it does, the newest is named.
      if (wanted.has(key) && execution.name && !started.has(key)) started.set(key, execution.name);
    }
    const created = page.map((e) => timestampMs(e.createTime)).filter((t) => t !== undefined);
    if (created.length > 0 && Math.min(...created) < since) break;
    request = next;
  }
  return started;
}

const attemptKey = (a: LostAttempt) => `${a.taskId}/${a.attempt}`;

/**
 * A job's executions are read from its listing when at least this many of them are to be checked: below
 * that, listing saves at most one call and may cost two more.
 */
const LIST_FROM = 3;

/** Execution names (`projects/P/locations/L/jobs/J/executions/X`) by the full name of their job; others are left out. */
function executionsByJob(names: string[]): Map<string, Set<string>> {
  const byJob = new Map<string, Set<string>>();
  for (const name of names) {
    const job = /^(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+)\/executions\/[^/]+$/.exec(name)?.[1];
    if (job) byJob.set(job, (byJob.get(job) ?? new Set()).add(name));
  }
  return byJob;
}

/**
 * The response field mask (the `X-Goog-FieldMask` system parameter, on gRPC and REST alike) of a status
 * listing: what executionStatus reads, and the page token. A full Execution also carries its task
 * template, env included, and a dozen timestamps. Decoding those for 10K listed executions was two
 * thirds of what a tick allocated (sampling heap profile: 305 of 459 MB); with the mask a tick over
 * 10K in flight allocates 243 MB and peaks at 167 MB instead of 195–207 MB (bench row 7).
 */
const STATUS_FIELDS = ['nextPageToken', ...['name', 'taskCount', 'succeededCount', 'failedCount', 'cancelledCount',
  'conditions.type', 'conditions.state', 'conditions.executionReason', 'conditions.message'].map((f) => `executions.${f}`)].join(',');
/** The same for findStarted: what executionKey and the paging's stop read. */
const STARTED_FIELDS = 'nextPageToken,executions.name,executions.createTime,executions.template.containers.env';

/** Most executions asked for in one listing page (the emulator's ceiling too; Cloud Run may give fewer). */
const LIST_PAGE_MAX = 1000;

/**
 * Hands `settle` each wanted execution found in its job's listing (full Execution resources, newest
 * first, so executions in flight come early). A page asks for as many executions as are wanted, from
 * 100 to 1,000. A page is read only while fewer pages have been read than wanted executions remain:
 * each one missed costs a getExecution afterwards, so listing plus those calls never exceeds twice the
 * wanted, and is one call per page when they are the newest.
 */
async function settleFromListing(job: string, wanted: Set<string>, settle: (execution: Execution) => void, listPage: ListPage): Promise<void> {
  const left = new Set(wanted);
  const pageSize = Math.min(LIST_PAGE_MAX, Math.max(100, wanted.size));
  let request: ListRequest | null = { parent: job, pageSize };
  for (let pages = 0; request && left.size > pages; pages++) {
    const [page, next]: [Execution[], ListRequest | null, unknown] = await listPage(request);
    for (const execution of page) if (execution.name && left.delete(execution.name)) settle(execution);
    request = next;
  }
}

/** attemptKey from the env Cloud Run shows for an execution (its template, overrides applied). */
function executionKey(execution: Execution): string {
  const env = new Map((execution.template?.containers ?? []).flatMap((c) => c.env ?? []).map((v) => [v.name, v.value]));
  return `${env.get('TICKRUN_TASK_ID')}/${env.get('TICKRUN_ATTEMPT')}`;
}

function timestampMs(t: Timestamp | null | undefined): number | undefined {
  if (!t || t.seconds == null) return undefined;
  // Over REST the client gives seconds as a string; protobufjs may give a Long: Number() reads both.
  return Number(String(t.seconds)) * 1000 + (t.nanos ?? 0) / 1e6;
}

/**
 * What an Execution resource says of its end. Enums are names when read by getExecution and
 * numbers when decoded from an operation's metadata; both are accepted.
 */
export function executionStatus(execution: Execution): ExecutionStatus {
  const completed = execution.conditions?.find((c) => c.type === 'Completed');
  const state = enumName(CONDITION_STATE, completed?.state);
  if (state !== 'CONDITION_SUCCEEDED' && state !== 'CONDITION_FAILED') return { state: 'running' };
  const failed = execution.failedCount ?? 0;
  const cancelled = execution.cancelledCount ?? 0;
  // Cloud Run shows a cancellation as a failed Completed condition with reason CANCELLED;
  // cancelled tasks with none failed mean the same even if the reason is missing.
  if (enumName(EXECUTION_REASON, completed?.executionReason) === 'CANCELLED' || (cancelled > 0 && failed === 0)) {
    return { state: 'cancelled' };
  }
  if (state === 'CONDITION_SUCCEEDED' && failed === 0) return { state: 'success' };
  const counts = `${failed} of ${execution.taskCount ?? '?'} tasks failed, ${execution.succeededCount ?? 0} succeeded`;
  return { state: 'failed', error: completed?.message ? `${completed.message} (${counts})` : `execution failed (${counts})` };
}

/**
 * The Execution an operation's metadata holds. gax decodes it into `metadata`, except for an
 * operation already done with an error: then it stops before the metadata, which is decoded here.
 */
function operationExecution(
  operation: { metadata: unknown; latestResponse: protos.google.longrunning.IOperation },
  decodeExecution: (bytes: Uint8Array) => Execution,
): Execution | undefined {
  if (operation.metadata) return operation.metadata as Execution;
  const value = operation.latestResponse.metadata?.value;
  if (!value) return undefined;
  return decodeExecution(typeof value === 'string' ? Buffer.from(value, 'base64') : value);
}

/** The job's full name: `job` as given when it is one, else built from the task's or the default project and region. */
function jobName(spec: TaskSpec, task: string, options: CloudRunOptions): string {
  const job = spec.job ?? '';
  if (job.startsWith('projects/')) return job;
  const project = spec.project ?? options.defaultProject;
  const region = spec.region ?? options.defaultRegion;
  if (!project) throw new Error(`${task}: job "${job}" needs a project: set project on the task or GOOGLE_CLOUD_PROJECT`);
  if (!region) throw new Error(`${task}: job "${job}" needs a region: set region on the task or TICKRUN_REGION`);
  return `projects/${project}/locations/${region}/jobs/${job}`;
}

function overridesFor(req: DispatchRequest): Overrides {
  const { args, taskCount, timeoutMs } = req.spec;
  const env = Object.entries(executionEnv(req)).map(([name, value]) => ({ name, value }));
  return {
    // An empty list cannot travel in proto3, so "no arguments" has its own flag.
    containerOverrides: [{ env, ...(args && (args.length ? { args } : { clearArgs: true })) }],
    ...(taskCount !== undefined && { taskCount }),
    // Cloud Run's task timeout: a backstop to tickrun's own, which cancels the execution.
    ...(timeoutMs !== undefined && { timeout: { seconds: Math.ceil(timeoutMs / 1000) } }),
  };
}

// Condition enums by number, from the package's own proto definitions: an Execution decoded by the client's
// stock operation decoders carries numbers where getExecution and listExecutions give names.
const conditionEnums = jsonProtos.nested.google.nested.cloud.nested.run.nested.v2.nested.Condition.nested;
const byNumber = (values: Record<string, number>) => Object.fromEntries(Object.entries(values).map(([name, n]) => [n, name]));
const CONDITION_STATE: Record<number, string> = byNumber(conditionEnums.State.values);
const EXECUTION_REASON: Record<number, string> = byNumber(conditionEnums.ExecutionReason.values);

function enumName(values: Record<number, string>, value: unknown): string | undefined {
  return typeof value === 'number' ? values[value] : (value as string | undefined) ?? undefined;
}
