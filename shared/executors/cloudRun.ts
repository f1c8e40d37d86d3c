import type { protos } from '@google-cloud/run';
import pLimit from 'p-limit';
import { log } from '../log';
import { READ_RPCS, regionOfName } from '../regions';
import type { CallTimeouts } from '../config';
import type { TaskSpec } from '../workflows/definition';
import { createCloudRunClients } from './cloudRunClients';
import { CloudRunCallError, callError, dispatchRefusal } from './cloudRunErrors';
import { jobsToList, settleFromListing, startedIn, STARTED_FIELDS, STATUS_FIELDS, type ListPage } from './cloudRunListing';
import { executionStatus, operationExecution, taskEnd, TASK_FIELDS, vanishedStatus } from './cloudRunStatus';
import { deadlineWithin, ExecutorFault, executionEnv, MIN_CALL_MS, PastDeadline, statusEach, type DispatchRequest, type ExecutionStatus, type Executor, type LostAttempt, type TaskEnd } from './executor';

type Overrides = protos.google.cloud.run.v2.RunJobRequest.IOverrides;
type Task = protos.google.cloud.run.v2.ITask;
type ListTasksRequest = protos.google.cloud.run.v2.IListTasksRequest;

/** Tasks asked for in one page of an array execution's tasks: 10 pages read a 10,000-task execution. */
const TASKS_PAGE = 1000;

/** Where the Cloud Run Admin API is and how long each call may take. */
export interface CloudRunOptions {
  /** host:port of a Cloud Run Admin API v2 emulator (CLOUD_RUN_EMULATOR_HOST); REST over plain HTTP, no credentials. */
  emulatorHost?: string;
  /** Deadline of each kind of API call, ms (the client's default is 60 s for all, and it never retries these RPCs). */
  timeouts: CallTimeouts;
  /** Used when a task's `job` is a bare id and the task names no project/region. */
  defaultProject?: string;
  defaultRegion?: string;
}

/** How many jobs findStarted lists at once. */
const LIST_CONCURRENCY = 10;

/**
 * Runs each attempt as one execution of a Cloud Run job (Admin API v2), with the contract's
 * environment as a container override. The clients are made once: each holds its own channel.
 */
export function createCloudRunExecutor(options: CloudRunOptions): Executor {
  const { jobs, executions, tasks, decodeExecution, callOptions } = createCloudRunClients(options);
  const { timeouts } = options;
  /** A call's deadline when it must end by `endBy`; PastDeadline when too little is left to start it. */
  const timeoutFor = (timeoutMs: number, endBy?: number): number => {
    const ms = deadlineWithin(timeoutMs, endBy);
    if (ms === 0) throw new PastDeadline();
    return ms;
  };
  /** The last moment a call of this deadline may start before `endBy` (see deadlineWithin). */
  const startBy = (timeoutMs: number, endBy = Infinity) => endBy - Math.min(timeoutMs, MIN_CALL_MS);
  // Reads sent per region since the poll last took them (takeReads): the region's read budget pays them.
  let reads = new Map<string, number>();
  const call = async <T>(method: string, name: string, timeoutMs: number, send: () => Promise<T>): Promise<T> => {
    const region = READ_RPCS.has(method) ? regionOfName(name) : undefined;
    if (region) reads.set(region, (reads.get(region) ?? 0) + 1);
    try {
      return await send();
    } catch (err) {
      throw callError(method, name, timeoutMs, err);
    }
  };

  /**
   * One page of a job's executions, newest first (autoPaginate off: we decide when to stop), with only
   * the `fields` asked for (see STATUS_FIELDS).
   */
  const listPage = (job: string, fields: string, endBy?: number): ListPage => async (request) => {
    const timeoutMs = timeoutFor(timeouts.list, endBy);
    return call('listExecutions', job, timeoutMs, () => executions.listExecutions(request, {
      ...callOptions(timeoutMs, { 'x-goog-fieldmask': fields }), autoPaginate: false,
    }));
  };

  /**
   * One execution's state by getExecution. One that no longer exists is read by whether its job does
   * (vanishedStatus); while that cannot be told, the status is unread and asked again next cycle.
   * `jobsSeen` shares one jobs.get per job among the executions of one statusMany: after a retention
   * sweep, hundreds of a job's executions may be gone at once.
   */
  const status = async (executionName: string, jobsSeen = new Map<string, Promise<boolean>>(), endBy?: number): Promise<ExecutionStatus> => {
    try {
      const timeoutMs = timeoutFor(timeouts.read, endBy);
      const [execution] = await call('getExecution', executionName, timeoutMs, () =>
        executions.getExecution({ name: executionName }, callOptions(timeoutMs)),
      );
      return executionStatus(execution);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const job = executionName.replace(/\/executions\/[^/]+$/, '');
      if (!jobsSeen.has(job)) jobsSeen.set(job, jobExists(job, endBy));
      return vanishedStatus(executionName, job, await jobsSeen.get(job)!);
    }
  };

  /** Whether a job exists, by jobs.get with only its name asked for. */
  const jobExists = async (job: string, endBy?: number): Promise<boolean> => {
    const timeoutMs = timeoutFor(timeouts.read, endBy);
    return call('getJob', job, timeoutMs, () => jobs.getJob({ name: job }, callOptions(timeoutMs, { 'x-goog-fieldmask': 'name' }))).then(
      () => true,
      (err: unknown) => {
        if (isNotFound(err)) return false;
        throw err;
      },
    );
  };

  return {
    async dispatch(req, timeoutMs = timeouts.dispatch) {
      const name = jobName(req.spec, `task "${req.taskName}"`, options);
      const [operation] = await call('runJob', name, timeoutMs, () =>
        jobs.runJob({ name, overrides: overridesFor(req) }, callOptions(timeoutMs)),
      ).catch((err: unknown) => {
        throw dispatchRefusal(name, err);
      });
      // The operation ends only when the execution does; its metadata already is the new
      // Execution, so the name is known without waiting.
      const executionName = operationExecution(operation, decodeExecution)?.name;
      // Accepted, so an execution most likely exists: findStarted can name it.
      if (!executionName) throw new ExecutorFault('ambiguous', `Cloud Run runJob ${name}: operation ${operation.name} names no execution`);
      return executionName;
    },

    status: (executionName) => status(executionName),

    async taskEnds(executionName, endBy) {
      const ends = new Map<number, TaskEnd>();
      let request: ListTasksRequest | null = { parent: executionName, pageSize: TASKS_PAGE };
      while (request) {
        const timeoutMs = timeoutFor(timeouts.list, endBy);
        const [page, next]: [Task[], ListTasksRequest | null, unknown] = await call('listTasks', executionName, timeoutMs, () =>
          tasks().listTasks(request!, { ...callOptions(timeoutMs, { 'x-goog-fieldmask': TASK_FIELDS }), autoPaginate: false }));
        for (const task of page) if (task.index != null) ends.set(task.index, taskEnd(task));
        request = next;
      }
      return ends;
    },

    takeReads() {
      const taken = reads;
      reads = new Map();
      return taken;
    },

    async statusMany(names, concurrency, endBy = Infinity, onRead) {
      const statuses = new Map<string, ExecutionStatus | Error>();
      // Each status is told as soon as it is known, so a caller may record it before a slow listing ends.
      const found = (name: string, got: ExecutionStatus | Error) => {
        statuses.set(name, got);
        onRead?.(name, got);
      };
      const limit = pLimit(concurrency);
      let outOfQuota: ExecutorFault | undefined;
      await Promise.all(jobsToList(names).map(([job, wanted]) => limit(async () => {
        try {
          if (outOfQuota) throw outOfQuota;
          await settleFromListing(job, wanted, (execution) => found(execution.name!, executionStatus(execution)), listPage(job, STATUS_FIELDS, endBy), startBy(timeouts.list, endBy));
        } catch (err) {
          const left = [...wanted].filter((name) => !statuses.has(name));
          // No such job: its executions are gone with it, as status() would find one by one.
          if (isNotFound(err)) {
            for (const name of left) found(name, vanishedStatus(name, job, false));
            return;
          }
          // Any other fault leaves the rest for a later cycle: one getExecution each would answer one
          // failed call with hundreds, and after a 429 would only spend more of the quota.
          if (err instanceof ExecutorFault && err.kind === 'quota') outOfQuota = err;
          for (const name of left) found(name, err as Error);
        }
      })));
      const left = [...new Set(names)].filter((name) => !statuses.has(name));
      const jobsSeen = new Map<string, Promise<boolean>>();
      const read = outOfQuota ? new Map(left.map((name) => [name, outOfQuota!])) : await statusEach(left, (n) => status(n, jobsSeen, endBy), concurrency, startBy(timeouts.read, endBy), onRead);
      for (const [name, got] of read) statuses.set(name, got);
      return statuses;
    },

    async cancel(executionName, endBy) {
      const timeoutMs = timeoutFor(timeouts.read, endBy);
      try {
        // The operation ends when the execution has stopped; the next status check sees that.
        await call('cancelExecution', executionName, timeoutMs, () =>
          executions.cancelExecution({ name: executionName }, callOptions(timeoutMs)),
        );
      } catch (err) {
        // Gone, or already finished: either way there is nothing left to stop.
        if (isNotFound(err) || (err instanceof CloudRunCallError && err.status === 'FAILED_PRECONDITION')) return;
        // A tick may be allowed to run jobs and not to cancel them: say what it lacks (Cloud Run's
        // "Execute jobs" page: cancelling needs roles/run.developer on the job).
        if (err instanceof CloudRunCallError && err.status === 'PERMISSION_DENIED') {
          throw new CloudRunCallError(`${err.message} (grant run.executions.cancel on the job to the identity the tick runs as; roles/run.developer has it)`, err.status, err);
        }
        throw err;
      }
    },

    async findStarted(lost, endBy) {
      const { byJob, unsendable } = groupByJob(lost, options);
      // dispatch refuses these before any API call, so they cannot have started.
      const found = new Map<LostAttempt, string | null>(unsendable.map((attempt) => [attempt, null]));
      const limit = pLimit(LIST_CONCURRENCY);
      await Promise.all([...byJob].map(([job, attempts]) => limit(async () => {
        try {
          const settled = await startedIn(job, attempts, listPage(job, STARTED_FIELDS, endBy), startBy(timeouts.list, endBy));
          for (const [attempt, name] of settled) found.set(attempt, name);
          // Cut short by its page cap or the deadline: the rest are asked again on a later tick.
          if (settled.size < attempts.length) log('WARNING', `${attempts.length - settled.size} lost attempt(s) of ${job} not settled this tick: search cut short`);
        } catch (err) {
          // No such job: nothing of it can be running, and sending the attempt again would fail the same way.
          if (isNotFound(err)) {
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

const isNotFound = (err: unknown) => err instanceof CloudRunCallError && err.status === 'NOT_FOUND';

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

/** The container overrides of one attempt: the contract's env, and the task's args, taskCount and timeout. */
function overridesFor(req: DispatchRequest): Overrides {
  const { args, timeoutMs } = req.spec;
  // An array execution runs one Cloud Run task per logical index it carries.
  const taskCount = req.indexes?.length ?? req.spec.taskCount;
  const env = Object.entries(executionEnv(req)).map(([name, value]) => ({ name, value }));
  return {
    // An empty list cannot travel in proto3, so "no arguments" has its own flag.
    containerOverrides: [{ env, ...(args && (args.length ? { args } : { clearArgs: true })) }],
    ...(taskCount !== undefined && { taskCount }),
    // Cloud Run's task timeout: a backstop to tickrun's own, which cancels the execution.
    ...(timeoutMs !== undefined && { timeout: { seconds: Math.ceil(timeoutMs / 1000) } }),
  };
}
