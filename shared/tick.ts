import type { Pool } from 'pg';
import type { Config } from './config';
import { emptySummary, runCycle, type TickSummary } from './cycle';
import { countingDb } from './db';
import type { TickContext } from './context';

/** What a tick needs that outlives it: configuration, a pool, the executors, and optionally a clock. */
export type TickDeps = Omit<TickContext, 'db' | 'clock' | 'deadline'> & { pool: Pool; clock?: () => Date };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long before its budget ends a tick stops starting API calls: time for the statements that record their answers. */
const RECORD_MARGIN_MS = 1000;

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
  // With a budget no API call starts past this, so the tick ends within the budget plus one API deadline;
  // a budget shorter than one API deadline counts as one. Without (0: one cycle) its claims' leases bound it.
  const deadline = budgetMs > 0 ? performance.now() + Math.max(budgetMs - RECORD_MARGIN_MS, deps.config.apiTimeoutMs) : undefined;
  const db = countingDb(deps.pool);
  const ctx: TickContext = { config: deps.config, executors: deps.executors, db, clock: deps.clock ?? (() => new Date()), deadline };
  const summary = emptySummary();
  try {
    for (;;) {
      const cycleStart = Date.now();
      await runCycle(ctx, summary);
      const nextStart = cycleStart + deps.config.pollIntervalMs;
      const cycleTook = Date.now() - cycleStart;
      // Stop when the next cycle, started on schedule and taking as long as this one, would overrun.
      if (nextStart + cycleTook - started > budgetMs) break;
      await sleep(Math.max(0, nextStart - Date.now()));
    }
  } finally {
    summary.roundTrips = db.roundTrips;
    summary.durationMs = Date.now() - started;
  }
  return summary;
}
