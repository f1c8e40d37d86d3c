import { parseConfig } from './config';
import { openPool } from './db';
import { createExecutors } from './executors';
import type { TickDeps } from './tick';

// Built once per function instance and kept between invocations: the pool's connections and the Cloud Run
// client's channel are what make a warm call cheap. Both HTTP functions (tick, dashboard) share it; a
// failure to build it is retried on the next call.
let deps: Promise<TickDeps> | undefined;

/** The configuration, pool and executors of this function instance, from its environment. */
export function instanceDeps(): Promise<TickDeps> {
  deps ??= (async () => {
    const config = parseConfig();
    return { config, pool: await openPool(config), executors: createExecutors(config) };
  })().catch((err) => {
    deps = undefined;
    throw err;
  });
  return deps;
}
