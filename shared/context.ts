import type { Config } from './config';
import type { Db } from './db';
import type { Executor } from './executors/executor';
import type { ExecutorKind } from './workflows/definition';

/** What every step of the cycle receives first: the parsed configuration, the database, the executors. */
export interface TickContext {
  config: Config;
  db: Db;
  executors: Record<ExecutorKind, Executor>;
}
