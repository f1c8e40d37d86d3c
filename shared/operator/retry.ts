import type { Pool } from 'pg';
import type { RunStatus } from '../lifecycle';
import { getRun } from '../model/runs';

// A failed run goes back to running with its failed tasks queued and the tasks skipped because of them
// waiting again, all in one statement: one transaction, and the `status = 'failed'` guard on the run's
// row lock makes a second retry racing this one change nothing. No tick touches a failed run's tasks
// (they have all ended), and the run is `running` again only once its tasks are back, so `complete`
// cannot end it in between. Attempt numbers go on from the last one: an execution is known by its task
// and attempt (reap's search), so a number is never reused; each failed task gets its workflow's
// retries again on top of the attempts it has spent. The tasks follow their workflow's concurrency limit
// as it is now, not as it was when they ran; the workflow's row is read under a share lock, so an
// `apply` changing the limit either goes first or waits and then reroutes these tasks itself.
const RETRY_SQL = `
with run as (
  update runs set status = 'running', finished_at = null, error = null
  where id = $1 and status = 'failed'
    and exists (select 1 from tasks where run_id = $1 and status = 'failed')
  returning id, definition, workflow
), workflow as (
  select w.concurrency is not null as limited from workflows w join run on w.name = run.workflow
  for share of w
), failed as (
  select t.id, t.name from tasks t where t.run_id = $1 and t.status = 'failed'
), requeued as (
  update tasks t
  set status = 'queued', next_attempt_at = now(), updated_at = now(), finished_at = null, error = null,
      execution_name = null, dispatched_at = null, lease_until = null, lease_token = null, deadline_at = null, checked_at = null,
      max_attempts = t.attempt + coalesce((run.definition -> 'tasks' -> t.name ->> 'retries')::int, 0) + 1,
      limited = workflow.limited
  from run, workflow, failed f
  where t.id = f.id
  returning t.id
), reset as (
  update tasks t
  set status = 'waiting', updated_at = now(), finished_at = null, error = null, limited = workflow.limited
  from run, workflow
  where t.run_id = run.id and t.status = 'skipped'
    and exists (select 1 from failed f where f.name = any (t.ancestors))
  returning t.id
)
select (select count(*) from run)::int as retried, (select count(*) from requeued)::int as requeued,
       (select count(*) from reset)::int as reset`;

/** Why `retryRun` did nothing to a run in this status: the message both the CLI and the dashboard give. */
export function whyNotRetried(id: string, status: RunStatus): string {
  return status === 'failed' ? `run ${id} has no failed task to retry` : `run ${id} is ${status}, not failed: only a failed run can be retried`;
}

/**
 * Retries a failed run: its failed tasks are queued again (with their retries anew) and the tasks
 * skipped because of them wait again; the run is `running` until ticks end it. `retried` is false,
 * with the run's status, when the run is not failed or has no failed task. NotFoundError for an unknown run.
 */
export async function retryRun(pool: Pool, id: string): Promise<{ retried: boolean; status: RunStatus; requeuedTasks: number; resetTasks: number }> {
  const run = await getRun(pool, id);
  const { rows } = await pool.query(RETRY_SQL, [run.id]);
  if (rows[0].retried === 0) return { retried: false, status: (await getRun(pool, id)).status, requeuedTasks: 0, resetTasks: 0 };
  return { retried: true, status: 'running', requeuedTasks: rows[0].requeued, resetTasks: rows[0].reset };
}
