import type { Pool } from 'pg';
import type { Config } from '../config';
import { NotFoundError } from '../errors';
import { checkRunId } from '../model/runs';
import type { Executor } from '../executors/executor';
import { cancelRun } from '../operator/cancel';
import { retryRun, whyNotRetried } from '../operator/retry';
import { triggerRun } from '../operator/trigger';
import type { ExecutorKind } from '../workflows/definition';
import { HttpError } from './http';

/** What an action needs: the database, and the executors to cancel executions through. */
export interface ActionDeps {
  pool: Pool;
  config: Config;
  executors: Record<ExecutorKind, Executor>;
}

/** A trigger's body, checked: `{"workflow", "params"?, "idempotencyKey"?}`. HttpError 400 naming the field. */
export function parseTriggerBody(body: unknown): { workflow: string; params: Record<string, string>; idempotencyKey?: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object: {"workflow": "…", "params": {…}, "idempotencyKey": "…"}');
  const { workflow, params = {}, idempotencyKey, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new HttpError(400, `unknown field "${unknown[0]}": a trigger takes workflow, params and idempotencyKey`);
  if (typeof workflow !== 'string' || workflow === '') throw new HttpError(400, 'field "workflow" is required: the name of the workflow to run');
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new HttpError(400, 'field "params" must be an object of string values, e.g. {"day": "2026-03-01"}');
  for (const [k, v] of Object.entries(params)) {
    if (typeof v !== 'string') throw new HttpError(400, `param "${k}" must be a string (tasks get params as TICKRUN_PARAMS, strings only)`);
  }
  if (idempotencyKey !== undefined && idempotencyKey !== null && (typeof idempotencyKey !== 'string' || idempotencyKey === '' || idempotencyKey.length > 200)) {
    throw new HttpError(400, 'field "idempotencyKey" must be a non-empty string of at most 200 characters');
  }
  return { workflow, params: params as Record<string, string>, ...(typeof idempotencyKey === 'string' && { idempotencyKey }) };
}

/** Triggers a run; 201 with its id when made, 200 with the earlier run's id when the key was used before. */
export async function triggerAction(deps: ActionDeps, body: unknown): Promise<{ status: number; body: { runId: string; created: boolean } }> {
  const { workflow, params, idempotencyKey } = parseTriggerBody(body);
  try {
    const { runId, created } = await triggerRun(deps.pool, workflow, { params, idempotencyKey });
    return { status: created ? 201 : 200, body: { runId, created } };
  } catch (err) {
    if (err instanceof NotFoundError) throw new HttpError(400, `unknown workflow "${workflow}": the workflows page lists them, \`tickrun apply\` adds them`);
    throw err;
  }
}

/**
 * Cancels a run (executions in flight through their executor); 409 when it had already ended. UsageError (400)
 * for a malformed id, NotFoundError (404) for an unknown run.
 */
export async function cancelAction(deps: ActionDeps, rawId: string): Promise<{ status: number; body: unknown }> {
  const id = checkRunId(rawId);
  const result = await cancelRun(deps.pool, deps.config, deps.executors, id);
  if (!result.cancelled) throw new HttpError(409, `run ${id} has already ended (${result.status}): there is nothing to cancel`);
  return { status: 200, body: result };
}

/** Retries a failed run's failed tasks; 409 when the run is not failed, or has no failed task. */
export async function retryAction(deps: ActionDeps, rawId: string): Promise<{ status: number; body: unknown }> {
  const id = checkRunId(rawId);
  const result = await retryRun(deps.pool, id);
  if (!result.retried) {
    throw new HttpError(409, whyNotRetried(id, result.status));
  }
  return { status: 200, body: result };
}
