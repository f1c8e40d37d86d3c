import type { Pool } from 'pg';
import type { TaskStatus } from '../lifecycle';
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
}

/** The columns a TaskView is read from, over `tasks`. */
export const TASK_VIEW_COLUMNS = 'id, name, task_index, status, attempt, execution_name, error';

/** A row of TASK_VIEW_COLUMNS as a TaskView. */
export function toTaskView(t: any): TaskView {
  return { id: t.id, name: t.name, index: t.task_index, status: t.status, attempt: t.attempt, executionName: t.execution_name, error: t.error };
}

/** One run's tasks, in definition order (name, then fan-out index); NotFoundError for an unknown run. */
export async function listTasks(pool: Pool, runId: string): Promise<TaskView[]> {
  const run = await getRun(pool, runId);
  const { rows } = await pool.query(
    `select ${TASK_VIEW_COLUMNS} from tasks where run_id = $1 order by created_at, name, task_index`,
    [run.id],
  );
  return rows.map(toTaskView);
}
