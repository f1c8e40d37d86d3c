import type { Pool } from 'pg';
import { NotFoundError, UsageError } from '../errors';
import { ON_EXECUTION_STATUSES, TASK_STATUSES, type TaskStatus } from '../lifecycle';
import { checkRunId, RUN_COLUMNS, toRun, type Run } from '../model/runs';
import type { RegionLimits } from '../config';
import { TASK_VIEW_COLUMNS, toTaskView, waitingReasons, type TaskView } from '../model/tasks';
import type { WorkflowDefinition } from '../workflows/definition';
import { arrayExecutions, type ArrayExecution } from './arrayExecutions';
import { HttpError, checkParams, readLimit, readOneOf } from './http';
import { executionLinks, type ExecutionLinks } from './links';
import { outputTail } from './logs';

/** One attempt of a task: from its claim and send to its end. */
export interface AttemptView {
  attempt: number;
  /** On its execution (dispatched, running), or how it ended. */
  status: TaskStatus;
  executionName: string | null;
  claimedAt: string | null;
  /** When the executor's acceptance was recorded; null when the send itself failed. */
  sentAt: string | null;
  finishedAt: string | null;
  error: string | null;
  /** Cloud Run executions only. */
  links: ExecutionLinks | null;
  /** Process executions only: the last lines of the attempt's output (a Cloud Run attempt's are loaded on demand, /api/runs/ID/logs). */
  outputTail: string[] | null;
}

/** A task of the run with every attempt it made. */
export interface TaskDetail extends TaskView {
  maxAttempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  /** When a queued task may next be claimed (its retry's backoff). */
  nextAttemptAt: string | null;
  attempts: AttemptView[];
}

/** One node of the run's graph: a task name of the pinned definition, with its tasks' statuses. */
export interface GraphNode {
  name: string;
  dependsOn: string[];
  executor: string;
  /** The Cloud Run job, or the process command. */
  target: string;
  count: number;
  /** By task row: for an array task, by logical index. */
  statuses: Record<string, number>;
  /** Array tasks only (`array: true`): the executions its indexes were sent in. */
  array?: { executions: ArrayExecution[] };
}

/** The run page: the run, its graph, one page of its tasks with their attempts. */
export interface RunDetail {
  run: Omit<Run, 'triggeredBy'> & { workflowVersion: number };
  /** Every task name with the statuses of all its tasks, whatever page of tasks is shown. */
  graph: GraphNode[];
  /** In graph order (a task name after those it depends on), then by index. */
  tasks: TaskDetail[];
  /** Tasks matching the filter, over all pages. */
  taskCount: number;
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

/** Which of a run's tasks to show; each field already checked against the query's form. */
export interface TaskFilter {
  task?: string;
  status?: TaskStatus;
  /** Tasks per page: a fan-out of thousands would otherwise be one answer of megabytes, every poll. */
  limit: number;
  /** The last task of the previous page. */
  after?: { name: string; index: number };
}

/**
 * Reads `/api/runs/:id`'s query string: `task` (a task name), `status`, `limit` (1-1000, default 200) and
 * `cursor` (the `nextCursor` of the page before). HttpError 400 naming the parameter that is wrong.
 */
export function parseTaskFilter(query: URLSearchParams): TaskFilter {
  checkParams(query, '/api/runs/ID', ['task', 'status', 'limit', 'cursor']);
  const filter: TaskFilter = { limit: readLimit(query, 1000, 200), task: query.get('task') || undefined, status: readOneOf(query, 'status', TASK_STATUSES, 'task status') };
  const cursor = query.get('cursor');
  if (cursor) {
    const [name, index, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
    if (rest.length > 0 || !name || !/^\d+$/.test(index ?? '')) throw new HttpError(400, `cursor "${cursor}" is not valid: pass the nextCursor of a previous page as it was given`);
    filter.after = { name, index: Number(index) };
  }
  return filter;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

// A page of the run's tasks in graph order: $2 is the task names in that order, so a task's place is
// array_position($2, name), and the cursor is (place, index). Read through the (run_id, name, task_index)
// unique index: one run's rows, sorted in memory, which stays a few milliseconds at 10,000 tasks.
const TASK_PAGE_SQL = `
select ${TASK_VIEW_COLUMNS}, max_attempts, started_at, finished_at, next_attempt_at, claimed_at, dispatched_at
from tasks
where run_id = $1
  and ($3::text is null or name = $3)
  and ($4::text is null or status = $4)
  and ($5::int is null or (array_position($2::text[], name), task_index) > ($5, $6::int))
order by array_position($2::text[], name), task_index
limit $7`;

/** The run page's JSON. UsageError (400) for a malformed id or filter, NotFoundError (404) for an unknown run. */
export async function getRunDetail(pool: Pool, rawId: string, filter: TaskFilter = { limit: 200 }, home?: string, limits?: RegionLimits): Promise<RunDetail> {
  const id = checkRunId(rawId);
  const { rows: runs } = await pool.query(`select ${RUN_COLUMNS}, r.definition, r.workflow_version from runs r where r.id = $1`, [id]);
  const row = runs[0];
  if (!row) throw new NotFoundError(`unknown run ${id}`);
  const definition: WorkflowDefinition = row.definition;
  const names = graphOrder(definition);
  for (const name of [filter.task, filter.after?.name]) {
    if (name !== undefined && !names.includes(name)) throw new UsageError(`task "${name}" is not a task of this run: its tasks are ${names.join(', ')}`);
  }
  const place = filter.after ? names.indexOf(filter.after.name) + 1 : null;
  const [counts, page, executions] = await Promise.all([
    pool.query<{ name: string; status: TaskStatus; n: number }>('select name, status, count(*)::int as n from tasks where run_id = $1 group by name, status', [id]),
    pool.query(TASK_PAGE_SQL, [id, names, filter.task ?? null, filter.status ?? null, place, filter.after?.index ?? null, filter.limit + 1]),
    arrayExecutions(pool, id, names.filter((n) => definition.tasks[n].array)),
  ]);
  const shown = page.rows.slice(0, filter.limit);
  const { rows: attempts } = await pool.query(
    `select task_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error
     from task_attempts where task_id = any($1::uuid[]) order by task_id, attempt`,
    [shown.map((t) => t.id)],
  );
  const last = shown.at(-1);
  // Why each queued task shown waits, with the tick's settings for regions without their own.
  const waiting = limits && shown.some((t) => t.status === 'queued') ? await waitingReasons(pool, id, limits) : undefined;
  return {
    // The run's counts by status, from the counts by task name and status read for the graph.
    run: { ...withoutTrigger(toRun({ ...row, tasks: sumByStatus(counts.rows) })), workflowVersion: row.workflow_version },
    graph: graphOf(definition, names, counts.rows, executions),
    tasks: withAttempts(shown, attempts, home).map((t) => (waiting ? { ...t, waiting: waiting.get(t.id) ?? null } : t)),
    taskCount: counts.rows.filter((c) => (!filter.task || c.name === filter.task) && (!filter.status || c.status === filter.status)).reduce((n, c) => n + c.n, 0),
    nextCursor: page.rows.length > filter.limit && last ? Buffer.from(`${last.name}|${last.task_index}`).toString('base64url') : null,
  };
}

const withoutTrigger = ({ triggeredBy, ...run }: Run) => run;

function sumByStatus(counts: { status: TaskStatus; n: number }[]): Run['tasks'] {
  const byStatus: Run['tasks'] = {};
  for (const c of counts) byStatus[c.status] = (byStatus[c.status] ?? 0) + c.n;
  return byStatus;
}

/**
 * The page's task rows with their attempts, as TaskDetails: the ended ones from task_attempts, then the
 * one in flight, which is the task's own current attempt.
 */
function withAttempts(tasks: any[], ended: any[], home: string | undefined): TaskDetail[] {
  const byTask = new Map<string, AttemptView[]>();
  const inFlight = tasks
    .filter((t) => (ON_EXECUTION_STATUSES as readonly string[]).includes(t.status))
    .map((t) => ({ task_id: t.id, attempt: t.attempt, status: t.status, execution_name: t.execution_name, claimed_at: t.claimed_at, dispatched_at: t.dispatched_at, finished_at: null, error: null }));
  for (const a of [...ended, ...inFlight]) {
    const list = byTask.get(a.task_id) ?? [];
    list.push({
      attempt: a.attempt,
      status: a.status,
      executionName: a.execution_name,
      claimedAt: iso(a.claimed_at),
      sentAt: iso(a.dispatched_at),
      finishedAt: iso(a.finished_at),
      error: a.error,
      links: executionLinks(a.execution_name),
      outputTail: home === undefined ? null : outputTail(home, a.execution_name),
    });
    byTask.set(a.task_id, list);
  }
  return tasks.map((t) => ({
    ...toTaskView(t),
    maxAttempts: t.max_attempts,
    startedAt: iso(t.started_at),
    finishedAt: iso(t.finished_at),
    nextAttemptAt: t.status === 'queued' ? iso(t.next_attempt_at) : null,
    attempts: byTask.get(t.id) ?? [],
  }));
}

/**
 * The definition's task names in dependency order: a task after those it depends on, then by name.
 * Stored definitions are jsonb, which keeps no key order.
 */
function graphOrder(definition: WorkflowDefinition): string[] {
  const depth = new Map<string, number>();
  const depthOf = (name: string): number => {
    if (!depth.has(name)) depth.set(name, Math.max(0, ...definition.tasks[name].dependsOn.map((d) => depthOf(d) + 1)));
    return depth.get(name)!;
  };
  return Object.keys(definition.tasks).sort((a, b) => depthOf(a) - depthOf(b) || a.localeCompare(b));
}

/** The graph's nodes, in graph order, with the statuses of all their tasks and an array task's executions. */
function graphOf(definition: WorkflowDefinition, names: string[], counts: { name: string; status: TaskStatus; n: number }[], executions: Map<string, ArrayExecution[]>): GraphNode[] {
  return names.map((name) => {
    const spec = definition.tasks[name];
    const statuses: Record<string, number> = {};
    for (const c of counts) if (c.name === name) statuses[c.status] = c.n;
    return {
      name,
      dependsOn: spec.dependsOn,
      executor: spec.executor,
      target: spec.executor === 'process' ? (spec.command ?? []).join(' ') : (spec.job ?? ''),
      count: spec.count,
      statuses,
      ...(spec.array && { array: { executions: executions.get(name) ?? [] } }),
    };
  });
}
