import type { TickContext } from '../context';
import { errorText } from '../errors';
import type { LostAttempt } from '../executors/executor';
import { lookupRetryDelay } from '../lifecycle';
import { LOST_ANSWER } from './dispatch';
import { log } from '../log';
import type { ExecutorKind, TaskSpec } from '../workflows/definition';
import { recordOutcomes, type AttemptOutcome } from './record';

// Claims whose lease ran out: their tick died or stopped renewing them, a dispatch's answer was lost
// (its claim was kept only until the lost call could no longer act: steps/dispatch.ts), or a lookup
// failed. They are taken over under a new lease token (so the old claimant's late report changes
// nothing) for the reconciliation below, which settles each one or hands it back for a retry soon.
// An array execution's rows are taken over together: they were claimed and sent as one (shared/arrays.ts).
export const REAP_SQL = `
with expired as (
  select id, array_head from tasks
  where status = 'claimed' and lease_until < now()
  order by lease_until
  limit $1
  for update skip locked
), together as (
  select t.id from tasks t
  where t.id = any (array(select id from expired
                          union
                          select s.id from tasks s
                          where s.array_head in (select array_head from expired where array_head is not null) and s.status = 'claimed'))
    and t.status = 'claimed'
  for update skip locked
)
update tasks t
set lease_until = now() + $2 * interval '1 millisecond', lease_token = gen_random_uuid(), updated_at = now()
from together, runs r
where t.id = together.id and r.id = t.run_id
returning t.id, t.name, t.task_index, t.run_id, t.attempt, t.lease_token, t.claimed_at, t.error, t.array_head,
          (extract(epoch from now() - t.claimed_at) * 1000)::bigint as unsettled_ms,
          r.definition -> 'tasks' -> t.name as spec`;

/** What reconciliation did this cycle. */
export interface ReapResult {
  /** Expired claims examined. */
  reconciled: number;
  /** Executions found started and adopted: polled as usual from now on. */
  adopted: number;
  /** Attempts never started: re-queued as the same attempt. */
  requeued: number;
  /** Claims whose lookup failed or was cut short: looked for again after a short backoff. */
  postponed: number;
}

interface Expired {
  id: string;
  name: string;
  task_index: number;
  run_id: string;
  attempt: number;
  lease_token: string;
  array_head: string | null;
  claimed_at: Date;
  error: string | null;
  unsettled_ms: string;
  spec: TaskSpec;
}

/**
 * Reconciles expired claims: asks each executor whether the attempt was started (by the task id and
 * attempt given to the execution); adopts an execution found, re-queues the task when none was started.
 * An attempt the executor cannot settle now (a fault, a search cut short, or the tick's budget came
 * first) stays claimed and is looked for again after lookupRetryDelay, by whichever tick comes.
 */
export async function reapExpiredClaims(ctx: TickContext): Promise<ReapResult> {
  const { db, config, executors } = ctx;
  const { rows } = await db.query<Expired>(REAP_SQL, [config.batchSize, config.claimLeaseMs], 'tickrun_reap');
  if (rows.length === 0) return { reconciled: 0, adopted: 0, requeued: 0, postponed: 0 };
  // One lookup per attempt that was sent: a task's, or an array execution's, named by its head
  // (TICKRUN_ARRAY_ID), whose answer settles every row of it.
  const byKind = new Map<ExecutorKind, (LostAttempt & { rows: Expired[] })[]>();
  const arrays = new Map<string, LostAttempt & { rows: Expired[] }>();
  for (const row of rows) {
    const known = row.array_head === null ? undefined : arrays.get(row.array_head);
    if (known) {
      known.rows.push(row);
      continue;
    }
    const lost: LostAttempt & { rows: Expired[] } = { taskId: row.array_head ?? row.id, attempt: row.attempt, spec: row.spec, claimedAt: row.claimed_at, rows: [row] };
    if (row.array_head !== null) lost.array = true;
    if (row.array_head !== null) arrays.set(row.array_head, lost);
    byKind.set(row.spec.executor, [...(byKind.get(row.spec.executor) ?? []), lost]);
  }
  const outcomes: AttemptOutcome[] = [];
  await Promise.all(
    [...byKind].map(async ([kind, lost]) => {
      let found = new Map<LostAttempt, string | null>();
      try {
        found = await executors[kind].findStarted(lost, ctx.endBy);
      } catch (err) {
        log('WARNING', `lookup of ${lost.length} lost ${kind} claims failed: ${errorText(err)}`);
      }
      for (const l of lost) for (const row of l.rows) outcomes.push(settle(row, found.has(l) ? found.get(l)! : undefined));
    }),
  );
  const recorded = new Map((await recordOutcomes(ctx.db, outcomes)).map((r) => [r.id, r]));
  const byId = new Map(rows.map((row) => [row.id, row]));
  const result = { reconciled: rows.length, adopted: 0, requeued: 0, postponed: 0 };
  for (const o of outcomes) {
    const r = recorded.get(o.id);
    // Not recorded: another tick took the claim over meanwhile (a new token), and settles it.
    if (!r) continue;
    const recovery = r.outcome === 'dispatched' ? 'adopted' : r.outcome === 'ambiguous' ? 'postponed' : 'requeued';
    result[recovery]++;
    const row = byId.get(o.id)!;
    const unsettledMs = Number(row.unsettled_ms);
    const why = lostBecause(row);
    const what = recovery === 'adopted' ? `adopted ${o.executionName}` : recovery === 'requeued' ? `re-queued (${r.status})` : `lookup retried in ${o.delayMs} ms`;
    log('INFO', `lost claim of ${row.name}[${row.task_index}] attempt ${row.attempt} ${what}, ${unsettledMs} ms after its claim; lost because: ${why}`,
      { run_id: row.run_id, task_id: row.id }, { recovery, unsettledMs, why });
  }
  log('INFO', `reconciled ${rows.length} expired claims: ${result.adopted} adopted, ${result.requeued} re-queued, ${result.postponed} postponed`, undefined, result);
  return result;
}

/** The outcome of one expired claim: its execution (adopted), none (re-queued), or not known (looked for again soon). */
function settle(row: Expired, execution: string | null | undefined): AttemptOutcome {
  const base = { id: row.id, attempt: row.attempt, leaseToken: row.lease_token };
  if (execution) return { ...base, outcome: 'dispatched', executionName: execution };
  if (execution === null) return { ...base, outcome: 'requeue', delayMs: 0, error: 'claim expired before any execution was started: re-queued' };
  const delayMs = lookupRetryDelay(Number(row.unsettled_ms));
  // The error starts with why the claim was lost in the first place, for the log of its settling.
  return { ...base, outcome: 'ambiguous', delayMs, error: `${lostBecause(row)} (lookup failed, retried in ${delayMs} ms)` };
}

const STOPPED_RENEWING = 'its tick stopped renewing the claim';

/** Why a claim was lost: its dispatch's answer (the error dispatch recorded), else its tick died or stalled. */
function lostBecause(row: Expired): string {
  const kept = row.error?.replace(/ \(lookup failed, retried in \d+ ms\)$/, '');
  return kept?.startsWith(LOST_ANSWER) || kept?.startsWith(STOPPED_RENEWING) ? kept : STOPPED_RENEWING;
}
