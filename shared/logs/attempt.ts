import type { Pool } from 'pg';
import { UsageError } from '../errors';
import { IN_FLIGHT_STATUSES, type TaskStatus } from '../lifecycle';
import { getRun } from '../model/runs';

/** One attempt of one task, as far as its output is concerned. */
export interface AttemptRef {
  taskId: string;
  /** `name` or `name:index` when the task is fanned out. */
  label: string;
  attempt: number;
  /** Null while the attempt has not been sent (queued, claimed). */
  executionName: string | null;
  dispatchedAt: Date | null;
  /** Null while the attempt may still write output. */
  finishedAt: Date | null;
}

/** A run's tasks with what their current attempt is. */
const RUN_TASKS_SQL = `
select id, name, task_index, status, attempt, execution_name, dispatched_at, finished_at,
       (select count(*)::int from tasks f where f.run_id = t.run_id and f.name = t.name) as instances
from tasks t where run_id = $1 order by name, task_index`;

/**
 * An ended attempt's history row. The attempt in flight has none yet: it is read from its task, as the
 * record step writes the row when the attempt ends (steps/record.ts).
 */
const ENDED_ATTEMPT_SQL = `
select execution_name, dispatched_at, finished_at from task_attempts where task_id = $1 and attempt = $2`;

/** `name` or `name:index` as the user writes a task. */
function parseTaskRef(ref: string): { name: string; index?: number } {
  const m = /^(.+?)(?::(\d+))?$/.exec(ref)!;
  return { name: m[1], index: m[2] === undefined ? undefined : Number(m[2]) };
}

/**
 * The attempt `tickrun logs RUN [TASK[:INDEX]] [--attempt N]` means: the task may be left out when the run
 * has one, the index when the task has one instance, the attempt for the latest. NotFoundError for an
 * unknown run; UsageError naming what exists for anything else that does not.
 */
export async function findAttempt(pool: Pool, runId: string, taskRef: string | undefined, attempt: number | undefined): Promise<AttemptRef> {
  const run = await getRun(pool, runId);
  const { rows } = await pool.query(RUN_TASKS_SQL, [run.id]);
  const names = [...new Set(rows.map((r) => r.name as string))];
  if (taskRef === undefined && names.length !== 1) throw new UsageError(`run ${run.id} has ${names.length} tasks: name one of ${names.join(', ')}`);
  const { name, index } = taskRef === undefined ? { name: names[0], index: undefined } : parseTaskRef(taskRef);
  const instances = rows.filter((r) => r.name === name);
  if (instances.length === 0) throw new UsageError(`run ${run.id} has no task "${name}": its tasks are ${names.join(', ')}`);
  if (index === undefined && instances.length > 1) {
    throw new UsageError(`${name} has ${instances.length} instances: name one as ${name}:0 … ${name}:${instances.length - 1}`);
  }
  const task = index === undefined ? instances[0] : instances.find((r) => r.task_index === index);
  if (!task) throw new UsageError(`${name} has no instance ${index}: it has ${name}:0 … ${name}:${instances.length - 1}`);
  const label = task.instances > 1 ? `${name}:${task.task_index}` : name;
  const latest: number = task.attempt;
  const n = attempt ?? latest;
  if (latest === 0) throw new UsageError(`${label} has not started yet (${task.status as TaskStatus}): it has no output`);
  if (n < 1 || n > latest) throw new UsageError(`${label} has had ${latest} attempt${latest === 1 ? '' : 's'}: --attempt accepts ${latest === 1 ? '1' : `1 to ${latest}`}`);
  const { rows: ended } = await pool.query(ENDED_ATTEMPT_SQL, [task.id, n]);
  const row = ended[0] ?? {
    execution_name: task.execution_name,
    dispatched_at: task.dispatched_at,
    // A task between attempts (queued for a retry) keeps its last attempt's fields, and that attempt ended.
    finished_at: (IN_FLIGHT_STATUSES as readonly string[]).includes(task.status) ? null : (task.finished_at ?? new Date()),
  };
  return { taskId: task.id, label, attempt: n, executionName: row.execution_name, dispatchedAt: row.dispatched_at, finishedAt: row.finished_at };
}

/** The attempt's span for a log query; an attempt recorded without a dispatch time is read from its end's day. */
export function attemptWindow(ref: AttemptRef): { from: Date; to: Date | null } {
  const to = ref.finishedAt;
  const from = ref.dispatchedAt ?? new Date((to ?? new Date()).getTime() - 86_400_000);
  return { from, to };
}
