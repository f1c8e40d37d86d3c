import pLimit from 'p-limit';
import type { TaskSpec } from '../workflows/definition';
import { ARRAY_ID_ENV, formatIndexes, TASK_INDEXES_ENV } from '../arrays';

/** Everything an executor needs to start one attempt of one task. */
export interface DispatchRequest {
  taskId: string;
  runId: string;
  workflow: string;
  taskName: string;
  index: number;
  /** From 1. */
  attempt: number;
  params: Record<string, string>;
  spec: TaskSpec;
  /** The workflow file's folder (process tasks run there). */
  workflowDir: string;
  /**
   * An array execution (shared/arrays.ts): the logical indexes it runs, ascending, one Cloud Run task
   * each. `taskId` and `index` are then its head's, and the head's id names the execution.
   */
  indexes?: number[];
}

/** How one Cloud Run task of an ended array execution ended; `unknown` when Cloud Run did not say. */
export type TaskEnd = { state: 'success' } | { state: 'failed' | 'cancelled' | 'unknown'; error: string };

/**
 * What an executor says of one execution. `running` covers every state before an end. A cancelled
 * execution carries the executor's own `message` when it gave one (who cancelled it, or why). A failed
 * one with `outcomeUnknown` ended but can no longer be read: it may have succeeded, so it is never retried.
 */
export type ExecutionStatus =
  | { state: 'running' }
  | { state: 'success' }
  | { state: 'failed'; error: string; outcomeUnknown?: true }
  | { state: 'cancelled'; message?: string };

/**
 * An executor call that failed in a way that must not spend an attempt:
 * - `retryable`: the executor refused the request and did nothing (503, connection refused): try later;
 * - `quota`: refused for quota or rate (429 / RESOURCE_EXHAUSTED): try later and stop sending this tick;
 * - `ambiguous`: the request may have been carried out, the answer was lost (500, a timeout, a reset
 *   connection): never send it again blindly; find out with `findStarted` first.
 * An ExecutorRefusal from `dispatch` ends the task; every other error is a failed attempt.
 */
export class ExecutorFault extends Error {
  constructor(
    readonly kind: 'retryable' | 'quota' | 'ambiguous',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ExecutorFault';
  }
}

/**
 * A dispatch the executor refused in a way no retry cures (a job that does not exist, a permission
 * missing): the task fails at once, whatever retries it has left. The message says what to fix.
 */
export class ExecutorRefusal extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExecutorRefusal';
  }
}

/** The least deadline a call is started with (or its own, when shorter): a shorter one would mostly time out. */
export const MIN_CALL_MS = 1000;

/**
 * The deadline of a call started now when every call must end by `endBy` (performance.now() ms): its
 * own, cut to what is left; 0 when too little is left to start it at all.
 */
export function deadlineWithin(timeoutMs: number, endBy = Infinity): number {
  const ms = Math.min(timeoutMs, Math.floor(endBy - performance.now()));
  return ms >= Math.min(timeoutMs, MIN_CALL_MS) ? ms : 0;
}

/** A call not started because the tick's budget was spent: the name is read by a later tick. */
export class PastDeadline extends Error {
  constructor() {
    super("not asked: the tick's budget was spent, a later tick asks");
    this.name = 'PastDeadline';
  }
}

/** Told of each status (or the error that kept it from being read) as soon as it is known. */
export type OnRead = (executionName: string, status: ExecutionStatus | Error) => void;

/** An attempt that was claimed, maybe sent, but whose execution was never recorded. */
export interface LostAttempt {
  /** The task's id, or for an array execution its head's (its TICKRUN_ARRAY_ID). */
  taskId: string;
  array?: true;
  attempt: number;
  spec: TaskSpec;
  /** When the attempt was claimed: no execution of it can be older. */
  claimedAt: Date;
}

/** Where attempts run. Implementations: executors/cloudRun.ts, executors/process.ts. */
export interface Executor {
  /** Starts one attempt; resolves to the execution's name once the executor has accepted it. `timeoutMs`: the call's deadline, when shorter than the configured one. */
  dispatch(req: DispatchRequest, timeoutMs?: number): Promise<string>;
  /** Reads an execution's state. One that no longer exists is `failed` with an error saying why, and `outcomeUnknown` if it may have succeeded. */
  status(executionName: string): Promise<ExecutionStatus>;
  /**
   * Reads many executions' states, at most `concurrency` calls at once: each name maps to its status, or
   * to the Error that kept it from being read (an API fault), which fails that name only. Every call ends
   * by `endBy` (performance.now() ms; see deadlineWithin): the names not read by then map to a PastDeadline error.
   */
  statusMany(executionNames: string[], concurrency: number, endBy?: number, onRead?: OnRead): Promise<Map<string, ExecutionStatus | Error>>;
  /**
   * Asks the executor to stop an execution; an execution already ended is not an error. It may go on
   * running for a while: `status` says `cancelled` (or how it ended) once it has stopped.
   */
  cancel(executionName: string, endBy?: number): Promise<void>;
  /**
   * Finds out whether lost attempts were started, by the TICKRUN_TASK_ID and TICKRUN_ATTEMPT they were
   * given: for each attempt it could settle, the execution's name, or null when none was started.
   * An attempt it could not settle (the executor did not answer, or there was no time left for a call
   * ending by `endBy`, on the performance.now() clock) is left out of the map.
   */
  findStarted(lost: LostAttempt[], endBy?: number): Promise<Map<LostAttempt, string | null>>;
  /**
   * The read requests sent since the last take, per region (`project/region`), for the region's read
   * budget (shared/regions.ts); an executor with no such quota has none.
   */
  takeReads?(): Map<string, number>;
  /**
   * How each Cloud Run task of an ended array execution ended, by its index in the execution
   * (CLOUD_RUN_TASK_INDEX), read page by page, each call ending by `endBy`. An error when it could not be
   * read in full: the execution is then checked again on a later cycle.
   */
  taskEnds?(executionName: string, endBy?: number): Promise<Map<number, TaskEnd>>;
}

/**
 * The contract's environment given to every execution, besides the task's own `env`. An array execution
 * runs many logical tasks: instead of one task's id and index it carries its head's id, which names the
 * execution (TICKRUN_ARRAY_ID), and the indexes it runs (TICKRUN_TASK_INDEXES), from which each container
 * reads its own by CLOUD_RUN_TASK_INDEX (README, "Array tasks"). Its tasks share one attempt.
 */
export function executionEnv(req: DispatchRequest): Record<string, string> {
  const task: Record<string, string> = req.indexes
    ? { [ARRAY_ID_ENV]: req.taskId, [TASK_INDEXES_ENV]: formatIndexes(req.indexes) }
    : { TICKRUN_TASK_ID: req.taskId, TICKRUN_TASK_INDEX: String(req.index) };
  return {
    ...req.spec.env,
    TICKRUN_WORKFLOW: req.workflow,
    TICKRUN_RUN_ID: req.runId,
    TICKRUN_TASK_NAME: req.taskName,
    ...task,
    TICKRUN_ATTEMPT: String(req.attempt),
    TICKRUN_PARAMS: JSON.stringify(req.params),
  };
}

/**
 * statusMany by one `status` call per name, `concurrency` at once; an error is kept as that name's entry.
 * After an answer out of quota no further call is started: each would be refused too and spend more of
 * it, so the names not yet read get that fault and are read on a later cycle.
 */
export async function statusEach(
  names: string[],
  status: (name: string) => Promise<ExecutionStatus>,
  concurrency: number,
  /** No call starts past it (performance.now() ms). */
  deadline = Infinity,
  onRead?: OnRead,
): Promise<Map<string, ExecutionStatus | Error>> {
  const limit = pLimit(concurrency);
  let outOfQuota: ExecutorFault | undefined;
  const read = (name: string) => limit(async () => {
    const got = await readOne(name);
    onRead?.(name, got);
    return got;
  });
  const readOne = async (name: string): Promise<ExecutionStatus | Error> => {
    if (outOfQuota) return outOfQuota;
    if (performance.now() > deadline) return new PastDeadline();
    try {
      return await status(name);
    } catch (err) {
      if (err instanceof ExecutorFault && err.kind === 'quota') outOfQuota = err;
      return err instanceof Error ? err : new Error(String(err));
    }
  };
  const unique = [...new Set(names)];
  const results = await Promise.all(unique.map(read));
  return new Map(unique.map((name, i) => [name, results[i]]));
}
