import type { protos } from '@google-cloud/run';
import jsonProtos from '@google-cloud/run/build/protos/protos.json';
import type { ExecutionStatus, TaskEnd } from './executor';

type Execution = protos.google.cloud.run.v2.IExecution;
type Task = protos.google.cloud.run.v2.ITask;

/** The response field mask of a page of an array execution's tasks: what taskEnd reads, and the page token. */
export const TASK_FIELDS = ['nextPageToken', ...['index', 'conditions.type', 'conditions.state', 'conditions.executionReason', 'conditions.reason',
  'conditions.message', 'lastAttemptResult.exitCode', 'lastAttemptResult.status.message'].map((f) => `tasks.${f}`)].join(',');

/**
 * How one task of an ended execution ended, from its Completed condition (the Task resource, Cloud Run
 * Admin API v2): succeeded; failed, with its last attempt's exit code; cancelled (reason CANCELLED, as for
 * an execution); `unknown` when the condition is not final.
 */
export function taskEnd(task: Task): TaskEnd {
  const completed = task.conditions?.find((c) => c.type === 'Completed');
  const state = enumName(CONDITION_STATE, completed?.state);
  if (state === 'CONDITION_SUCCEEDED') return { state: 'success' };
  const index = `Cloud Run task ${task.index ?? '?'}`;
  if (enumName(EXECUTION_REASON, completed?.executionReason) === 'CANCELLED') return { state: 'cancelled', error: `${index} was cancelled` };
  if (state !== 'CONDITION_FAILED') return { state: 'unknown', error: `${index} did not end (${state ?? 'no Completed condition'})` };
  const exit = task.lastAttemptResult?.exitCode;
  const message = completed?.message ?? task.lastAttemptResult?.status?.message ?? 'failed';
  return { state: 'failed', error: `${index} failed${exit != null && exit !== 0 ? ` with exit code ${exit}` : ''}: ${message}` };
}

/**
 * What an Execution resource says of its end. Enums are names when read by getExecution and
 * numbers when decoded from an operation's metadata; both are accepted.
 */
export function executionStatus(execution: Execution): ExecutionStatus {
  const completed = execution.conditions?.find((c) => c.type === 'Completed');
  const state = enumName(CONDITION_STATE, completed?.state);
  if (state !== 'CONDITION_SUCCEEDED' && state !== 'CONDITION_FAILED') return { state: 'running' };
  const failed = execution.failedCount ?? 0;
  const cancelled = execution.cancelledCount ?? 0;
  // Cloud Run shows a cancellation as a failed Completed condition with reason CANCELLED;
  // cancelled tasks with none failed mean the same even if the reason is missing.
  if (enumName(EXECUTION_REASON, completed?.executionReason) === 'CANCELLED' || (cancelled > 0 && failed === 0)) {
    return completed?.message ? { state: 'cancelled', message: completed.message } : { state: 'cancelled' };
  }
  if (state === 'CONDITION_SUCCEEDED' && failed === 0) return { state: 'success' };
  // No task could start (an image missing, a secret denied): the condition names a CommonReason instead.
  const reason = enumName(COMMON_REASON, completed?.reason);
  const ran = failed + (execution.succeededCount ?? 0) > 0;
  if (!ran && reason && reason !== 'COMMON_REASON_UNDEFINED') return { state: 'failed', error: `${reason}: ${completed?.message ?? 'execution failed'} (no task ran)` };
  const counts = `${failed} of ${execution.taskCount ?? '?'} tasks failed, ${execution.succeededCount ?? 0} succeeded`;
  return { state: 'failed', error: completed?.message ? `${completed.message} (${counts})` : `execution failed (${counts})` };
}

/**
 * What an execution Cloud Run no longer has means (docs/guarantees.md). Its job exists: it was removed after
 * it completed ("Execute jobs": a job keeps its last 1,000 completed executions and those of the last 7
 * days); its job is gone: it went with it. Either way it is not running and how it ended cannot be read.
 */
export function vanishedStatus(executionName: string, job: string, jobExists: boolean): ExecutionStatus {
  const why = jobExists
    ? 'ended, but Cloud Run no longer keeps it (a job keeps its last 1,000 completed executions and those of the last 7 days)'
    : `is gone with its job ${job}, which no longer exists`;
  // It may have succeeded: running it again could do its work twice.
  const error = `execution ${executionName} ${why}: whether it succeeded is unknown, so it is not retried; see its logs, then retry the run if it must run again`;
  return { state: 'failed', error, outcomeUnknown: true };
}

/**
 * The Execution an operation's metadata holds. gax decodes it into `metadata`, except for an
 * operation already done with an error: then it stops before the metadata, which is decoded here.
 */
export function operationExecution(
  operation: { metadata: unknown; latestResponse: protos.google.longrunning.IOperation },
  decodeExecution: (bytes: Uint8Array) => Execution,
): Execution | undefined {
  if (operation.metadata) return operation.metadata as Execution;
  const value = operation.latestResponse.metadata?.value;
  if (!value) return undefined;
  return decodeExecution(typeof value === 'string' ? Buffer.from(value, 'base64') : value);
}

// Condition enums by number, from the package's own proto definitions: an Execution decoded by the client's
// stock operation decoders carries numbers where getExecution and listExecutions give names.
const conditionEnums = jsonProtos.nested.google.nested.cloud.nested.run.nested.v2.nested.Condition.nested;
const byNumber = (values: Record<string, number>) => Object.fromEntries(Object.entries(values).map(([name, n]) => [n, name]));
const CONDITION_STATE: Record<number, string> = byNumber(conditionEnums.State.values);
const EXECUTION_REASON: Record<number, string> = byNumber(conditionEnums.ExecutionReason.values);
const COMMON_REASON: Record<number, string> = byNumber(conditionEnums.CommonReason.values);

function enumName(values: Record<number, string>, value: unknown): string | undefined {
  return typeof value === 'number' ? values[value] : (value as string | undefined) ?? undefined;
}
