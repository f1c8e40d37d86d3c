import pLimit from 'p-limit';
import { errorText } from '../errors';
import { deadlineWithin, ExecutorFault, PastDeadline, type ExecutionStatus, type Executor } from '../executors/executor';
import type { ExecutorKind } from '../workflows/definition';
import { formatDuration } from '../workflows/duration';
import type { AttemptOutcome } from './record';

/** An attempt on an execution, with the kind of executor that runs it. */
export interface ExecutionAttempt {
  id: string;
  attempt: number;
  execution_name: string;
  executor: ExecutorKind;
}

/** How a stopped attempt ends: cancelled with its run, or failed (past its timeout). */
export type StopEnd = { outcome: 'cancelled' | 'failed'; error: string };

/**
 * An attempt to stop: how it ends once stopped; whether the executor already accepted to stop it; whether
 * the stop was first asked longer than the stop timeout ago; its execution's status when the caller read it.
 */
export interface StopRequest extends ExecutionAttempt {
  end: StopEnd;
  stopSent: boolean;
  stopOverdue: boolean;
  status?: ExecutionStatus;
}

/** What stopAttempts did: one outcome per attempt, and the errors met reading or stopping some of them. */
export interface Stopped<T> {
  outcomes: AttemptOutcome[];
  errors: { attempt: T; error: unknown }[];
}

/**
 * Stops attempts through their executors, `concurrency` calls at once: the one way an attempt is cancelled,
 * for poll (timeouts, cancelled runs) and the operator's `cancel` alike. Each execution's status is read
 * first (unless given): one that has already ended is recorded as what it was (a cancelled one ends as
 * `end` says). One still running is asked to stop, once, and stays in flight (`stopping`) until a check
 * sees it ended: a cancel takes effect later. Every stop ends within `stopTimeoutMs` of its first asking:
 * - a refusal no retry cures (an error that is not an ExecutorFault: PERMISSION_DENIED…) ends it at once;
 * - a transient fault (ExecutorFault) is asked again each cycle, and ends it once the time is up;
 * - an execution still running that long after its cancel was accepted ends it too.
 * Such an end says that the execution may still run. A status that cannot be read leaves the attempt as it is.
 */
export async function stopAttempts<T extends StopRequest>(
  executors: Record<ExecutorKind, Executor>,
  attempts: T[],
  { concurrency, stopTimeoutMs, endBy = Infinity, readTimeoutMs = Infinity }: { concurrency: number; stopTimeoutMs: number; endBy?: number; readTimeoutMs?: number },
): Promise<Stopped<T>> {
  const stopped: Stopped<T> = { outcomes: [], errors: [] };
  const statuses = await readStatuses(executors, attempts.filter((a) => !a.status), concurrency, endBy);
  const limit = pLimit(concurrency);
  const endAnyway = (a: T, why: string): AttemptOutcome => ({ ...attemptOf(a), outcome: a.end.outcome, error: `${a.end.error}; ${why}` });
  await Promise.all(
    attempts.map((a) =>
      limit(async () => {
        const status = a.status ?? statuses.get(a.execution_name) ?? new Error('the executor returned no status');
        if (status instanceof Error) {
          stopped.errors.push({ attempt: a, error: status });
          return void stopped.outcomes.push({ ...attemptOf(a), outcome: 'checked' });
        }
        if (status.state !== 'running') return void stopped.outcomes.push(endedOutcome(a, status, a.end));
        if (a.stopSent) {
          // Asked already: sending it every cycle would not make it stop sooner.
          const overdue = `its execution ${a.execution_name} was asked to stop but still ran ${formatDuration(stopTimeoutMs)} later`;
          return void stopped.outcomes.push(a.stopOverdue ? endAnyway(a, overdue) : { ...attemptOf(a), outcome: 'checked' });
        }
        // Too late in the tick's budget for the call (deadlineWithin, as the executor reckons it): the next tick asks again.
        if (deadlineWithin(readTimeoutMs, endBy) === 0) return void stopped.errors.push({ attempt: a, error: new PastDeadline() });
        try {
          await executors[a.executor].cancel(a.execution_name, endBy);
          stopped.outcomes.push({ ...attemptOf(a), outcome: 'stopping', stopSent: true });
        } catch (error) {
          stopped.errors.push({ attempt: a, error });
          const transient = (error instanceof ExecutorFault || error instanceof PastDeadline) && !a.stopOverdue;
          stopped.outcomes.push(transient
            ? { ...attemptOf(a), outcome: 'stopping', stopSent: false }
            : endAnyway(a, `its execution could not be stopped and may still run: ${errorText(error)}`));
        }
      }),
    ),
  );
  return stopped;
}

/**
 * What an ended execution means for its attempt: what it was. A cancelled one ends as `stop` says when
 * tickrun was stopping it; else someone stopped it outside tickrun, which counts as a failed attempt so
 * that the task's retries still apply, unless the record finds its run cancelled by then: the run's own
 * cancel stopped it after the reader saw the run still running (steps/record.ts, cancelledWithRun).
 */
export function endedOutcome(a: ExecutionAttempt, status: Exclude<ExecutionStatus, { state: 'running' }>, stop?: StopEnd): AttemptOutcome {
  switch (status.state) {
    case 'success':
      return { ...attemptOf(a), outcome: 'success' };
    case 'failed':
      // An outcome unknown (the execution is gone) may have been a success: never run it again.
      return { ...attemptOf(a), outcome: 'failed', error: status.error, ...(status.outcomeUnknown && { final: true }) };
    case 'cancelled': {
      const outside = `execution ${a.execution_name} was cancelled outside tickrun${status.message ? `: ${status.message}` : ''}`;
      return { ...attemptOf(a), ...(stop ?? { outcome: 'failed', error: outside, cancelledExecution: true }) };
    }
  }
}

const attemptOf = (a: ExecutionAttempt) => ({ id: a.id, attempt: a.attempt, executionName: a.execution_name });

/** The statuses of these attempts' executions, one `statusMany` per executor kind; a failed read is that name's Error. */
export async function readStatuses(
  executors: Record<ExecutorKind, Executor>,
  attempts: ExecutionAttempt[],
  concurrency: number,
  endBy?: number,
  /** Told of each status as it is read, before all are. */
  onRead?: (name: string, status: ExecutionStatus | Error) => void,
): Promise<Map<string, ExecutionStatus | Error>> {
  const byKind = new Map<ExecutorKind, string[]>();
  for (const a of attempts) byKind.set(a.executor, [...(byKind.get(a.executor) ?? []), a.execution_name]);
  const read = await Promise.all(
    [...byKind].map(([kind, names]) =>
      executors[kind].statusMany(names, concurrency, endBy, onRead).catch((err: unknown) => new Map(names.map((n) => [n, err instanceof Error ? err : new Error(String(err))]))),
    ),
  );
  return new Map(read.flatMap((m) => [...m]));
}
