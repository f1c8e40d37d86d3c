/**
 * The lifecycle of runs and tasks, defined once: their statuses, the sets the steps select them by, the
 * retry rule and the backoffs. Statements are built from the SQL fragments below; the CLI and the
 * dashboard read the same lists; test/integration/lifecycle.test.ts checks them against the tables'
 * check constraints and partial indexes.
 */

/** A run's statuses (the contract's): pending until expanded, running until its tasks end. */
export const RUN_STATUSES = ['pending', 'running', 'success', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * A task's statuses. waiting: dependencies not yet met; queued: ready once next_attempt_at has come;
 * claimed: taken by a tick and being sent, under a lease; dispatched: the executor accepted it; running:
 * the executor says it runs; then one of the four ends.
 */
export const TASK_STATUSES = ['waiting', 'queued', 'claimed', 'dispatched', 'running', 'success', 'failed', 'skipped', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Runs that ticks still work on (and that `cancel` can stop). */
export const UNFINISHED_RUN_STATUSES = ['pending', 'running'] as const satisfies readonly RunStatus[];

/** Runs that have ended. */
export const ENDED_RUN_STATUSES = RUN_STATUSES.filter((s) => !(UNFINISHED_RUN_STATUSES as readonly string[]).includes(s));

/** Tasks that have not ended: a run with one of these is not complete. */
export const UNFINISHED_TASK_STATUSES = ['waiting', 'queued', 'claimed', 'dispatched', 'running'] as const satisfies readonly TaskStatus[];

/** Tasks in flight: each holds its workflow's concurrency slot until it leaves these. */
export const IN_FLIGHT_STATUSES = ['claimed', 'dispatched', 'running'] as const satisfies readonly TaskStatus[];

/** Tasks on an execution: the ones poll checks and cancel stops through their executor. */
export const ON_EXECUTION_STATUSES = ['dispatched', 'running'] as const satisfies readonly TaskStatus[];

/** Tasks not yet sent: `cancel` ends these at once. */
export const UNSENT_STATUSES = ['waiting', 'queued'] as const satisfies readonly TaskStatus[];

/** How an attempt ends, as its history row (task_attempts) records it. */
export const ATTEMPT_END_STATUSES = ['success', 'failed', 'cancelled'] as const satisfies readonly TaskStatus[];

/** Ends that break what depends on a task: its downstream is skipped. */
export const BROKEN_STATUSES = ['failed', 'cancelled'] as const satisfies readonly TaskStatus[];

/** The task statuses no tick changes again (only an operator's retry does). */
export const TERMINAL_TASK_STATUSES = TASK_STATUSES.filter((s) => !(UNFINISHED_TASK_STATUSES as readonly string[]).includes(s));

/** The error a run's tasks and attempts end with when the run is cancelled. */
export const RUN_CANCELLED = 'run cancelled';

/** The longest wait before a retry: the workflow's `backoff` doubles each attempt up to this. */
export const RETRY_BACKOFF_CAP_MS = 600_000;

/**
 * How long a task the executor refused (503, 429) waits before it is claimed again, no attempt spent:
 * the base, and up to `FAULT_RETRY_JITTER_MS` more so that refused tasks do not come back all at once.
 */
export const FAULT_RETRY_MS = 2000;
export const FAULT_RETRY_JITTER_MS = 1000;

/** A fault retry's delay (see FAULT_RETRY_MS). */
export const faultRetryDelay = (): number => FAULT_RETRY_MS + Math.floor(Math.random() * FAULT_RETRY_JITTER_MS);

/**
 * How long a lost claim whose lookup failed (the listing faulted, or was cut short) waits before it is
 * looked for again: a quarter of the time it has been unsettled, from LOOKUP_RETRY_MIN_MS up to
 * LOOKUP_RETRY_MAX_MS, and half of that again at random, so that the lookups of many claims spread out
 * and a listing that keeps failing is asked less and less often.
 */
export const LOOKUP_RETRY_MIN_MS = 1000;
export const LOOKUP_RETRY_MAX_MS = 30_000;
export const lookupRetryDelay = (unsettledMs: number, random = Math.random()): number =>
  Math.round(Math.min(LOOKUP_RETRY_MAX_MS, Math.max(LOOKUP_RETRY_MIN_MS, unsettledMs / 4)) * (0.5 + random / 2));

/** A list of statuses as an SQL list literal, `('a', 'b')`, to write after `in`. */
export function sqlList(statuses: readonly string[]): string {
  return `(${statuses.map((s) => `'${s}'`).join(', ')})`;
}

/**
 * The retry rule, over a task `t` and its run `r`: a failed attempt is retried while attempts remain and
 * the run still runs (a cancelled or failed run starts nothing new).
 */
export const retryAllowed = (t: string, r: string): string => `(${t}.attempt < ${t}.max_attempts and ${r}.status = 'running')`;

/** The wait before a task `t`'s next attempt: its backoff, doubling with each attempt spent, capped. */
export const retryDelaySql = (t: string): string =>
  `least(${t}.backoff_ms * power(2, ${t}.attempt - 1), ${RETRY_BACKOFF_CAP_MS}) * interval '1 millisecond'`;
