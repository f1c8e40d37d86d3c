import pLimit from 'p-limit';
import type { TickContext } from '../context';
import { errorText } from '../errors';
import { log } from '../log';
import type { ClaimedTask } from './claim';
import { recordOutcomes, type AttemptOutcome, type RecordedOutcome } from './record';

/**
 * Starts every claimed task through its executor, at most `dispatchConcurrency` at once, then records
 * all results in one statement. A task whose dispatch throws has that error recorded as a failed
 * attempt (retried if it has attempts left); it never fails the batch.
 */
export async function dispatchTasks(ctx: TickContext, claimed: ClaimedTask[]): Promise<RecordedOutcome[]> {
  if (claimed.length === 0) return [];
  const { config, executors } = ctx;
  const limit = pLimit(config.dispatchConcurrency);
  const outcomes = await Promise.all(
    claimed.map((task) =>
      limit(async (): Promise<AttemptOutcome> => {
        const labels = { run_id: task.runId, task_id: task.id, workflow: task.workflow };
        try {
          const executionName = await executors[task.spec.executor].dispatch({
            taskId: task.id,
            runId: task.runId,
            workflow: task.workflow,
            taskName: task.name,
            index: task.index,
            attempt: task.attempt,
            params: task.params,
            spec: task.spec,
            workflowDir: task.dir,
          });
          log('INFO', `dispatched ${task.name}[${task.index}] attempt ${task.attempt} as ${executionName}`, labels);
          return { id: task.id, attempt: task.attempt, outcome: 'dispatched', executionName };
        } catch (err) {
          const error = `dispatch failed: ${errorText(err)}`;
          log('WARNING', `${task.name}[${task.index}] attempt ${task.attempt}: ${error}`, labels);
          return { id: task.id, attempt: task.attempt, outcome: 'failed', error };
        }
      }),
    ),
  );
  return recordOutcomes(ctx, outcomes);
}
