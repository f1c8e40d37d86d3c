import type { Config } from '../config';
import type { ExecutorKind } from '../workflows/definition';
import { createCloudRunExecutor } from './cloudRun';
import type { Executor } from './executor';
import { createProcessExecutor } from './process';

/**
 * The executors a tick dispatches to, by the `executor` field of a task. The Cloud Run client is
 * built on first use, so a machine that only runs `process` tasks never needs Google credentials.
 */
export function createExecutors(config: Config): Record<ExecutorKind, Executor> {
  let cloudRun: Executor | undefined;
  const lazyCloudRun = (): Executor =>
    (cloudRun ??= createCloudRunExecutor({ timeouts: config.timeouts, ...config.cloudRun }));
  return {
    cloudrun: {
      dispatch: (req, timeoutMs) => lazyCloudRun().dispatch(req, timeoutMs),
      status: (name) => lazyCloudRun().status(name),
      statusMany: (names, concurrency, endBy, onRead) => lazyCloudRun().statusMany(names, concurrency, endBy, onRead),
      cancel: (name, endBy) => lazyCloudRun().cancel(name, endBy),
      findStarted: (lost, endBy) => lazyCloudRun().findStarted(lost, endBy),
      taskEnds: (name, endBy) => lazyCloudRun().taskEnds!(name, endBy),
      // No client yet, no reads sent.
      takeReads: () => cloudRun?.takeReads?.() ?? new Map(),
    },
    process: createProcessExecutor(config.home),
  };
}
