import type { Pool } from 'pg';
import type { Config } from './config';
import { emptySummary, runCycle, type TickSummary } from './cycle';
import { Carry } from './carry';
import { countingDb } from './db';
import { MIN_CALL_MS } from './executors/executor';
import type { TickContext } from './context';

/** What a tick needs that outlives it: configuration, a pool, the executors, and optionally a clock. */
export type TickDeps = Omit<TickContext, 'db' | 'clock' | 'endBy' | 'carry'> & { pool: Pool; clock?: () => Date };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long before its budget ends a tick stops starting API calls: time for the statements that record their answers. */
const RECORD_MARGIN_MS = 1000;
/** A cycle woken for a lease's end or a task's due time comes this long after it: the database's now() has then passed it too. */
const WAKE_SLACK_MS = 50;

/**
 * One tick: one cycle, or, with a budget, a cycle every poll interval until the next one would
 * not finish within the budget; past the budget no API call is started (see TickContext.deadline).
 * Cloud Scheduler fires at most once a minute; a budget just under the schedule's period gives a
 * cycle every few seconds without two ticks overlapping.
 * A failing cycle fails the tick: the next tick starts from what the database holds.
 */
export async function tick(deps: TickDeps, opts: { budgetMs?: number } = {}): Promise<TickSummary> {
  const started = Date.now();
  const budgetMs = opts.budgetMs ?? deps.config.budgetMs;
  // With a budget, every call ends within it (context.ts, endBy); a budget too short for one call counts
  // as one. Without (0: one cycle) its claims' leases bound it.
  const endBy = budgetMs > 0 ? performance.now() + Math.max(budgetMs - RECORD_MARGIN_MS, MIN_CALL_MS) : undefined;
  const db = countingDb(deps.pool);
  const carry = new Carry();
  const ctx: TickContext = { config: deps.config, executors: deps.executors, db, clock: deps.clock ?? (() => new Date()), endBy, carry };
  const summary = emptySummary();
  const { pollIntervalMs } = deps.config;
  let failed: { error: unknown } | undefined;
  let cameSoon = false;
  try {
    for (;;) {
      const cycleStart = Date.now();
      const { wakeAt, soon } = await runCycle(ctx, summary);
      const cycleTook = Date.now() - cycleStart;
      // Once, not every cycle: a check that keeps failing (a permission missing) goes back to the interval.
      const soonNow: boolean = soon && !cameSoon;
      cameSoon = soonNow;
      // The next cycle comes a poll interval after this one began, or sooner when a claim's lease ends or
      // a task given back comes due first (a lost answer to reconcile, a dead tick's claims, a 429 over),
      // or the cycle asks for it, though never within a fifth of an interval of this one's end.
      const untilWake = soonNow ? 0 : wakeAt === undefined ? Infinity : wakeAt + WAKE_SLACK_MS - performance.now();
      const nextStart = Math.min(cycleStart + pollIntervalMs, Math.max(Date.now() + untilWake, cycleStart + cycleTook + pollIntervalMs / 5));
      // Stop when the next cycle, started on schedule and taking as long as this one, would overrun.
      if (nextStart + cycleTook - started > budgetMs) break;
      await sleep(Math.max(0, nextStart - Date.now()));
    }
  } catch (error) {
    failed = { error };
  }
  // No tick ends with work under way: what its cycles carried is recorded first (when a cycle failed,
  // its own error is the one the tick reports).
  await carry.drain().catch((error: unknown) => (failed ??= { error }));
  if (failed) throw failed.error;
  summary.renewals = db.byName.tickrun_renew ?? 0;
  summary.roundTrips = db.roundTrips;
  summary.durationMs = Date.now() - started;
  return summary;
}
