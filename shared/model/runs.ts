import type { Pool } from 'pg';
import { NotFoundError, UsageError } from '../errors';
import type { RunStatus, TaskStatus } from '../lifecycle';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Refuses an id that is not a run id at all, before asking the database. */
export function checkRunId(id: string): string {
  if (!UUID.test(id)) throw new UsageError(`"${id}" is not a run id: run ids are UUIDs, as \`tickrun status\` lists them`);
  return id.toLowerCase();
}

/** A run as the CLI (`tickrun status --json`, the contract's shape and more) and the dashboard read it. */
export interface Run {
  id: string;
  workflow: string;
  status: RunStatus;
  /** How it was made: by the schedule, by a trigger with an idempotency key, or by a plain trigger. */
  trigger: 'schedule' | 'key' | 'manual';
  /** `manual` or `schedule`. */
  triggeredBy: string;
  idempotencyKey: string | null;
  /** The schedule slot a scheduled run is for. */
  scheduledFor: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** From start to end, or to now while it runs; null before it starts. */
  durationMs: number | null;
  /** Task counts by status. */
  tasks: Partial<Record<TaskStatus, number>>;
  error: string | null;
  params: Record<string, string>;
}

// The duration is taken between the times truncated to milliseconds, as they are shown (a Date keeps no
// more), so it always equals finishedAt minus startedAt as given. cursor_at is the creation time to the
// microsecond, as the database has it: a cursor rounded to milliseconds would skip runs.
/** The columns of a Run over `runs r`, but its task counts (RUN_TASK_COUNTS). */
export const RUN_COLUMNS = `r.id, r.workflow, r.status, r.triggered_by, r.idempotency_key, r.scheduled_for, r.created_at,
  r.started_at, r.finished_at, r.error, r.params,
  to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at,
  (extract(epoch from date_trunc('milliseconds', coalesce(r.finished_at, now())) - date_trunc('milliseconds', r.started_at)) * 1000)::float8 as duration_ms`;

/** A run's task counts by status, from the tasks (run_id, status) index. */
export const RUN_TASK_COUNTS = `coalesce((select jsonb_object_agg(c.status, c.n) from
    (select t.status, count(*)::int as n from tasks t where t.run_id = r.id group by t.status) c), '{}') as tasks`;

/** A row of RUN_COLUMNS (with `tasks`, counted or given) as a Run. */
export function toRun(r: any): Run {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: r.id,
    workflow: r.workflow,
    status: r.status,
    trigger: r.triggered_by === 'schedule' ? 'schedule' : r.idempotency_key !== null ? 'key' : 'manual',
    triggeredBy: r.triggered_by,
    idempotencyKey: r.idempotency_key,
    scheduledFor: iso(r.scheduled_for),
    createdAt: r.created_at.toISOString(),
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    durationMs: r.duration_ms === null ? null : Math.round(r.duration_ms),
    tasks: r.tasks,
    error: r.error,
    params: r.params,
  };
}

/** One run with its task counts by status; NotFoundError when there is no such run. */
export async function getRun(pool: Pool, id: string): Promise<Run> {
  const { rows } = await pool.query(`select ${RUN_COLUMNS}, ${RUN_TASK_COUNTS} from runs r where r.id = $1`, [checkRunId(id)]);
  if (!rows[0]) throw new NotFoundError(`unknown run ${id}`);
  return toRun(rows[0]);
}

/** Which runs to list, latest first; each field already checked. */
export interface RunFilter {
  workflow?: string;
  status?: RunStatus;
  limit: number;
  /** The last run of the previous page, by its creation time to the microsecond: this page starts after it. */
  after?: { createdAt: string; id: string };
}

// Keyset paging, never OFFSET: a page is the runs after the cursor in (created_at, id) order, read from
// the index that matches the filter (migrations/0004), so the thousandth page costs what the first does.
/** A page's statement and values: one run more than the limit, which says whether a next page exists. */
export function runListQuery(filter: RunFilter): { text: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  if (filter.workflow) where.push(`r.workflow = $${values.push(filter.workflow)}`);
  if (filter.status) where.push(`r.status = $${values.push(filter.status)}`);
  if (filter.after) where.push(`(r.created_at, r.id) < ($${values.push(filter.after.createdAt)}::timestamptz, $${values.push(filter.after.id)}::uuid)`);
  const text = `select ${RUN_COLUMNS}, ${RUN_TASK_COUNTS} from runs r ${where.length ? `where ${where.join(' and ')}` : ''}
    order by r.created_at desc, r.id desc limit $${values.push(filter.limit + 1)}`;
  return { text, values };
}

/** One page of runs, latest first, and where the next page starts (null on the last one). */
export async function listRunPage(pool: Pool, filter: RunFilter): Promise<{ runs: Run[]; next: RunFilter['after'] | null }> {
  const { text, values } = runListQuery(filter);
  const { rows } = await pool.query(text, values);
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return { runs: page.map(toRun), next: rows.length > filter.limit && last ? { createdAt: last.cursor_at, id: last.id } : null };
}

/** Runs, latest first: the first page of a filter (50 unless `limit` says otherwise). */
export async function listRuns(pool: Pool, filter: Partial<RunFilter> = {}): Promise<Run[]> {
  return (await listRunPage(pool, { limit: 50, ...filter })).runs;
}
