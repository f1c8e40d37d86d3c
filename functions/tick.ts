import * as functions from '@google-cloud/functions-framework';
import { instanceDeps } from '../shared/instance';
import { log } from '../shared/log';
import { tick } from '../shared/tick';

/** Reads `{"budgetMs": n}` from the body; an empty body means the configured budget. */
function readBudget(body: unknown): number | undefined | Error {
  if (body === undefined || body === null || body === '' || (typeof body === 'object' && Object.keys(body).length === 0)) return undefined;
  const budgetMs = (body as { budgetMs?: unknown }).budgetMs;
  if (budgetMs === undefined) return undefined;
  if (typeof budgetMs !== 'number' || !Number.isInteger(budgetMs) || budgetMs < 0 || budgetMs > 3_600_000) {
    return new Error('budgetMs must be a whole number of milliseconds from 0 to 3600000');
  }
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
    const message = err instanceof Error ? err.message : String(err);
    log('ERROR', `tick failed: ${message}`);
    res.status(500).json({ error: message });
  }
});
