import * as functions from '@google-cloud/functions-framework';
import { parseConfig } from '../shared/config';
import { openPool } from '../shared/db';
import { createExecutors } from '../shared/executors';
import { dashboardHandler, type DashboardDeps } from '../shared/dashboard/server';

// Built once per instance, like the tick's: a warm page load costs the queries only. A failure to
// build them is retried on the next request.
let handler: Promise<ReturnType<typeof dashboardHandler>> | undefined;

function getHandler(): Promise<ReturnType<typeof dashboardHandler>> {
  handler ??= (async () => {
    const config = parseConfig();
    const deps: DashboardDeps = { config, pool: await openPool(config), executors: createExecutors(config) };
    return dashboardHandler(deps);
  })().catch((err) => {
    handler = undefined;
    throw err;
  });
  return handler;
}

/**
 * The `dashboard` HTTP function: the page, its JSON API and its actions, over the tick's database. It
 * sits in the tick's bundle under its own target; IAM (run.invoker, terraform/function.tf) decides who
 * reaches it, and actions are also refused unless they come from its own page (shared/dashboard/guard.ts).
 */
functions.http('dashboard', async (req, res) => {
  try {
    await (await getHandler())(req, res);
  } catch (err) {
    res.status(500).json({ error: err instanceof Error ? err.message : String(err) });
  }
});
