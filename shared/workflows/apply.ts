import crypto from 'node:crypto';
import type { Pool } from 'pg';
import type { WorkflowDefinition } from './definition';

/** What `apply` did to one workflow. */
export interface AppliedWorkflow {
  name: string;
  action: 'created' | 'updated' | 'unchanged';
  version: number;
}

/** A stable hash of a definition: keys sorted, so the same file always hashes the same. */
export function definitionHash(def: WorkflowDefinition): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
        : v;
  return crypto.createHash('sha256').update(JSON.stringify(canonical(def))).digest('hex');
}

// Insert, or replace the definition and bump the version only when its hash changed; `xmax = 0`
// tells an inserted row from an updated one.
const UPSERT_SQL = `
insert into workflows (name, definition, hash)
select * from unnest($1::text[], $2::jsonb[], $3::text[])
on conflict (name) do update
  set definition = excluded.definition, hash = excluded.hash,
      version = workflows.version + 1, updated_at = now()
  where workflows.hash <> excluded.hash
returning name, version, (xmax = 0) as inserted`;

/**
 * Creates or updates workflows, all in one statement: all or nothing. Runs already triggered keep
 * the definition they pinned.
 */
export async function applyWorkflows(pool: Pool, defs: WorkflowDefinition[]): Promise<AppliedWorkflow[]> {
  const { rows } = await pool.query<{ name: string; version: number; inserted: boolean }>(UPSERT_SQL, [
    defs.map((d) => d.name),
    defs.map((d) => JSON.stringify(d)),
    defs.map(definitionHash),
  ]);
  const changed = new Map(rows.map((r) => [r.name, r]));
  const { rows: current } = await pool.query<{ name: string; version: number }>(
    'select name, version from workflows where name = any ($1)',
    [defs.map((d) => d.name)],
  );
  return current.map((w) => {
    const row = changed.get(w.name);
    return { name: w.name, version: w.version, action: row ? (row.inserted ? 'created' : 'updated') : 'unchanged' };
  });
}
