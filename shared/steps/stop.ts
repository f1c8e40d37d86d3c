import pLimit from 'p-limit';
import type { Executor } from '../executors/executor';
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

/** What stopAttempts did: the outcomes to record, and the attempts whose executor could not be asked. */
export interface Stopped<T> {
  outcomes: AttemptOutcome[];
  faults: { attempt: T; error: unknown }[];
}

/**
 * Stops attempts through their executors, `concurrency` calls at once: the one way an attempt is cancelled,
 * for poll (timeouts, cancelled runs) and the operator's `cancel` alike. An attempt whose execution was
 * asked to stop (one already ended is no error) gets the outcome `end` gives it; one whose executor could
 * not be asked is a fault, left in flight so that the next poll tries again.
 */
export async function stopAttempts<T extends ExecutionAttempt>(
  executors: Record<ExecutorKind, Executor>,
  attempts: T[],
  concurrency: number,
  end: (attempt: T) => StopEnd,
): Promise<Stopped<T>> {
  const stopped: Stopped<T> = { outcomes: [], faults: [] };
  const limit = pLimit(concurrency);
  await Promise.all(
    attempts.map((a) =>
      limit(async () => {
        try {
          await executors[a.executor].cancel(a.execution_name);
          stopped.outcomes.push({ id: a.id, attempt: a.attempt, executionName: a.execution_name, ...end(a) });
        } catch (error) {
          stopped.faults.push({ attempt: a, error });
        }
      }),
    ),
  );
  return stopped;
}
