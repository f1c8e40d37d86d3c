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
   * On the performance.now() clock, when the tick's budget ends (less the time to record what its last
   * calls answered). Every API call of dispatch, status checks, stops and reconciliation ends by it: its
   * deadline is cut to what is left, and none starts when too little is (executors/executor.ts,
   * deadlineWithin), so the tick ends within its budget. Absent: no budget (a one-cycle tick, or a step
   * run on its own), and each claim's lease is the only bound.
   */
  endBy?: number;
  /**
   * Where a tick keeps the work its cycles did not wait for (carry.ts). Absent (a step run on its own),
   * a cycle waits for everything it started.
   */
  carry?: Carry;
}
