import type { Pool } from 'pg';
import type { Config } from '../config';
import { countingDb } from '../db';
import { errorText } from '../errors';
import type { Executor } from '../executors/executor';
import { ON_EXECUTION_STATUSES, RUN_CANCELLED, sqlList, UNFINISHED_RUN_STATUSES, UNSENT_STATUSES, type RunStatus } from '../lifecycle';
import { getRun } from '../model/runs';
import { recordOutcomes } from '../steps/record';
import { stopAttempts, type ExecutionAttempt } from '../steps/stop';
import type { ExecutorKind } from '../workflows/definition';

// The run and its unsent tasks end in one statement; tasks on an execution are stopped after it.
const CANCEL_SQL = `
with run as (
  update runs set status = 'cancelled', finished_at = now(), error = 'cancelled'
  where id = $1 and status in ${sqlList(UNFINISHED_RUN_STATUSES)}
  returning id
), unsent as (
  update tasks set status = 'cancelled', finished_at = now(), updated_at = now(), error = '${RUN_CANCELLED}'
  where run_id in (select id from run) and status in ${sqlList(UNSENT_STATUSES)}
  returning id
)
select (select count(*) from run)::int as cancelled, (select count(*) from unsent)::int as tasks`;

const ON_EXECUTION_SQL = `
select t.id, t.attempt, t.execution_name, t.stop_sent_at is not null as "stopSent",
       coalesce(t.stop_asked_at < now() - $2 * interval '1 millisecond', false) as "stopOverdue",
       r.definition -> 'tasks' -> t.name ->> 'executor' as executor
from tasks t join runs r on r.id = t.run_id
where t.run_id = $1 and t.status in ${sqlList(ON_EXECUTION_STATUSES)}`;

/**
 * What `cancel` did: `cancelledTasks` counts the tasks it cancelled or is cancelling, `executionsCancelled`
 * the executions whose stop the executor accepted; `errors` names those it could not stop, with why (a
 * refusal ends the task at once; a fault is asked again by the next ticks' polls).
 */
export interface CancelResult {
  cancelled: boolean;
  status: RunStatus;
  cancelledTasks: number;
  executionsCancelled: number;
  errors: string[];
}

/**
 * Cancels a run: its waiting and queued tasks at once, its executions through their executor. A task whose
 * execution is asked to stop stays in flight until a tick's poll sees the execution ended, then ends
 * `cancelled` (or as what it was, if it ended first). A task being sent right now is stopped by the next
 * tick's poll, which sees the run cancelled. `cancelled` is false, with the run's status, when it had
 * already ended.
 */
export async function cancelRun(pool: Pool, config: Config, executors: Record<ExecutorKind, Executor>, id: string): Promise<CancelResult> {
  const run = await getRun(pool, id);
  const { rows } = await pool.query(CANCEL_SQL, [run.id]);
  if (rows[0].cancelled === 0) return { cancelled: false, status: run.status, cancelledTasks: 0, executionsCancelled: 0, errors: [] };
  const { rows: onExecution } = await pool.query<ExecutionAttempt & { stopSent: boolean; stopOverdue: boolean }>(ON_EXECUTION_SQL, [run.id, config.stopTimeoutMs]);
  const end = { outcome: 'cancelled', error: RUN_CANCELLED } as const;
  const { outcomes, errors: unstopped } = await stopAttempts(executors, onExecution.map((a) => ({ ...a, end })), {
    concurrency: config.statusConcurrency,
    stopTimeoutMs: config.stopTimeoutMs,
  });
  const recorded = await recordOutcomes(countingDb(pool), outcomes);
  const sent = new Set(outcomes.filter((o) => o.stopSent).map((o) => o.id));
  const stopping = recorded.filter((r) => sent.has(r.id)).length;
  const ended = recorded.filter((r) => r.status === 'cancelled').length;
  const errors = unstopped.map(({ attempt, error }) => `${attempt.execution_name}: ${errorText(error)}`);
  return { cancelled: true, status: 'cancelled', cancelledTasks: rows[0].tasks + stopping + ended, executionsCancelled: stopping, errors };
}
