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
   * On the performance.now() clock, when the tick's budget is spent: dispatch, status checks, stops and
   * reconciliation start no API call past it, so the tick ends within one API deadline after it. Absent: no budget (a one-cycle
   * tick, or a step run on its own), and each claim's lease is the only bound.
   */
  deadline?: number;
}
