import crypto from 'node:crypto';
import { protos } from '@google-cloud/run';
import type { EmulatedExecution } from './cloudRunEmulator';
import { failedTaskCount, firstFailedTask, taskId, taskState } from './emulatedTasks';

const { State, Severity, ExecutionReason, CommonReason } = protos.google.cloud.run.v2.Condition;

const rfc3339 = (ms: number) => new Date(ms).toISOString();

/** Stable per resource name, as a real uid is, without storing one more field. */
const uidOf = (name: string) => crypto.createHash('sha1').update(name).digest('hex').slice(0, 32).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');

/**
 * What a task whose container exited non-zero says, in its Completed condition and its last attempt's status
 * (the execution's failed condition quotes it, naming the task). The reference documents no wording.
 */
export const CONTAINER_FAILED = 'The container exited with an error (exit code 1).';

/** A google.rpc.Status answer, as the v2 REST API writes its errors. */
export function rpcError(code: number, status: string, message: string): { status: number; body: unknown } {
  return { status: code, body: { error: { code, message, status } } };
}

/** The Completed condition: the execution's end, or CONDITION_RECONCILING while it runs. */
export function completedCondition(e: EmulatedExecution, ended: boolean): Record<string, string> {
  const at = { type: 'Completed', lastTransitionTime: rfc3339(ended ? e.finishedAt! : e.createdAt) };
  // Being cancelled: still running, "in the process of being cancelled" (Condition.ExecutionReason CANCELLING).
  if (!ended) return { ...at, state: 'CONDITION_RECONCILING', ...(e.cancelled && { executionReason: 'CANCELLING' }) };
  // No task could start: the condition carries a CommonReason (Condition reference: reason, e.g.
  // CONTAINER_MISSING) instead of an executionReason.
  if (e.startFailure) return { ...at, state: 'CONDITION_FAILED', reason: e.startFailure.reason, severity: 'ERROR', message: e.startFailure.message };
  // Cloud Run shows a cancellation as a failed Completed condition with reason CANCELLED.
  if (e.cancelled) return { ...at, state: 'CONDITION_FAILED', executionReason: 'CANCELLED', severity: 'ERROR', message: 'The execution was cancelled.' };
  // Failed: "A task reached its retry limit and the last attempt failed due to the user container exiting
  // with a non-zero exit code" (ExecutionReason NON_ZERO_EXIT_CODE); the message names the first such task.
  if (e.outcome === 'failed') {
    return { ...at, state: 'CONDITION_FAILED', executionReason: 'NON_ZERO_EXIT_CODE', severity: 'ERROR', message: `Task ${taskId(e, firstFailedTask(e))} failed with message: ${CONTAINER_FAILED}` };
  }
  return { ...at, state: 'CONDITION_SUCCEEDED', message: `Execution completed successfully in ${(e.durationMs / 1000).toFixed(2)}s.` };
}

/** The Started condition, of the execution and of each task: succeeded at creation, or failed as Completed when nothing could start. */
function startedCondition(e: EmulatedExecution, ended: boolean): Record<string, string> {
  return e.startFailure && ended
    ? { ...completedCondition(e, true), type: 'Started' }
    : { type: 'Started', state: 'CONDITION_SUCCEEDED', lastTransitionTime: rfc3339(e.createdAt) };
}

/** The container as the run's overrides made it: the job's, with the overridden env and args. */
function containers(e: EmulatedExecution): Record<string, unknown>[] {
  return [{ image: 'emulated', env: Object.entries(e.env).map(([name, value]) => ({ name, value })), ...(e.args && { args: e.args }) }];
}

/**
 * The Execution resource as the v2 REST JSON shows it at `now` (enums as names). Its `template` is the
 * job's task template with the run's overrides applied, which is where the overridden env shows. Its
 * counts follow its tasks (Execution: runningCount "actively running tasks", succeededCount / failedCount /
 * cancelledCount "tasks which reached phase Succeeded / Failed / Cancelled", retriedCount "tasks which have
 * retried at least once"): every task runs until the execution ends, then each succeeded or failed, or all
 * are cancelled when a cancel took effect first (see taskState).
 */
export function executionResource(e: EmulatedExecution, now: number): Record<string, unknown> {
  const ended = now >= e.finishedAt!;
  const failed = ended && !e.cancelled ? failedTaskCount(e) : 0;
  return {
    name: e.name,
    uid: uidOf(e.name),
    generation: '1',
    createTime: rfc3339(e.createdAt),
    startTime: rfc3339(e.createdAt),
    updateTime: rfc3339(ended ? e.finishedAt! : e.createdAt),
    ...(ended && { completionTime: rfc3339(e.finishedAt!) }),
    job: e.job.split('/').pop(),
    taskCount: e.taskCount,
    template: {
      containers: containers(e),
      ...(e.timeoutSeconds !== undefined && { timeout: `${e.timeoutSeconds}s` }),
    },
    reconciling: !ended,
    conditions: [startedCondition(e, ended), completedCondition(e, ended)],
    observedGeneration: '1',
    runningCount: ended ? 0 : e.taskCount,
    succeededCount: ended && !e.cancelled && !e.startFailure ? Math.max(0, e.taskCount - failed) : 0,
    failedCount: failed,
    // "The number of tasks which reached phase Cancelled": none until the cancel has taken effect.
    cancelledCount: ended && e.cancelled ? e.taskCount : 0,
    // maxRetries 0 (tickrun's jobs): no task is ever retried.
    retriedCount: 0,
    etag: `"${e.name}"`,
  };
}

/**
 * A task's Completed condition, as its execution's where the execution decides (running, cancelling,
 * cancelled, never started); otherwise its own end: CONDITION_SUCCEEDED ("Successful conditions cannot have
 * a reason"), or CONDITION_FAILED with ExecutionReason NON_ZERO_EXIT_CODE, the reason the Condition
 * reference gives for a task whose last attempt's container exited non-zero.
 */
function taskCompletedCondition(e: EmulatedExecution, failed: boolean, ended: boolean): Record<string, string> {
  if (!ended || e.startFailure || e.cancelled) return completedCondition(e, ended);
  const at = { type: 'Completed', lastTransitionTime: rfc3339(e.finishedAt!) };
  return failed ? { ...at, state: 'CONDITION_FAILED', executionReason: 'NON_ZERO_EXIT_CODE', severity: 'ERROR', message: CONTAINER_FAILED } : { ...at, state: 'CONDITION_SUCCEEDED' };
}

/**
 * Task `index` of `e` as the v2 REST JSON shows it at `now` (enums as names), from "REST Resource:
 * projects.locations.jobs.executions.tasks": `execution` its full name, `job` the job's id (as an
 * Execution's `job`), `index` and `retried` 0 (maxRetries 0). Its conditions are Started and Completed, the
 * two a Task has (gcloud's Task wrapper, googlecloudsdk/api_lib/run/task.py: READY_CONDITION 'Completed').
 * `lastAttemptResult` once its container has exited: "If the status code is OK, then the attempt
 * succeeded"; a failed attempt's status code is not documented, and is UNKNOWN (2) here, as the failed
 * run's operation error; exitCode 1. A task that never started (its execution failed to start) has no
 * startTime, no completionTime, no attempt, and its conditions fail with the execution's CommonReason; a
 * cancelled one has no attempt result (none is documented) and a Completed condition of reason CANCELLED.
 */
export function taskResource(e: EmulatedExecution, index: number, now: number): Record<string, unknown> {
  const state = taskState(e, index, now);
  const ended = state !== 'running';
  const ran = state !== 'unstarted';
  const name = `${e.name}/tasks/${taskId(e, index)}`;
  const attempt = state === 'failed'
    ? { lastAttemptResult: { status: { code: 2, message: CONTAINER_FAILED }, exitCode: 1 } }
    : state === 'succeeded' ? { lastAttemptResult: { status: { code: 0 }, exitCode: 0 } } : undefined;
  return {
    name,
    uid: uidOf(name),
    generation: '1',
    createTime: rfc3339(e.createdAt),
    ...(ran && { scheduledTime: rfc3339(e.createdAt), startTime: rfc3339(e.createdAt) }),
    ...(ended && ran && { completionTime: rfc3339(e.finishedAt!) }),
    updateTime: rfc3339(ended ? e.finishedAt! : e.createdAt),
    job: e.job.split('/').pop(),
    execution: e.name,
    containers: containers(e),
    maxRetries: 0,
    ...(e.timeoutSeconds !== undefined && { timeout: `${e.timeoutSeconds}s` }),
    reconciling: !ended,
    conditions: [startedCondition(e, ended), taskCompletedCondition(e, state === 'failed', ended)],
    observedGeneration: '1',
    index,
    retried: 0,
    ...attempt,
    etag: `"${name}"`,
  };
}

/** Rewrites the Condition enums as numbers, as the API answers when asked `$alt=json;enum-encoding=int` (the client always asks). */
function numericEnums(resource: Record<string, unknown>): Record<string, unknown> {
  const conditions = (resource.conditions as Record<string, string>[]).map((c) => ({
    ...c,
    state: State[c.state as keyof typeof State],
    ...(c.severity && { severity: Severity[c.severity as keyof typeof Severity] }),
    ...(c.executionReason && { executionReason: ExecutionReason[c.executionReason as keyof typeof ExecutionReason] }),
    ...(c.reason && { reason: CommonReason[c.reason as keyof typeof CommonReason] }),
  }));
  return { ...resource, conditions };
}

/** numericEnums for every Execution or Task in an answer: the resource itself, an operation's, or a list's. */
export function withNumericEnums(body: Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(body.conditions)) return numericEnums(body);
  const out = { ...body };
  for (const key of ['metadata', 'response'] as const) {
    if (out[key]) out[key] = numericEnums(out[key] as Record<string, unknown>);
  }
  for (const key of ['executions', 'tasks'] as const) {
    if (Array.isArray(out[key])) out[key] = (out[key] as Record<string, unknown>[]).map(numericEnums);
  }
  return out;
}
