import type { Pool } from 'pg';
import type { RegionLimits } from '../config';
import type { TaskStatus } from '../lifecycle';
import { LOCAL_REGION } from '../regions';
import { listRegions, type RegionView } from './regions';
import { getRun } from './runs';

/** A task as `tickrun tasks --json` prints it (the contract's shape); the dashboard's task rows extend it. */
export interface TaskView {
  id: string;
  name: string;
  index: number;
  status: TaskStatus;
  attempt: number;
  executionName: string | null;
  error: string | null;
  /** Why a queued task is not yet claimed (null when it is not queued): see waitingReasons. */
  waiting?: string | null;
}

/** The columns a TaskView is read from, over `tasks`. */
export const TASK_VIEW_COLUMNS = 'id, name, task_index, status, attempt, execution_name, error';

/** A row of TASK_VIEW_COLUMNS as a TaskView. */
export function toTaskView(t: any): TaskView {
  return { id: t.id, name: t.name, index: t.task_index, status: t.status, attempt: t.attempt, executionName: t.execution_name, error: t.error };
}

/**
 * One run's tasks, in definition order (name, then fan-out index); NotFoundError for an unknown run. With
 * `limits` (the settings regions without their own fall back to), each says why it waits when queued.
 */
export async function listTasks(pool: Pool, runId: string, limits?: RegionLimits): Promise<TaskView[]> {
  const run = await getRun(pool, runId);
  const { rows } = await pool.query(
    `select ${TASK_VIEW_COLUMNS} from tasks where run_id = $1 order by created_at, name, task_index`,
    [run.id],
  );
  const tasks = rows.map(toTaskView);
  if (!limits) return tasks;
  const waiting = tasks.some((t) => t.status === 'queued') ? await waitingReasons(pool, run.id, limits) : new Map<string, string>();
  return tasks.map((t) => ({ ...t, waiting: waiting.get(t.id) ?? null }));
}

// What holds each queued task of a run back: its run, its time, its workflow's limit (slots held against
// the limit), its region (read by listRegions).
const QUEUED_SQL = `
select t.id, r.status as run_status, t.next_attempt_at > now() as later, t.next_attempt_at, t.error, t.region,
       case when t.limited then w.concurrency end as concurrency,
       case when t.limited then (select count(*)::int from concurrency_slots s where s.workflow = w.name and s.task_id is not null) end as held
from tasks t join runs r on r.id = t.run_id join workflows w on w.name = t.workflow
where t.run_id = $1 and t.status = 'queued'`;

/**
 * Why each queued task of a run waits, the first that applies: its run no longer runs; its time has not
 * come (a retry's backoff, or a task given back after a refusal); its workflow is at its concurrency
 * limit; its region is at its cap of running executions, or its run budget is spent; else it is next in
 * the fair order (shared/regions.ts).
 */
export async function waitingReasons(pool: Pool, runId: string, limits: RegionLimits): Promise<Map<string, string>> {
  const [{ rows }, regions] = await Promise.all([pool.query(QUEUED_SQL, [runId]), listRegions(pool, limits)]);
  const byRegion = new Map<string, RegionView>(regions.map((g) => [g.region, g]));
  const at = (d: Date) => `${d.toISOString().slice(11, 19)}Z`;
  return new Map(rows.map((t): [string, string] => {
    const region = t.region && t.region !== LOCAL_REGION ? byRegion.get(t.region) : undefined;
    if (t.run_status !== 'running') return [t.id, `its run is ${t.run_status}`];
    if (t.later) return [t.id, /^(not sent|dispatch refused)/.test(t.error ?? '') ? `given back, again at ${at(t.next_attempt_at)}` : `retrying at ${at(t.next_attempt_at)}`];
    if (t.concurrency !== null && t.held >= t.concurrency) return [t.id, `waiting for a concurrency slot (${t.held} of ${t.concurrency} in flight)`];
    if (region && region.running >= region.cap) return [t.id, `waiting for region capacity: ${region.running} of ${region.cap} running in ${region.region}`];
    if (region?.holding) return [t.id, `waiting for the run budget of ${region.region}: ${region.holding.replace(/^at its run budget: /, '')}`];
    return [t.id, 'next in the fair order'];
  }));
}
