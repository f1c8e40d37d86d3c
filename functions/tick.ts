import * as functions from '@google-cloud/functions-framework';
import { accepts, isAccepted, SETTINGS } from '../shared/config';
import { instanceDeps } from '../shared/instance';
import { describeThrown } from '../shared/errors';
import { log } from '../shared/log';
import { tick } from '../shared/tick';

/**
 * Reads `{"budgetMs": n}` from the body; an empty body means the configured budget. The bounds are
 * TICKRUN_BUDGET_MS's (one declaration), so the body and the variable refuse the same values.
 */
export function readBudget(body: unknown): number | undefined | Error {
  if (body === undefined || body === null || body === '' || (typeof body === 'object' && Object.keys(body).length === 0)) return undefined;
  const budgetMs = (body as { budgetMs?: unknown }).budgetMs;
  if (budgetMs === undefined) return undefined;
  if (!isAccepted(SETTINGS.budgetMs, budgetMs)) return new Error(`budgetMs must be ${accepts(SETTINGS.budgetMs)}`);
  return budgetMs;
}

/**
 * The `tick` HTTP function: a POST runs one tick (one cycle, or cycles until the budget is spent)
 * and answers 200 with its summary, or 500 with `{"error": "…"}`.
 */
functions.http('tick', async (req, res) => {
  if (req.method !== 'POST') {
    res.status(405).set('Allow', 'POST').json({ error: 'use POST to run a tick' });
    return;
  }
  const budgetMs = readBudget(req.body);
  if (budgetMs instanceof Error) {
    res.status(400).json({ error: budgetMs.message });
    return;
  }
  try {
    const summary = await tick(await instanceDeps(), { budgetMs });
    log('INFO', `tick: ${summary.claimed} claimed, ${summary.dispatched} dispatched, ${summary.checked} checked, ${summary.runsCompleted} runs completed`, undefined, { summary });
    res.status(200).json(summary);
  } catch (err) {
    const message = describeThrown(err);
    log('ERROR', `tick failed: ${message}`);
    res.status(500).json({ error: message });
  }
});
