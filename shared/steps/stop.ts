import pLimit from 'p-limit';
import type { ExecutionStatus, Executor } from '../executors/executor';
import type { ExecutorKind } from '../workflows/definition';
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
 * An attempt to stop: how it ends once stopped, whether the executor already accepted to stop it, and
 * its execution's status when the caller has read it.
 */
export interface StopRequest extends ExecutionAttempt {
  end: StopEnd;
  stopSent: boolean;
  status?: ExecutionStatus;
}

/** What stopAttempts did: the outcomes to record, and the attempts whose executor could not be asked. */
export interface Stopped<T> {
  outcomes: AttemptOutcome[];
  faults: { attempt: T; error: unknown }[];
}

/**
 * Stops attempts through their executors, `concurrency` calls at once: the one way an attempt is cancelled,
 * for poll (timeouts, cancelled runs) and the operator's `cancel` alike. Each execution's status is read
 * first (unless given): one that has already ended is recorded as what it was (a cancelled one ends as
 * `end` says). One still running is asked to stop, once, and stays in flight (`stopping`): a cancel takes
 * effect later, and the attempt ends when a check sees its execution ended. An attempt whose status could
 * not be read, or whose executor could not be asked, is a fault, left in flight so that the next poll
 * tries again.
 */
export async function stopAttempts<T extends StopRequest>(executors: Record<ExecutorKind, Executor>, attempts: T[], concurrency: number): Promise<Stopped<T>> {
  const stopped: Stopped<T> = { outcomes: [], faults: [] };
  const statuses = await readStatuses(executors, attempts.filter((a) => !a.status), concurrency);
  const limit = pLimit(concurrency);
  await Promise.all(
    attempts.map((a) =>
      limit(async () => {
        const status = a.status ?? statuses.get(a.execution_name) ?? new Error('the executor returned no status');
        if (status instanceof Error) return void stopped.faults.push({ attempt: a, error: status });
        if (status.state !== 'running') return void stopped.outcomes.push(endedOutcome(a, status, a.end));
        // Asked already: sending it every cycle would not make it stop sooner.
        if (a.stopSent) return void stopped.outcomes.push({ ...attemptOf(a), outcome: 'checked' });
        try {
          await executors[a.executor].cancel(a.execution_name);
          stopped.outcomes.push({ ...attemptOf(a), outcome: 'stopping' });
        } catch (error) {
          stopped.faults.push({ attempt: a, error });
        }
      }),
    ),
  );
  return stopped;
}

/**
 * What an ended execution means for its attempt: what it was. A cancelled one ends as `stop` says when
 * tickrun was stopping it; else someone stopped it outside tickrun, which counts as a failed attempt so
 * that the task's retries still apply.
 */
export function endedOutcome(a: ExecutionAttempt, status: Exclude<ExecutionStatus, { state: 'running' }>, stop?: StopEnd): AttemptOutcome {
  switch (status.state) {
    case 'success':
      return { ...attemptOf(a), outcome: 'success' };
    case 'failed':
      return { ...attemptOf(a), outcome: 'failed', error: status.error };
    case 'cancelled':
      return { ...attemptOf(a), ...(stop ?? { outcome: 'failed', error: `execution ${a.execution_name} was cancelled outside tickrun` }) };
  }
}

const attemptOf = (a: ExecutionAttempt) => ({ id: a.id, attempt: a.attempt, executionName: a.execution_name });

/** The statuses of these attempts' executions, one `statusMany` per executor kind; a failed read is that name's Error. */
export async function readStatuses(executors: Record<ExecutorKind, Executor>, attempts: ExecutionAttempt[], concurrency: number): Promise<Map<string, ExecutionStatus | Error>> {
  const byKind = new Map<ExecutorKind, string[]>();
  for (const a of attempts) byKind.set(a.executor, [...(byKind.get(a.executor) ?? []), a.execution_name]);
  const read = await Promise.all(
    [...byKind].map(([kind, names]) =>
      executors[kind].statusMany(names, concurrency).catch((err: unknown) => new Map(names.map((n) => [n, err instanceof Error ? err : new Error(String(err))]))),
    ),
  );
  return new Map(read.flatMap((m) => [...m]));
}
