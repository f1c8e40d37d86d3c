import type { Pool } from 'pg';
import { checkRunId } from '../runs';
import type { WorkflowDefinition } from '../workflows/definition';
import { HttpError } from './http';
import { executionLinks, type ExecutionLinks } from './links';
import { RUN_SUMMARY_COLUMNS, toRunSummary, type RunSummary } from './runList';

/** One attempt of a task: from its claim and send to its end. */
export interface AttemptView {
  attempt: number;
  /** dispatched, running, success, failed or cancelled. */
  status: string;
  executionName: string | null;
  claimedAt: string | null;
  /** When the executor's acceptance was recorded; null when the send itself failed. */
  sentAt: string | null;
  finishedAt: string | null;
  error: string | null;
  /** Cloud Run executions only. */
  links: ExecutionLinks | null;
}

/** A task of the run with every attempt it made. */
export interface TaskDetail {
  id: string;
  name: string;
  index: number;
  status: string;
  attempt: number;
  maxAttempts: number;
  executionName: string | null;
  error: string | null;
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
  statuses: Record<string, number>;
}

/** The run page: the run, its graph, its tasks and their attempts. */
export interface RunDetail {
  run: RunSummary & { params: Record<string, string>; workflowVersion: number };
  graph: GraphNode[];
  tasks: TaskDetail[];
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** Refuses a malformed run id with 400 (the CLI's own check and message) before asking the database. */
export function checkRunIdParam(id: string): string {
  try {
    return checkRunId(id);
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
}

/** The run page's JSON. HttpError 400 for a malformed id, 404 for an unknown run. */
export async function getRunDetail(pool: Pool, rawId: string): Promise<RunDetail> {
  const id = checkRunIdParam(rawId);
  // Three reads, each by index on the run id; the page polls this while the run is live.
  const [runs, tasks, attempts] = await Promise.all([
    pool.query(`select ${RUN_SUMMARY_COLUMNS}, r.params, r.definition, r.workflow_version from runs r where r.id = $1`, [id]),
    pool.query(
      `select id, name, task_index, status, attempt, max_attempts, execution_name, error, started_at, finished_at, next_attempt_at
       from tasks where run_id = $1 order by name, task_index`,
      [id],
    ),
    pool.query(
      `select task_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error
       from task_attempts where run_id = $1 order by task_id, attempt`,
      [id],
    ),
  ]);
  const row = runs.rows[0];
  if (!row) throw new HttpError(404, `unknown run ${id}`);
  const byTask = new Map<string, AttemptView[]>();
  for (const a of attempts.rows) {
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
    });
    byTask.set(a.task_id, list);
  }
  const taskList: TaskDetail[] = tasks.rows.map((t) => ({
    id: t.id,
    name: t.name,
    index: t.task_index,
    status: t.status,
    attempt: t.attempt,
    maxAttempts: t.max_attempts,
    executionName: t.execution_name,
    error: t.error,
    startedAt: iso(t.started_at),
    finishedAt: iso(t.finished_at),
    nextAttemptAt: t.status === 'queued' ? iso(t.next_attempt_at) : null,
    attempts: byTask.get(t.id) ?? [],
  }));
  return {
    run: { ...toRunSummary(row), params: row.params, workflowVersion: row.workflow_version },
    graph: graphOf(row.definition, taskList),
    tasks: taskList,
  };
}

/**
 * The definition's task names as graph nodes, in dependency order (a task after those it depends on,
 * then by name), with the statuses of their tasks. Stored definitions are jsonb, which keeps no key order.
 */
function graphOf(definition: WorkflowDefinition, tasks: TaskDetail[]): GraphNode[] {
  const depth = new Map<string, number>();
  const depthOf = (name: string): number => {
    if (!depth.has(name)) depth.set(name, Math.max(0, ...definition.tasks[name].dependsOn.map((d) => depthOf(d) + 1)));
    return depth.get(name)!;
  };
  const names = Object.keys(definition.tasks).sort((a, b) => depthOf(a) - depthOf(b) || a.localeCompare(b));
  return names.map((name) => {
    const spec = definition.tasks[name];
    const statuses: Record<string, number> = {};
    for (const t of tasks) if (t.name === name) statuses[t.status] = (statuses[t.status] ?? 0) + 1;
    return {
      name,
      dependsOn: spec.dependsOn,
      executor: spec.executor,
      target: spec.executor === 'process' ? (spec.command ?? []).join(' ') : (spec.job ?? ''),
      count: spec.count,
      statuses,
    };
  });
}
