import type { Pool } from 'pg';
import { NotFoundError } from '../errors';

// The insert does nothing when the key is taken; the run that holds it is then read in a second
// statement, whose fresh snapshot sees a run committed by a trigger racing this one.
const TRIGGER_SQL = `
insert into runs (workflow, workflow_version, definition, params, idempotency_key, triggered_by)
select name, version, definition, $2, $3, $4 from workflows where name = $1
on conflict (workflow, idempotency_key) do nothing
returning id`;

/**
 * Creates a run of a workflow with its definition pinned. With an idempotency key, the same key for the
 * same workflow returns the run it created first. NotFoundError for an unknown workflow.
 */
export async function triggerRun(
  pool: Pool,
  workflow: string,
  opts: { params?: Record<string, string>; idempotencyKey?: string; triggeredBy?: string } = {},
): Promise<{ runId: string; created: boolean }> {
  const key = opts.idempotencyKey ?? null;
  const { rows } = await pool.query<{ id: string }>(TRIGGER_SQL, [workflow, JSON.stringify(opts.params ?? {}), key, opts.triggeredBy ?? 'manual']);
  if (rows[0]) return { runId: rows[0].id, created: true };
  if (key !== null) {
    const existing = await pool.query<{ id: string }>('select id from runs where workflow = $1 and idempotency_key = $2', [workflow, key]);
    if (existing.rows[0]) return { runId: existing.rows[0].id, created: false };
  }
  throw new NotFoundError(`unknown workflow "${workflow}": \`tickrun workflows\` lists them, \`tickrun apply\` adds them`);
}
