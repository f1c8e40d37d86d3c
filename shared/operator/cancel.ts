import type { Pool } from 'pg';
import type { Config } from '../config';
import { countingDb } from '../db';
import { errorText } from '../errors';
import type { Executor } from '../executors/executor';
import { ON_EXECUTION_STATUSES, RUN_CANCELLED, sqlList, UNFINISHED_RUN_STATUSES, UNSENT_STATUSES, type RunStatus } from '../lifecycle';
import { getRun } from '../model/runs';
import { ARRAY_OUTCOMES, recordOutcomes } from '../steps/record';
import { stopAttempts, type ExecutionAttempt } from '../steps/stop';
import type { ExecutorKind } from '../workflows/definition';

// The run ends first, then its unsent tasks, in one transaction: the second statement's snapshot, taken
// once the run's row is held, sees every claim a tick gave back before (record reads the run's status
// under a share lock, so a give-back either ended before this or waits, then sees the run cancelled).
const CANCEL_RUN_SQL = `
update runs set status = 'cancelled', finished_at = now(), error = 'cancelled'
where id = $1 and status in ${sqlList(UNFINISHED_RUN_STATUSES)}
returning id`;

const CANCEL_UNSENT_SQL = `
update tasks set status = 'cancelled', finished_at = now(), updated_at = now(), error = '${RUN_CANCELLED}'
where run_id = $1 and status in ${sqlList(UNSENT_STATUSES)}`;

const ON_EXECUTION_SQL = `
select t.id, t.attempt, t.execution_name, t.stop_sent_at is not null as "stopSent",
       coalesce(t.stop_asked_at < now() - $2 * interval '1 millisecond', false) as "stopOverdue",
       r.definition -> 'tasks' -> t.name ->> 'executor' as executor, t.array_head is not null as array
from tasks t join runs r on r.id = t.run_id
-- An array execution is stopped through its head, whose end is every row's (shared/arrays.ts).
where t.run_id = $1 and t.status in ${sqlList(ON_EXECUTION_STATUSES)} and (t.array_head is null or t.array_head = t.id)`;

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
 * `cancelled` (or as what it was, if it ended first). A task being sent right now ends with its send: given
 * back unsent, it is cancelled (steps/record.ts); started, the next tick's poll sees the run cancelled.
 * `cancelled` is false, with the run's status, when it had already ended.
 */
export async function cancelRun(pool: Pool, config: Config, executors: Record<ExecutorKind, Executor>, id: string): Promise<CancelResult> {
  const run = await getRun(pool, id);
  const unsent = await cancelRunAndUnsent(pool, run.id);
  if (unsent === undefined) return { cancelled: false, status: run.status, cancelledTasks: 0, executionsCancelled: 0, errors: [] };
  const { rows: onExecution } = await pool.query<ExecutionAttempt & { stopSent: boolean; stopOverdue: boolean; array: boolean }>(ON_EXECUTION_SQL, [run.id, config.stopTimeoutMs]);
  const heads = new Set(onExecution.filter((a) => a.array).map((a) => a.id));
  const end = { outcome: 'cancelled', error: RUN_CANCELLED } as const;
  const { outcomes, errors: unstopped } = await stopAttempts(executors, onExecution.map((a) => ({ ...a, end })), {
    concurrency: config.statusConcurrency,
    stopTimeoutMs: config.stopTimeoutMs,
  });
  // An array execution that has ended ends all its rows alike here; a tick's poll, which reads its tasks
  // one by one, records those that are still stopping.
  const recorded = await recordOutcomes(countingDb(pool), outcomes.map((o) => (heads.has(o.id) && ARRAY_OUTCOMES.has(o.outcome) ? { ...o, array: {} } : o)));
  const sent = new Set(outcomes.filter((o) => o.stopSent).map((o) => o.id));
  const stopping = recorded.filter((r) => sent.has(r.id)).length;
  const ended = recorded.filter((r) => r.status === 'cancelled').length;
  const errors = unstopped.map(({ attempt, error }) => `${attempt.execution_name}: ${errorText(error)}`);
  return { cancelled: true, status: 'cancelled', cancelledTasks: unsent + stopping + ended, executionsCancelled: stopping, errors };
}

/** Cancels the run and its unsent tasks (CANCEL_RUN_SQL, CANCEL_UNSENT_SQL); how many tasks, or undefined when the run had ended. */
async function cancelRunAndUnsent(pool: Pool, runId: string): Promise<number | undefined> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rowCount } = await client.query(CANCEL_RUN_SQL, [runId]);
    const unsent = rowCount ? (await client.query(CANCEL_UNSENT_SQL, [runId])).rowCount ?? 0 : undefined;
    await client.query('commit');
    return unsent;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
