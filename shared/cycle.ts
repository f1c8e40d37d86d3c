import { within } from './carry';
import type { TickContext } from './context';
import { deadlineWithin } from './executors/executor';
import { advanceWaitingTasks } from './steps/advance';
import { claimReadyTasks } from './steps/claim';
import { completeRuns } from './steps/complete';
import { dispatchTasks } from './steps/dispatch';
import { expandPendingRuns } from './steps/expand';
import { checkInFlight, readInFlight } from './steps/poll';
import { hasWork, probeForWork } from './steps/probe';
import { reapExpiredClaims } from './steps/reap';
import { BURST_SECONDS } from './regions';
import { scheduleDueRuns } from './steps/schedule';
import type { RecordedOutcome } from './steps/record';

/** Counts of what a tick did, summed over its cycles. */
export interface TickSummary {
  cycles: number;
  /** Runs created for schedule slots that came due. */
  runsScheduled: number;
  runsStarted: number;
  /** Expired claims reconciled against the executor… */
  reconciled: number;
  /** …whose execution was found and adopted… */
  adopted: number;
  /** …or whose lookup failed or was cut short, retried after a short backoff. */
  postponed: number;
  /** Statements that renewed the leases of claims being sent (one for a whole batch). */
  renewals: number;
  /** Tasks put back unsent, no attempt spent: refused by the executor, quota, or a claim never sent. */
  requeued: number;
  /** Dispatches whose answer was lost (500, timeout, reset), left for reconciliation. */
  ambiguous: number;
  claimed: number;
  dispatched: number;
  checked: number;
  statusErrors: number;
  succeeded: number;
  failed: number;
  retried: number;
  cancelled: number;
  released: number;
  skipped: number;
  runsCompleted: number;
  roundTrips: number;
  durationMs: number;
}

/** A summary with every count at zero. */
export function emptySummary(): TickSummary {
  return {
    cycles: 0, runsScheduled: 0, runsStarted: 0, reconciled: 0, adopted: 0, postponed: 0, renewals: 0, requeued: 0, ambiguous: 0, claimed: 0, dispatched: 0, checked: 0, statusErrors: 0,
    succeeded: 0, failed: 0, retried: 0, cancelled: 0, released: 0, skipped: 0, runsCompleted: 0,
    roundTrips: 0, durationMs: 0,
  };
}

/** Adds what recorded outcomes did to a summary. */
function countOutcomes(summary: TickSummary, recorded: RecordedOutcome[]): void {
  for (const r of recorded) {
    if (r.outcome === 'dispatched') summary.dispatched++;
    else if (r.outcome === 'requeue') summary.requeued++;
    else if (r.outcome === 'ambiguous') summary.ambiguous++;
    else if (r.status === 'success') summary.succeeded++;
    else if (r.status === 'failed') summary.failed++;
    else if (r.status === 'cancelled') summary.cancelled++;
    else if (r.status === 'queued') summary.retried++;
  }
}

/** Tasks that ended so far (succeeded, failed for good, cancelled, skipped): a run may be complete once one has. */
const ended = (s: TickSummary) => s.succeeded + s.failed + s.cancelled + s.skipped;

/**
 * One poll cycle: schedule → expand → reap → in-flight read → (claim → dispatch, beside the checks) →
 * advance → complete, each one statement (dispatch and poll add one to record their batch), so the round
 * trips per cycle do not grow with the batch.
 * A probe comes first and says which steps have work: an idle cycle ends after that one round trip, and a
 * busy one runs only the steps with work. A step also runs when an earlier step of the same cycle made it
 * work, so nothing waits a cycle (a scheduled minute, between ticks) for it: a run scheduled is expanded,
 * tasks expanded or re-queued are claimed, tasks released by advance are claimed and sent after it, and
 * runs are completed when a task ended.
 */
export async function runCycle(ctx: TickContext, summary: TickSummary): Promise<CycleEnd> {
  const cycleStart = performance.now();
  const work = await probeForWork(ctx);
  // When the soonest lease ends (a lost dispatch becomes safe to reconcile, a dead tick's claims come
  // back), a task given back comes due, or a region's run budget has refilled: the tick wakes for it
  // rather than a whole poll interval later. A budget full now is spent by this cycle, so the wake is at
  // least a refill away (shared/regions.ts BURST_SECONDS).
  const refill = work.budgetRefillMs === null ? Infinity : Math.max(work.budgetRefillMs, BURST_SECONDS * 1000);
  const otherWake = Math.min(work.nextLeaseEndMs ?? Infinity, work.nextReadyMs ?? Infinity);
  const soonest = Math.min(otherWake, refill);
  const end: CycleEnd = { wakeAt: soonest === Infinity ? undefined : performance.now() + Math.max(0, soonest), soon: false };
  if (!hasWork(work)) {
    summary.cycles++;
    return end;
  }
  const endedBefore = ended(summary);
  const errorsBefore = summary.statusErrors;
  const scheduled = work.due ? await scheduleDueRuns(ctx) : 0;
  summary.runsScheduled += scheduled;
  const expanded = work.pending || scheduled > 0 ? await expandPendingRuns(ctx) : { runsStarted: 0 };
  summary.runsStarted += expanded.runsStarted;
  // Too late in the tick's budget for a call to end within it, nothing would be sent or searched for: a
  // claim taken now would only be given back, and a lost one would wait for a later tick anyway.
  const { dispatch, list } = ctx.config.timeouts;
  const reaped = work.expired && deadlineWithin(list, ctx.endBy) > 0 ? await reapExpiredClaims(ctx) : { reconciled: 0, adopted: 0, requeued: 0, postponed: 0 };
  summary.reconciled += reaped.reconciled;
  summary.adopted += reaped.adopted;
  summary.postponed += reaped.postponed;
  summary.requeued += reaped.requeued;
  // Sending the claimed tasks and checking those already in flight touch different rows and different
  // APIs, so they run side by side, each on its own connection: a cycle takes the longer of the two, not
  // their sum. The tasks in flight are read first, so a cycle checks what was in flight when it began and
  // what it sends is first checked by the next one (a new execution has rarely ended within the same
  // cycle anyway). Within a tick, either is waited for only until the next cycle is due: one still
  // waiting on a slow call goes on in the background (carry.ts) and records its outcomes when it ends,
  // while the next cycles go on with everything else (tasks it is checking are left to it). Both are
  // settled before an error of either is thrown.
  const { carry } = ctx;
  // A cycle woken for the budget alone (the previous one's soonest wake) leaves the checks to their
  // interval; any other cycle checks, as it always has.
  const wokenForBudget = carry?.budgetWake ?? false;
  if (carry) carry.budgetWake = refill < otherWake;
  const pollDue = !carry || !wokenForBudget || carry.pollNext || performance.now() - carry.polledAt >= ctx.config.pollIntervalMs / 2;
  if (carry && work.inFlight && pollDue) carry.polledAt = performance.now();
  const inFlight = work.inFlight && pollDue ? (await readInFlight(ctx)).filter((t) => !carry?.checking.has(t.id)) : [];
  const claimNow = deadlineWithin(dispatch, ctx.endBy) > 0 && (work.ready || expanded.runsStarted > 0 || reaped.requeued > 0);
  const sending = claimNow ? claimAndDispatch(ctx, summary) : Promise.resolve([]);
  for (const t of inFlight) carry?.checking.add(t.id);
  const polling = checkInFlight(ctx, inFlight).finally(() => {
    for (const t of inFlight) carry?.checking.delete(t.id);
  });
  const waitMs = Math.max(cycleStart + ctx.config.pollIntervalMs - performance.now(), ctx.config.pollIntervalMs / 5);
  const lanes = await Promise.allSettled([
    within(sending, waitMs, carry, (sent) => countOutcomes(summary, sent)),
    within(polling, waitMs, carry, (poll) => {
      summary.checked += poll.checked;
      summary.statusErrors += poll.errors;
      countOutcomes(summary, poll.recorded);
    }),
  ]);
  for (const lane of lanes) if (lane.status === 'rejected') throw lane.reason;
  // A check that failed (a listing refused or hung) is tried again soon, not a whole poll interval later,
  // and an execution just adopted is checked soon: it may have ended while its claim was being settled.
  end.soon = summary.statusErrors > errorsBefore || reaped.adopted > 0;
  if (carry) carry.pollNext = end.soon;
  // Tasks waiting before this cycle may have had their last dependency end in it; tasks expanded in it
  // wait on tasks that have not run yet.
  if (work.waiting) {
    const advanced = await advanceWaitingTasks(ctx);
    summary.released += advanced.released;
    summary.skipped += advanced.skipped;
    // Tasks released here are claimed and sent now, not a poll interval later: otherwise every layer of a
    // DAG costs a cycle more than its tasks take. It costs this cycle one claim and dispatch's record (two
    // statements) only when something was released, and is waited for like the lanes above.
    if (advanced.released > 0 && deadlineWithin(dispatch, ctx.endBy) > 0) {
      const waitLeft = Math.max(cycleStart + ctx.config.pollIntervalMs - performance.now(), ctx.config.pollIntervalMs / 5);
      await within(claimAndDispatch(ctx, summary), waitLeft, carry, (sent) => countOutcomes(summary, sent));
    }
  }
  if (work.completable || ended(summary) > endedBefore) summary.runsCompleted += (await completeRuns(ctx)).length;
  summary.cycles++;
  return end;
}

/** Claims the ready tasks and sends them, counting the claims. */
function claimAndDispatch(ctx: TickContext, summary: TickSummary): Promise<RecordedOutcome[]> {
  return claimReadyTasks(ctx).then((claimed) => {
    summary.claimed += claimed.length;
    return dispatchTasks(ctx, claimed);
  });
}

/** What a cycle tells the tick about when to run the next one. */
export interface CycleEnd {
  /** When the soonest claim's lease ends or queued task comes due (performance.now()), if any. */
  wakeAt?: number;
  /** Whether the next cycle should come soon: a status check failed, or an execution was adopted. */
  soon: boolean;
}
