import pLimit from 'p-limit';
import { LEASE_MARGIN_MS } from '../config';
import type { TickContext } from '../context';
import { errorText } from '../errors';
import { deadlineWithin, ExecutorFault, ExecutorRefusal } from '../executors/executor';
import { faultRetryDelay } from '../lifecycle';
import { log } from '../log';
import type { ClaimedTask } from './claim';
import { recordInTwo } from '../carry';
import { BatchLease } from './leases';
import { recordOutcomes, type AttemptOutcome, type RecordedOutcome } from './record';
import { slowThrottledRegions } from './throttle';
import { formatIndexes } from '../arrays';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How the error of a claim kept after a lost answer begins (steps/reap.ts tells why a claim was lost by it). */
export const LOST_ANSWER = 'dispatch answer lost';

/**
 * Starts every claimed task through its executor, at most `dispatchConcurrency` at once, then records
 * all results in one statement. An error on one task is recorded on that task and never fails the batch:
 * - the executor refused (503, connection refused): re-queued shortly, no attempt spent;
 * - quota (429): the same; after two in a row the rest of the batch pauses a few seconds, longer at each
 *   further one, and is re-queued unsent once its pauses add up to more than a lease; and the region's
 *   shared rate shrinks, so every tick sends less (steps/throttle.ts);
 * - the answer was lost (500, timeout, reset): the task stays claimed until reconciliation
 *   (steps/reap.ts) finds out whether the execution exists; it is never sent again blindly;
 * - refused for good (no such job, a permission missing): a failed attempt and the last one;
 * - any other error: a failed attempt.
 * A call that could not end before the claim's lease (renewed first when it runs short: steps/leases.ts),
 * or not within the tick's budget, is not started at all: the task is re-queued unsent.
 */
export async function dispatchTasks(ctx: TickContext, claimed: ClaimedTask[]): Promise<RecordedOutcome[]> {
  if (claimed.length === 0) return [];
  // One call per execution: a task, or an array task's rows claimed together (shared/arrays.ts), whose
  // outcome is each row's.
  const sends = executionsOf(claimed);
  const { config, executors } = ctx;
  const limit = pLimit(config.dispatchConcurrency);
  const lease = new BatchLease(ctx, claimed, Math.min(...claimed.map((t) => t.leaseEndsAt)));
  // A lone 429 costs only its own task (it is given back): per-minute quotas refuse now and then. Two in a
  // row with no call accepted between say the quota is spent: the batch pauses, its claims waiting under
  // their renewed leases, a fault retry's delay that doubles with each further 429 in the streak. Once its
  // pauses would add up to more than a lease, the rest is given back unsent.
  let quotaStreak = 0;
  // Tasks whose run request met a 429: their regions are slowed once the batch is recorded.
  const throttled: string[] = [];
  let paused = 0;
  let pausedUntil = 0;
  // Once the last call has started, the batch is recorded as soon as its calls have ended, or after a
  // fifth of a poll interval with what has ended by then: a call still out is a straggler (a hung
  // runJob), recorded on its own when it ends (carry.ts, recordInTwo).
  let started = 0;
  let lastStarted: () => void;
  const allStarted = new Promise<void>((resolve) => (lastStarted = resolve));
  const outcomes = new Map<ClaimedTask, AttemptOutcome>();
  const calls = sends.map(({ task, indexes }) =>
    limit(async (): Promise<AttemptOutcome> => {
      if (++started === sends.length) lastStarted();
      const base = { id: task.id, attempt: task.attempt, leaseToken: task.leaseToken };
      const labels = { run_id: task.runId, task_id: task.id, workflow: task.workflow };
      const what = indexes ? `${task.name}[${formatIndexes(indexes)}]` : `${task.name}[${task.index}]`;
      const unsent = (error: string, delayMs = 0): AttemptOutcome => ({ ...base, outcome: 'requeue', delayMs, error: `not sent: ${error}` });
      while (pausedUntil > performance.now() && paused <= config.claimLeaseMs) await sleep(pausedUntil - performance.now());
      if (paused > config.claimLeaseMs) return unsent('out of quota for longer than a lease', faultRetryDelay());
      // Its own deadline, or what is left of the tick's budget when that is less (checked again after a
      // renewal, which takes time).
      const budgetLeft = () => deadlineWithin(config.timeouts.dispatch, ctx.endBy);
      if (budgetLeft() === 0) return unsent("the tick's budget was spent");
      if (!(await lease.room(task.id, config.timeouts.dispatch))) return unsent('its claim would have expired during the call');
      const timeoutMs = budgetLeft();
      if (timeoutMs === 0) return unsent("the tick's budget was spent");
      const sentAt = performance.now();
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
          ...(indexes && { indexes }),
        }, timeoutMs);
        log('INFO', `dispatched ${what} attempt ${task.attempt} as ${executionName}`, labels);
        quotaStreak = 0;
        return { ...base, outcome: 'dispatched', executionName };
      } catch (err) {
        return faultOutcome(base, err, labels, sentAt + timeoutMs, () => {
          throttled.push(task.id);
          if (++quotaStreak < 2 || pausedUntil > performance.now()) return;
          const pause = faultRetryDelay() * 2 ** (quotaStreak - 2);
          paused += pause;
          pausedUntil = performance.now() + pause;
        });
      }
    }),
  );
  // Each row of a send records the send's outcome under its own claim.
  const all = Promise.all(calls.map((call, i) => call.then((outcome) => {
    for (const row of sends[i].rows) outcomes.set(row, { ...outcome, id: row.id, leaseToken: row.leaseToken });
  })));
  const parts = await recordInTwo(claimed, all, { started: allStarted, after: config.pollIntervalMs / 5 }, (task) => outcomes.has(task), (tasks) =>
    recordOutcomes(ctx.db, tasks.map((task) => outcomes.get(task)!)),
  );
  await slowThrottledRegions(ctx.db, throttled, config.regions.runPerMinute);
  return parts.flat();
}

/**
 * The executions a batch of claims is sent as: each task alone, and an array task's rows claimed together
 * (one head) as one execution of their indexes, in ascending order, the head first (its claim's lease
 * and its id stand for the whole group).
 */
function executionsOf(claimed: ClaimedTask[]): { task: ClaimedTask; rows: ClaimedTask[]; indexes?: number[] }[] {
  const arrays = new Map<string, ClaimedTask[]>();
  const sends: { task: ClaimedTask; rows: ClaimedTask[]; indexes?: number[] }[] = [];
  for (const task of claimed) {
    if (task.arrayHead === null) sends.push({ task, rows: [task] });
    else (arrays.get(task.arrayHead) ?? arrays.set(task.arrayHead, []).get(task.arrayHead)!).push(task);
  }
  for (const rows of arrays.values()) {
    rows.sort((a, b) => a.index - b.index);
    sends.push({ task: rows[0], rows, indexes: rows.map((r) => r.index) });
  }
  return sends;
}

/** What a dispatch error means for the task (see dispatchTasks). */
function faultOutcome(
  base: Pick<AttemptOutcome, 'id' | 'attempt' | 'leaseToken'>,
  err: unknown,
  labels: Record<string, string>,
  /** When the call's deadline ended or ends (performance.now()). */
  callEnd: number,
  onQuota: () => void,
): AttemptOutcome {
  const text = errorText(err);
  if (err instanceof ExecutorFault) {
    log('WARNING', `dispatch fault (${err.kind}), no attempt spent: ${text}`, labels, { fault: err.kind });
    if (err.kind === 'ambiguous') {
      // The claim is held until the lost call can no longer act (its deadline and the margin after it
      // was sent), then reconciled by the next cycle of any tick, this one first (steps/reap.ts).
      const delayMs = Math.max(0, Math.ceil(callEnd + LEASE_MARGIN_MS - performance.now()));
      return { ...base, outcome: 'ambiguous', delayMs, error: `${LOST_ANSWER}, reconciling: ${text}` };
    }
    if (err.kind === 'quota') onQuota();
    return { ...base, outcome: 'requeue', delayMs: faultRetryDelay(), error: `dispatch refused, retrying: ${text}` };
  }
  log('WARNING', `dispatch failed: ${text}`, labels);
  // A refusal no retry cures (no such job, a permission missing) is the task's last attempt; an operator's
  // `tickrun retry` runs it again once the job or the grant is there.
  return { ...base, outcome: 'failed', error: `dispatch failed: ${text}`, ...(err instanceof ExecutorRefusal && { final: true }) };
}
