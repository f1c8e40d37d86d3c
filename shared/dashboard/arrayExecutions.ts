import type { Pool } from 'pg';
import { ON_EXECUTION_STATUSES, sqlList } from '../lifecycle';
import { executionLinks, type ExecutionLinks } from './links';

/**
 * One execution of an array task (shared/arrays.ts): the indexes sent together at one attempt, counted by
 * how each fared. An attempt whose send failed has no execution: its name is null.
 */
export interface ArrayExecution {
  executionName: string | null;
  attempt: number;
  /** The logical tasks (indexes) it ran. */
  indexes: number;
  /** Its indexes by status: ended (success, failed, cancelled) or still on it (dispatched, running). */
  statuses: Record<string, number>;
  sentAt: string | null;
  /** When its last index ended; null while any is in flight. */
  finishedAt: string | null;
  links: ExecutionLinks | null;
}

// The executions of a run's array tasks ($2), counted in SQL: an execution of 10,000 indexes is a row per
// status, never 10,000 rows. Ended attempts are history rows (task_attempts_run); the indexes still on an
// execution are only in `tasks`, whose (run_id, name, task_index) index finds the array tasks' rows.
const EXECUTIONS_SQL = `
select name, execution_name, attempt, status, count(*)::int as n, min(dispatched_at) as sent_at, max(finished_at) as finished_at
from (
  select t.name, a.execution_name, a.attempt, a.status, a.dispatched_at, a.finished_at
  from task_attempts a join tasks t on t.id = a.task_id
  where a.run_id = $1 and t.run_id = $1 and t.name = any($2::text[])
  union all
  select name, execution_name, attempt, status, dispatched_at, null
  from tasks
  where run_id = $1 and name = any($2::text[]) and status in ${sqlList(ON_EXECUTION_STATUSES)} and execution_name is not null
) e
group by name, execution_name, attempt, status`;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * Each array task's executions, by task name: by attempt, then in the order they were sent. The claim
 * sends a unit's rows at one attempt (steps/claim.ts), so an execution name is one attempt; keying by
 * both still keeps apart the attempts whose sends failed, which share the null name.
 */
export async function arrayExecutions(pool: Pool, runId: string, names: string[]): Promise<Map<string, ArrayExecution[]>> {
  if (names.length === 0) return new Map();
  const byTask = new Map<string, Map<string, ArrayExecution>>(names.map((n) => [n, new Map()]));
  const { rows } = await pool.query(EXECUTIONS_SQL, [runId, names]);
  for (const r of rows) {
    const executions = byTask.get(r.name)!;
    const key = `${r.attempt}|${r.execution_name}`;
    let e = executions.get(key);
    if (!e) {
      e = { executionName: r.execution_name, attempt: r.attempt, indexes: 0, statuses: {}, sentAt: null, finishedAt: null, links: executionLinks(r.execution_name) };
      executions.set(key, e);
    }
    e.indexes += r.n;
    e.statuses[r.status] = r.n;
    if (r.sent_at && (!e.sentAt || iso(r.sent_at)! < e.sentAt)) e.sentAt = iso(r.sent_at);
    if (r.finished_at && (!e.finishedAt || iso(r.finished_at)! > e.finishedAt)) e.finishedAt = iso(r.finished_at);
  }
  const inFlight = (e: ArrayExecution) => ON_EXECUTION_STATUSES.some((s) => e.statuses[s]);
  const order = (a: ArrayExecution, b: ArrayExecution) =>
    a.attempt - b.attempt || (a.sentAt ?? '').localeCompare(b.sentAt ?? '') || (a.executionName ?? '').localeCompare(b.executionName ?? '');
  return new Map(
    [...byTask].map(([name, executions]) => [name, [...executions.values()].map((e) => (inFlight(e) ? { ...e, finishedAt: null } : e)).sort(order)]),
  );
}
