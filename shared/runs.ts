import type { Pool } from 'pg';
import type { TickContext } from './context';
import pLimit from 'p-limit';
import { errorText, UsageError } from './errors';
import type { Executor } from './executors/executor';
import { recordOutcomes } from './steps/record';
import { countingDb } from './db';
import type { Config } from './config';
import type { ExecutorKind } from './workflows/definition';
import { nextScheduleSlot } from './workflows/schedule';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Refuses an id that is not a run id at all, before asking the database. */
export function checkRunId(id: string): string {
  if (!UUID.test(id)) throw new UsageError(`"${id}" is not a run id: run ids are UUIDs, as \`tickrun status\` lists them`);
  return id.toLowerCase();
}

/** A run as `tickrun status --json` prints it (the contract's shape). */
export interface RunView {
  id: string;
  workflow: string;
  status: string;
  tasks: Record<string, number>;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  /** `manual` or `schedule`. */
  triggeredBy: string;
  /** The schedule slot a scheduled run is for. */
  scheduledFor: string | null;
  idempotencyKey: string | null;
  params: Record<string, string>;
}

/** A task as `tickrun tasks --json` prints it (the contract's shape). */
export interface TaskView {
  id: string;
  name: string;
  index: number;
  status: string;
  attempt: number;
  executionName: string | null;
  error: string | null;
}

// The insert does nothing when the key is taken; the run that holds it is then read in a second
// statement, whose fresh snapshot sees a run committed by a trigger racing this one.
const TRIGGER_SQL = `
insert into runs (workflow, workflow_version, definition, params, idempotency_key, triggered_by)
select name, version, definition, $2, $3, $4 from workflows where name = $1
on conflict (workflow, idempotency_key) do nothing
returning id`;

/**
 * Creates a run of a workflow with its definition pinned. With an idempotency key, the same key for the
 * same workflow returns the run it created first. Throws UsageError for an unknown workflow.
 */
export async function triggerRun(
  pool: Pool,
  workflow: string,
  opts: { params?: Record<string, string>; idempotencyKey?: string; triggeredBy?: string } = {},
): Promise<{ runId: string; created: boolean }> {
  const key = opts.idempotencyKey ?? null;
  const { rows } = await pool.query<{ id: string }>(TRIGGER_SQL, [workflow, JSON.stringify(opts.params ?? {}), key, opts.triggeredBy ?? 'manual']);
  if (rows[0]) return { runId: rows[0].id, created: true };
  if (key !== null) {
    const existing = await pool.query<{ id: string }>('select id from runs where workflow = $1 and idempotency_key = $2', [workflow, key]);
    if (existing.rows[0]) return { runId: existing.rows[0].id, created: false };
  }
  throw new UsageError(`unknown workflow "${workflow}": \`tickrun workflows\` lists them, \`tickrun apply\` adds them`);
}

const RUN_COLUMNS = `r.id, r.workflow, r.status, r.created_at, r.started_at, r.finished_at, r.error, r.triggered_by, r.scheduled_for,
  r.idempotency_key, r.params,
  coalesce((select jsonb_object_agg(status, n) from
    (select status, count(*)::int as n from tasks t where t.run_id = r.id group by status) c), '{}') as tasks`;

function toRunView(r: any): RunView {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: r.id,
    workflow: r.workflow,
    status: r.status,
    tasks: r.tasks,
    createdAt: r.created_at.toISOString(),
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    error: r.error,
    triggeredBy: r.triggered_by,
    scheduledFor: iso(r.scheduled_for),
    idempotencyKey: r.idempotency_key,
    params: r.params,
  };
}

/** One run with its task counts by status; UsageError when there is no such run. */
export async function getRun(pool: Pool, id: string): Promise<RunView> {
  const { rows } = await pool.query(`select ${RUN_COLUMNS} from runs r where r.id = $1`, [checkRunId(id)]);
  if (!rows[0]) throw new UsageError(`unknown run ${id}`);
  return toRunView(rows[0]);
}

/** Runs, latest first. */
export async function listRuns(pool: Pool, opts: { limit?: number; workflow?: string } = {}): Promise<RunView[]> {
  const { rows } = await pool.query(
    `select ${RUN_COLUMNS} from runs r where ($2::text is null or r.workflow = $2)
     order by r.created_at desc, r.id limit $1`,
    [opts.limit ?? 50, opts.workflow ?? null],
  );
  return rows.map(toRunView);
}

/** One run's tasks, in definition order (name, then fan-out index). */
export async function listTasks(pool: Pool, runId: string): Promise<TaskView[]> {
  await getRun(pool, runId);
  const { rows } = await pool.query(
    `select id, name, task_index, status, attempt, execution_name, error from tasks
     where run_id = $1 order by created_at, name, task_index`,
    [checkRunId(runId)],
  );
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    index: r.task_index,
    status: r.status,
    attempt: r.attempt,
    executionName: r.execution_name,
    error: r.error,
  }));
}

// The run and its unstarted tasks end in one statement; tasks in flight are left to the executor.
const CANCEL_SQL = `
with run as (
  update runs set status = 'cancelled', finished_at = now(), error = 'cancelled'
  where id = $1 and status in ('pending', 'running')
  returning id
), unstarted as (
  update tasks set status = 'cancelled', finished_at = now(), updated_at = now(), error = 'run cancelled'
  where run_id in (select id from run) and status in ('waiting', 'queued')
  returning id
)
select (select count(*) from run)::int as cancelled, (select count(*) from unstarted)::int as tasks`;

/**
 * Cancels a run: its queued and waiting tasks at once, its executions in flight through their executor.
 * A task being dispatched right now is cancelled by the next tick's poll, which sees the run cancelled.
 */
export async function cancelRun(
  pool: Pool,
  config: Config,
  executors: Record<ExecutorKind, Executor>,
  id: string,
): Promise<{ cancelled: boolean; status: string; cancelledTasks: number; executionsCancelled: number; errors: string[] }> {
  const run = await getRun(pool, id);
  const { rows } = await pool.query(CANCEL_SQL, [run.id]);
  if (rows[0].cancelled === 0) return { cancelled: false, status: run.status, cancelledTasks: 0, executionsCancelled: 0, errors: [] };
  const { rows: inFlight } = await pool.query(
    `select t.id, t.attempt, t.execution_name, r.definition -> 'tasks' -> t.name ->> 'executor' as executor
     from tasks t join runs r on r.id = t.run_id
     where t.run_id = $1 and t.status in ('dispatched', 'running')`,
    [run.id],
  );
  const errors: string[] = [];
  const limit = pLimit(config.statusConcurrency);
  const outcomes = (
    await Promise.all(
      inFlight.map((t) =>
        limit(async () => {
          try {
            await executors[t.executor as ExecutorKind].cancel(t.execution_name);
            return { id: t.id, attempt: t.attempt, executionName: t.execution_name, outcome: 'cancelled' as const, error: 'run cancelled' };
          } catch (err) {
            // Left in flight: the next tick's poll sees the run cancelled and tries again.
            errors.push(`${t.execution_name}: ${errorText(err)}`);
            return null;
          }
        }),
      ),
    )
  ).filter((o) => o !== null);
  const ctx: TickContext = { config, executors, db: countingDb(pool), clock: () => new Date() };
  const recorded = await recordOutcomes(ctx, outcomes);
  return { cancelled: true, status: 'cancelled', cancelledTasks: rows[0].tasks + recorded.length, executionsCancelled: recorded.length, errors };
}

/**
 * Pauses or resumes a workflow's schedule. Resuming waits for the next slot from now: the slots that
 * passed while paused are not made up for. UsageError for an unknown workflow or one without a schedule.
 */
export async function setSchedulePaused(pool: Pool, workflow: string, paused: boolean, now = new Date()): Promise<{ nextRunAt: string | null }> {
  const { rows } = await pool.query('select definition from workflows where name = $1', [workflow]);
  if (!rows[0]) throw new UsageError(`unknown workflow "${workflow}": \`tickrun workflows\` lists them`);
  const def = rows[0].definition;
  if (!def.schedule) throw new UsageError(`workflow "${workflow}" has no schedule to ${paused ? 'pause' : 'resume'}`);
  const next = paused ? null : nextScheduleSlot(def.schedule, now, def.timezone);
  await pool.query(
    'update workflows set paused = $2, next_slot_at = coalesce($3, next_slot_at), updated_at = now() where name = $1',
    [workflow, paused, next],
  );
  return { nextRunAt: next ? next.toISOString() : null };
}

// A failed run goes back to running with its failed tasks queued and the tasks skipped because of them
// waiting again, all in one statement: one transaction, and the `status = 'failed'` guard on the run's
// row lock makes a second retry racing this one change nothing. No tick touches a failed run's tasks
// (they have all ended), and the run is `running` again only once its tasks are back, so `complete`
// cannot end it in between. Attempt numbers go on from the last one: an execution is known by its task
// and attempt (reap's search), so a number is never reused; each failed task gets its workflow's
// retries again on top of the attempts it has spent.
const RETRY_SQL = `
with run as (
  update runs set status = 'running', finished_at = null, error = null
  where id = $1 and status = 'failed'
    and exists (select 1 from tasks where run_id = $1 and status = 'failed')
  returning id, definition
), failed as (
  select t.id, t.name from tasks t where t.run_id = $1 and t.status = 'failed'
), requeued as (
  update tasks t
  set status = 'queued', next_attempt_at = now(), updated_at = now(), finished_at = null, error = null,
      execution_name = null, dispatched_at = null, lease_until = null, lease_token = null, deadline_at = null, checked_at = null,
      max_attempts = t.attempt + coalesce((run.definition -> 'tasks' -> t.name ->> 'retries')::int, 0) + 1
  from run, failed f
  where t.id = f.id
  returning t.id
), reset as (
  update tasks t
  set status = 'waiting', updated_at = now(), finished_at = null, error = null
  from run
  where t.run_id = run.id and t.status = 'skipped'
    and exists (select 1 from failed f where f.name = any (t.ancestors))
  returning t.id
)
select (select count(*) from run)::int as retried, (select count(*) from requeued)::int as requeued,
       (select count(*) from reset)::int as reset`;

/** Why `retryRun` did nothing to a run in this status: the message both the CLI and the dashboard give. */
export function whyNotRetried(id: string, status: string): string {
  return status === 'failed' ? `run ${id} has no failed task to retry` : `run ${id} is ${status}, not failed: only a failed run can be retried`;
}

/**
 * Retries a failed run: its failed tasks are queued again (with their retries anew) and the tasks
 * skipped because of them wait again; the run is `running` until ticks end it. `retried` is false,
 * with the run's status, when the run is not failed or has no failed task. UsageError for an unknown run.
 */
export async function retryRun(pool: Pool, id: string): Promise<{ retried: boolean; status: string; requeuedTasks: number; resetTasks: number }> {
  const run = await getRun(pool, id);
  const { rows } = await pool.query(RETRY_SQL, [run.id]);
  if (rows[0].retried === 0) return { retried: false, status: (await getRun(pool, id)).status, requeuedTasks: 0, resetTasks: 0 };
  return { retried: true, status: 'running', requeuedTasks: rows[0].requeued, resetTasks: rows[0].reset };
}
