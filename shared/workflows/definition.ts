/**
 * A workflow as stored in the database and pinned on each run: defaults already merged into every
 * task, dependencies resolved, durations in milliseconds. Produced only by parseWorkflow.
 */
export interface WorkflowDefinition {
  name: string;
  description?: string;
  /** Five-field cron, read in `timezone` (UTC when none). */
  schedule?: string;
  /** IANA time zone the schedule is read in, like Europe/Paris. */
  timezone?: string;
  /** After downtime: `latest` runs only the newest missed slot, `all` every missed slot (up to a cap). */
  catchup?: 'latest' | 'all';
  /** Most tasks of this workflow in flight at once, across its runs. */
  concurrency?: number;
  /**
   * Its share of the claims, against other workflows' (default 1): with ready tasks waiting in the same
   * region, a workflow of priority 2 is claimed twice as often as one of priority 1 (shared/regions.ts).
   */
  priority?: number;
  /** Absolute folder of the workflow file: `process` commands run there. */
  dir: string;
  tasks: Record<string, TaskSpec>;
}

/** What a workflow's name may be: it names the workflow in URLs, labels and the CLI's arguments. */
export const WORKFLOW_NAME = /^[a-z][a-z0-9-]{0,62}$/;
/** WORKFLOW_NAME in words, for the errors that refuse a name. */
export const WORKFLOW_NAME_RULE = 'lower-case letters, digits and "-", starting with a letter, at most 63 characters';

export type ExecutorKind = 'cloudrun' | 'process';

/** One task of a workflow with its defaults applied. */
export interface TaskSpec {
  executor: ExecutorKind;
  /** cloudrun: the job id or its full name `projects/P/locations/L/jobs/J`. */
  job?: string;
  project?: string;
  region?: string;
  /** process: argv, run in the workflow file's folder. */
  command?: string[];
  /** Fan-out: this many tasks, index 0..count-1. */
  count: number;
  args?: string[];
  env: Record<string, string>;
  /** cloudrun: Cloud Run's own taskCount override inside one execution. */
  taskCount?: number;
  /**
   * cloudrun: the `count` logical tasks are sent together, as executions of up to 10,000 Cloud Run tasks
   * each (shared/arrays.ts), instead of one execution each.
   */
  array?: true;
  dependsOn: string[];
  /** Every task name this one depends on, directly or not (a failure in any of them skips this task). */
  ancestors: string[];
  /** Further attempts after a failed one. */
  retries: number;
  /** First retry delay, doubling each attempt, capped at 10 minutes. */
  backoffMs: number;
  /** An attempt running longer is cancelled and counts as failed. */
  timeoutMs?: number;
}
