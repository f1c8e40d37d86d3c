import crypto from 'node:crypto';
import { protos } from '@google-cloud/run';
import type { EmulatedExecution } from './cloudRunEmulator';

const { State, Severity, ExecutionReason, CommonReason } = protos.google.cloud.run.v2.Condition;

const rfc3339 = (ms: number) => new Date(ms).toISOString();

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
  if (e.outcome === 'failed') {
    return { ...at, state: 'CONDITION_FAILED', executionReason: 'NON_ZERO_EXIT_CODE', severity: 'ERROR', message: `Task ${e.name.split('/').pop()}-task0 failed with message: The container exited with an error (exit code 1).` };
  }
  return { ...at, state: 'CONDITION_SUCCEEDED', message: `Execution completed successfully in ${(e.durationMs / 1000).toFixed(2)}s.` };
}

/**
 * The Execution resource as the v2 REST JSON shows it at `now` (enums as names). Its `template` is the
 * job's task template with the run's overrides applied, which is where the overridden env shows.
 */
export function executionResource(e: EmulatedExecution, now: number): Record<string, unknown> {
  const ended = now >= e.finishedAt!;
  const failed = ended && !e.cancelled ? e.failedCount : 0;
  const started = e.startFailure && ended
    ? { ...completedCondition(e, true), type: 'Started' }
    : { type: 'Started', state: 'CONDITION_SUCCEEDED', lastTransitionTime: rfc3339(e.createdAt) };
  return {
    name: e.name,
    // Stable per execution, as a real uid is, without storing one more field.
    uid: crypto.createHash('sha1').update(e.name).digest('hex').slice(0, 32).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
    generation: '1',
    createTime: rfc3339(e.createdAt),
    startTime: rfc3339(e.createdAt),
    updateTime: rfc3339(ended ? e.finishedAt! : e.createdAt),
    ...(ended && { completionTime: rfc3339(e.finishedAt!) }),
    job: e.job.split('/').pop(),
    taskCount: e.taskCount,
    template: {
      containers: [{ image: 'emulated', env: Object.entries(e.env).map(([name, value]) => ({ name, value })), ...(e.args && { args: e.args }) }],
      ...(e.timeoutSeconds !== undefined && { timeout: `${e.timeoutSeconds}s` }),
    },
    reconciling: !ended,
    conditions: [started, completedCondition(e, ended)],
    observedGeneration: '1',
    runningCount: ended ? 0 : e.taskCount,
    succeededCount: ended && !e.cancelled && !e.startFailure ? Math.max(0, e.taskCount - failed) : 0,
    failedCount: failed,
    // "The number of tasks which reached phase Cancelled": none until the cancel has taken effect.
    cancelledCount: ended && e.cancelled ? e.taskCount : 0,
    etag: `"${e.name}"`,
  };
}

/** Rewrites the Condition enums as numbers, as the API answers when asked `$alt=json;enum-encoding=int` (the client always asks). */
function numericEnums(execution: Record<string, unknown>): Record<string, unknown> {
  const conditions = (execution.conditions as Record<string, string>[]).map((c) => ({
    ...c,
    state: State[c.state as keyof typeof State],
    ...(c.severity && { severity: Severity[c.severity as keyof typeof Severity] }),
    ...(c.executionReason && { executionReason: ExecutionReason[c.executionReason as keyof typeof ExecutionReason] }),
    ...(c.reason && { reason: CommonReason[c.reason as keyof typeof CommonReason] }),
  }));
  return { ...execution, conditions };
}

/** numericEnums for every Execution in an answer: the resource itself, an operation's, or a list's. */
export function withNumericEnums(body: Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(body.conditions)) return numericEnums(body);
  const out = { ...body };
  for (const key of ['metadata', 'response'] as const) {
    if (out[key]) out[key] = numericEnums(out[key] as Record<string, unknown>);
  }
  if (Array.isArray(out.executions)) out.executions = (out.executions as Record<string, unknown>[]).map(numericEnums);
  return out;
}
