import * as functions from '@google-cloud/functions-framework';
import { sendInternalError } from '../shared/dashboard/http';
import { dashboardHandler } from '../shared/dashboard/server';
import { instanceDeps } from '../shared/instance';

/**
 * The `dashboard` HTTP function: the page, its JSON API and its actions, over the tick's database. It
 * sits in the tick's bundle under its own target; IAM (run.invoker, terraform/function.tf) decides who
 * reaches it, and actions are also refused unless they come from its own page as `gcloud run services proxy`
 * serves it on a loopback address (shared/dashboard/guard.ts).
 */
functions.http('dashboard', async (req, res) => {
  try {
    await dashboardHandler(await instanceDeps(), { mode: 'cloud' })(req, res);
  } catch (err) {
    // The instance could not be built (configuration, the connector): the log says why, the caller gets a reference.
    sendInternalError(req, res, err);
  }
});
