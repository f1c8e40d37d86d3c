/**
 * The Cloud Run tasks of an emulated execution: which of them failed, what each is called, and the
 * container's side of tickrun's array contract, which the default behaviour models.
 *
 * An execution of N tasks has tasks 0..N-1 (Task.index: "Index of the Task, unique per execution, and
 * beginning at 0", Cloud Run Admin API v2, "REST Resource: projects.locations.jobs.executions.tasks"). Each
 * ends on its own; the execution fails when any task failed once its retries are spent ("Create jobs",
 * cloud.google.com/run/docs/create-jobs: a task past its maximum retries is marked failed, and the execution
 * is marked failed once all tasks have run). tickrun's jobs have maxRetries 0, so one failure is final.
 * Only the failed indexes are kept (a Set), never an object per task: an execution may have 10,000 tasks.
 */
import type { EmulatedExecution } from './cloudRunEmulator';

/** Where a Cloud Run task of an execution stands at some instant. */
export type TaskState = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'unstarted';

/**
 * The logical index each Cloud Run task of an execution runs, by CLOUD_RUN_TASK_INDEX: the container's side
 * of tickrun's contract (README, "Array tasks"), written from the README, not from tickrun's code. With
 * TICKRUN_TASK_INDEXES (comma-separated items, each `N` or an inclusive range `A-B` with A < B, ascending:
 * `0-9999`, `17,4242,9999`, `0-16,18-40`), Cloud Run task k runs the k-th index of its expansion. Without it
 * (the README's Node code tests it for truth, so empty is absent too), the whole execution is one logical
 * task, TICKRUN_TASK_INDEX, however many Cloud Run tasks it has: [TICKRUN_TASK_INDEX], or [] without either.
 * A list not of that form throws: it is not the contract, and no container could rely on what it reads from it.
 */
export function logicalIndexes(env: Record<string, string | undefined>): number[] {
  const list = env.TICKRUN_TASK_INDEXES;
  if (!list) return env.TICKRUN_TASK_INDEX ? [Number(env.TICKRUN_TASK_INDEX)] : [];
  const out: number[] = [];
  for (const item of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item);
    const lo = Number(m?.[1]);
    const hi = m?.[2] === undefined ? lo : Number(m[2]);
    if (!m || (m[2] !== undefined && hi <= lo) || (out.length > 0 && lo <= out[out.length - 1])) {
      throw new Error(`TICKRUN_TASK_INDEXES "${list}": "${item}" is neither an index nor a range A-B (A < B) above the item before`);
    }
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}

/**
 * The Cloud Run tasks (by CLOUD_RUN_TASK_INDEX, 0..taskCount-1) whose container fails when the logical
 * indexes `failing` fail. A task whose logical index the container cannot compute fails too: past the
 * list's end the README's code throws, and the container exits with an error (so here for a malformed list).
 */
export function tasksFailing(env: Record<string, string | undefined>, taskCount: number, failing: ReadonlySet<number>): number[] {
  let indexes: number[];
  try {
    indexes = logicalIndexes(env);
  } catch {
    return Array.from({ length: taskCount }, (_, k) => k);
  }
  // One logical task for the whole execution: all its Cloud Run tasks fail, or none.
  if (!env.TICKRUN_TASK_INDEXES) return indexes.length > 0 && failing.has(indexes[0]) ? Array.from({ length: taskCount }, (_, k) => k) : [];
  const failed: number[] = [];
  for (let k = 0; k < taskCount; k++) if (k >= indexes.length || failing.has(indexes[k])) failed.push(k);
  return failed;
}

/** Whether Cloud Run task `index` failed, if the execution ran to its end: the listed ones, else the first failedCount. */
export function taskFailed(e: EmulatedExecution, index: number): boolean {
  return e.failedTasks ? e.failedTasks.has(index) : index < e.failedCount;
}

/** How many of its tasks fail if the execution runs to its end (see taskFailed). */
export function failedTaskCount(e: EmulatedExecution): number {
  return e.failedTasks?.size ?? e.failedCount;
}

/** The failed task the execution's Completed condition names: the lowest failed index (task 0 when none is listed). */
export function firstFailedTask(e: EmulatedExecution): number {
  return e.failedTasks?.values().next().value ?? 0;
}

/** The indexes of the tasks that fail if the execution runs to its end, ascending. */
export function failedTaskIndexes(e: EmulatedExecution): Iterable<number> {
  return e.failedTasks ?? Array.from({ length: Math.min(e.failedCount, e.taskCount) }, (_, k) => k);
}

/**
 * A task at `now`: running until its execution ends; then cancelled if a cancel took effect first (no task
 * of an execution ends before it does here, so every task is one "not ended when the cancel took effect"),
 * never started if the execution failed to start, else failed or succeeded.
 */
export function taskState(e: EmulatedExecution, index: number, now: number): TaskState {
  if (now < e.finishedAt!) return 'running';
  if (e.startFailure) return 'unstarted';
  if (e.cancelled) return 'cancelled';
  return taskFailed(e, index) ? 'failed' : 'succeeded';
}

/**
 * A task's id: `{execution id}-task{index}`. The reference only gives the pattern
 * `projects/{project}/locations/{location}/jobs/{job}/executions/{execution}/tasks/{task}` (tasks.get); the
 * ids public walkthroughs pass gcloud for real tasks have this form (`gcloud run jobs executions tasks
 * describe screenshot-demo2-w4gtf-task0` and `…-task1`, the two tasks of execution screenshot-demo2-w4gtf),
 * as does the task an execution's failed condition names. tickrun must read a task's `index`, never its name.
 */
export function taskId(e: EmulatedExecution, index: number): string {
  return `${e.name.split('/').pop()}-task${index}`;
}

/** The index of the task `id` names in `e`, or undefined when `e` has no such task. */
export function taskIndexOf(e: EmulatedExecution, id: string): number | undefined {
  const m = /^(.*)-task(0|[1-9]\d*)$/.exec(id);
  const index = m && m[1] === e.name.split('/').pop() ? Number(m[2]) : undefined;
  return index !== undefined && index < e.taskCount ? index : undefined;
}

/** Ascending indexes written as TICKRUN_TASK_INDEXES is (`0-16,18-40`): a short form for the control surface. */
export function formatIndexes(indexes: Iterable<number>): string {
  const items: string[] = [];
  let lo: number | undefined;
  let hi = -1;
  const flush = () => lo !== undefined && items.push(lo === hi ? String(lo) : `${lo}-${hi}`);
  for (const i of indexes) {
    if (lo !== undefined && i === hi + 1) {
      hi = i;
      continue;
    }
    flush();
    lo = hi = i;
  }
  flush();
  return items.join(',');
}
