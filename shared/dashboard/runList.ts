import type { Pool } from 'pg';
import { checkRunId } from '../runs';
import { HttpError, checkParams, readLimit, readOneOf } from './http';

/** Run statuses, as the `status` filter accepts them. */
export const RUN_STATUSES = ['pending', 'running', 'success', 'failed', 'cancelled'] as const;

const CURSOR_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const WORKFLOW_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** One line of the runs page. */
export interface RunSummary {
  id: string;
  workflow: string;
  status: string;
  /** How it was made: by the schedule, by a trigger with an idempotency key, or by a plain trigger. */
  trigger: 'schedule' | 'key' | 'manual';
  idempotencyKey: string | null;
  scheduledFor: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** From start to end, or to now while it runs; null before it starts. */
  durationMs: number | null;
  /** Task counts by status (the stacked bar). */
  tasks: Record<string, number>;
  error: string | null;
}

/** What the runs page asks for; each field already checked. */
export interface RunFilter {
  workflow?: string;
  status?: string;
  limit: number;
  /** The last run of the previous page: this page starts after it. */
  after?: { createdAt: string; id: string };
}

/**
 * Reads the runs page's query string: `workflow`, `status`, `limit` (1-200, default 50) and `cursor`
 * (the `nextCursor` of the page before). HttpError 400 naming the parameter that is wrong.
 */
export function parseRunFilter(query: URLSearchParams): RunFilter {
  checkParams(query, '/api/runs', ['workflow', 'status', 'limit', 'cursor']);
  const filter: RunFilter = { limit: readLimit(query, 200, 50) };
  const workflow = query.get('workflow');
  if (workflow) {
    if (!WORKFLOW_NAME.test(workflow)) throw new HttpError(400, `workflow "${workflow}" is not a workflow name: names are lower-case letters, digits and '-'`);
    filter.workflow = workflow;
  }
  filter.status = readOneOf(query, 'status', RUN_STATUSES, 'run status');
  const cursor = query.get('cursor');
  if (cursor) filter.after = decodeCursor(cursor);
  return filter;
}

/** A cursor names the last run of a page by its exact creation time (microseconds) and id. */
function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(`${createdAt}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  try {
    if (rest.length > 0 || !CURSOR_AT.test(createdAt ?? '')) throw new Error('not a cursor');
    return { createdAt, id: checkRunId(id ?? '') };
  } catch {
    throw new HttpError(400, `cursor "${cursor}" is not valid: pass the nextCursor of a previous page as it was given`);
  }
}

// Keyset paging, never OFFSET: a page is the runs after the cursor in (created_at, id) order, read from
// the index that matches the filter (migrations/0004), so the thousandth page costs what the first does.
// The cursor's time is the database's own text to the microsecond: a JavaScript Date keeps
// milliseconds only, and a rounded cursor would skip runs made in the same millisecond.
// Task counts come from the tasks (run_id, status) index, only for the page's runs. The duration is taken
// between the times truncated to milliseconds, as the API shows them (a Date keeps no more), so it always
// equals finishedAt minus startedAt as given.
/** The columns of a RunSummary over `runs r` but its task counts; the run page counts its tasks itself. */
export const RUN_COLUMNS = `r.id, r.workflow, r.status, r.triggered_by, r.idempotency_key, r.scheduled_for, r.created_at,
  r.started_at, r.finished_at, r.error,
  to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at,
  (extract(epoch from date_trunc('milliseconds', coalesce(r.finished_at, now())) - date_trunc('milliseconds', r.started_at)) * 1000)::float8 as duration_ms`;

/** The columns of a RunSummary over `runs r`, task counts included. */
export const RUN_SUMMARY_COLUMNS = `${RUN_COLUMNS},
  coalesce((select jsonb_object_agg(c.status, c.n) from
    (select t.status, count(*)::int as n from tasks t where t.run_id = r.id group by t.status) c), '{}') as tasks`;

/** The runs page's statement and its values for a filter; exported for the plan check (test/integration/dashboardApi). */
export function runListQuery(filter: RunFilter): { text: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  if (filter.workflow) where.push(`r.workflow = $${values.push(filter.workflow)}`);
  if (filter.status) where.push(`r.status = $${values.push(filter.status)}`);
  if (filter.after) where.push(`(r.created_at, r.id) < ($${values.push(filter.after.createdAt)}::timestamptz, $${values.push(filter.after.id)}::uuid)`);
  const text = `select ${RUN_SUMMARY_COLUMNS} from runs r ${where.length ? `where ${where.join(' and ')}` : ''}
    order by r.created_at desc, r.id desc limit $${values.push(filter.limit + 1)}`;
  return { text, values };
}

/** Turns a row of the runs statements (runs r with RUN_SUMMARY_COLUMNS) into a RunSummary. */
export function toRunSummary(r: any): RunSummary {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: r.id,
    workflow: r.workflow,
    status: r.status,
    trigger: r.triggered_by === 'schedule' ? 'schedule' : r.idempotency_key !== null ? 'key' : 'manual',
    idempotencyKey: r.idempotency_key,
    scheduledFor: iso(r.scheduled_for),
    createdAt: r.created_at.toISOString(),
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    durationMs: r.duration_ms === null ? null : Math.round(r.duration_ms),
    tasks: r.tasks,
    error: r.error,
  };
}

/** One page of runs, latest first, and the cursor of the next page (null on the last one). */
export async function listRunPage(pool: Pool, filter: RunFilter): Promise<{ runs: RunSummary[]; nextCursor: string | null }> {
  const { text, values } = runListQuery(filter);
  const { rows } = await pool.query(text, values);
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return { runs: page.map(toRunSummary), nextCursor: rows.length > filter.limit && last ? encodeCursor(last.cursor_at, last.id) : null };
}
