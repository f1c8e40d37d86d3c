import type { TickContext } from '../context';
import { errorText } from '../errors';
import type { LostAttempt } from '../executors/executor';
import { log } from '../log';
import type { ExecutorKind, TaskSpec } from '../workflows/definition';
import { recordOutcomes, type AttemptOutcome } from './record';

// Claims whose lease ran out belong to a tick that died or stalled between claiming and recording, or
// to a dispatch whose answer was lost. They are taken over under a new lease token (so the old
// claimant's late report changes nothing) for the reconciliation below.
export const REAP_SQL = `
with expired as (
  select id from tasks
  where status = 'claimed' and lease_until < now()
  order by lease_until
  limit $1
  for update skip locked
)
update tasks t
set lease_until = now() + $2 * interval '1 millisecond', lease_token = gen_random_uuid(), updated_at = now()
from expired, runs r
where t.id = expired.id and r.id = t.run_id
returning t.id, t.attempt, t.lease_token, t.claimed_at, r.definition -> 'tasks' -> t.name as spec`;

/** What reconciliation did this cycle. */
export interface ReapResult {
  /** Expired claims examined. */
  reconciled: number;
  /** Executions found started and adopted: polled as usual from now on. */
  adopted: number;
  /** Attempts never started: re-queued as the same attempt. */
  requeued: number;
}

/**
 * Reconciles expired claims: asks each executor whether the attempt was started (by the task id and
 * attempt given to the execution); adopts an execution found, re-queues the task when none was started.
 * An attempt the executor cannot settle now (a fault, or the tick's deadline came first) stays claimed
 * until its new lease runs out.
 */
export async function reapExpiredClaims(ctx: TickContext): Promise<ReapResult> {
  const { db, config, executors } = ctx;
  const { rows } = await db.query<{ id: string; attempt: number; lease_token: string; claimed_at: Date; spec: TaskSpec }>(
    REAP_SQL,
    [config.batchSize, config.claimLeaseMs],
    'tickrun_reap',
  );
  if (rows.length === 0) return { reconciled: 0, adopted: 0, requeued: 0 };
  const byKind = new Map<ExecutorKind, (LostAttempt & { leaseToken: string })[]>();
  for (const r of rows) {
    const lost = { taskId: r.id, attempt: r.attempt, spec: r.spec, claimedAt: r.claimed_at, leaseToken: r.lease_token };
    byKind.set(r.spec.executor, [...(byKind.get(r.spec.executor) ?? []), lost]);
  }
  const outcomes: AttemptOutcome[] = [];
  await Promise.all(
    [...byKind].map(async ([kind, lost]) => {
      let found: Map<LostAttempt, string | null>;
      try {
        found = await executors[kind].findStarted(lost, ctx.deadline);
      } catch (err) {
        log('WARNING', `reconciliation of ${lost.length} ${kind} claims postponed: ${errorText(err)}`);
        return;
      }
      for (const l of lost) {
        if (!found.has(l)) continue;
        const execution = found.get(l);
        const base = { id: l.taskId, attempt: l.attempt, leaseToken: l.leaseToken };
        outcomes.push(
          execution
            ? { ...base, outcome: 'dispatched', executionName: execution }
            : { ...base, outcome: 'requeue', delayMs: 0, error: 'claim expired before any execution was started: re-queued' },
        );
      }
    }),
  );
  const recorded = await recordOutcomes(ctx.db, outcomes);
  const adopted = recorded.filter((r) => r.outcome === 'dispatched').length;
  const requeued = recorded.length - adopted;
  log('INFO', `reconciled ${rows.length} expired claims: ${adopted} adopted, ${requeued} re-queued`, undefined, { reconciled: rows.length, adopted, requeued });
  return { reconciled: rows.length, adopted, requeued };
}
