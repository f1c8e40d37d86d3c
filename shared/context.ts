import type { Carry } from './carry';
import type { Config } from './config';
import type { Db } from './db';
import type { Executor } from './executors/executor';
import type { ExecutorKind } from './workflows/definition';

/** What every step of the cycle receives first: the parsed configuration, the database, the executors. */
export interface TickContext {
  config: Config;
  db: Db;
  executors: Record<ExecutorKind, Executor>;
  /**
   * The time schedules are read against. Leases, backoffs and timeouts use the database's now(), one
   * clock for every tick; schedules need the time in JavaScript (cron-parser), and tests pass their own.
   */
  clock: () => Date;
  /**
   * On the performance.now() clock, when the tick began and when its budget is spent (less the time to
   * record what its last calls answered). Dispatch, status checks, stops and reconciliation start a call
   * only if its deadline ends by `budgetEnd` (startBy), so the tick ends within its budget. Absent: no
   * budget (a one-cycle tick, or a step run on its own), and each claim's lease is the only bound.
   */
  budget?: { startedAt: number; budgetEnd: number };
  /**
   * Where a tick keeps the work its cycles did not wait for (carry.ts). Absent (a step run on its own),
   * a cycle waits for everything it started.
   */
  carry?: Carry;
}

/**
 * The latest moment (performance.now()) a call with this deadline may start so that it ends within the
 * tick's budget. At the tick's start a call may always begin: a budget shorter than one deadline counts
 * as one, or a short tick would never call at all.
 */
export function startBy(ctx: Pick<TickContext, 'budget'>, timeoutMs: number): number {
  if (!ctx.budget) return Infinity;
  return Math.max(ctx.budget.budgetEnd - timeoutMs, ctx.budget.startedAt);
}
