import crypto from 'node:crypto';
import type { Pool } from 'pg';
import { sqlList, UNFINISHED_TASK_STATUSES } from '../lifecycle';
import type { WorkflowDefinition } from './definition';
import { nextScheduleSlot } from './schedule';

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

// Insert, or replace the definition and bump the version only when its hash changed; `xmax = 0` tells
// an inserted row from an updated one. A new or changed schedule (or time zone) waits for its next slot
// from now; an unchanged one keeps the slot it waits for; a removed one stops.
const UPSERT_SQL = `
insert into workflows (name, definition, hash, concurrency, next_slot_at)
select * from unnest($1::text[], $2::jsonb[], $3::text[], $4::int[], $5::timestamptz[])
on conflict (name) do update
  set definition = excluded.definition, hash = excluded.hash, concurrency = excluded.concurrency,
      version = workflows.version + 1, updated_at = now(),
      next_slot_at = case
        when (workflows.definition ->> 'schedule', workflows.definition ->> 'timezone')
             is not distinct from (excluded.definition ->> 'schedule', excluded.definition ->> 'timezone')
        then workflows.next_slot_at
        else excluded.next_slot_at end
  where workflows.hash <> excluded.hash
returning name, version, (xmax = 0) as inserted`;

// One slot row per unit of each limit; slots above a lowered limit go once free (the claim only takes
// slots up to the limit meanwhile). Every unfinished task follows a limit set or removed, not only the
// queued ones: a task waiting or in flight comes back to the claim by its `limited`, and one routed by a
// limit gone would wait for a slot that is never free. Tasks are locked in id order, as record.ts does.
const SLOTS_SQL = `
with added as (
  insert into concurrency_slots (workflow, slot)
  select w.name, g from workflows w cross join lateral generate_series(1, w.concurrency) g
  where w.name = any ($1) and w.concurrency is not null
  on conflict do nothing
), removed as (
  delete from concurrency_slots s using workflows w
  where w.name = s.workflow and w.name = any ($1) and s.task_id is null
    and (w.concurrency is null or s.slot > w.concurrency)
), rerouted as (
  select t.id, w.concurrency is not null as limited
  from tasks t join workflows w on w.name = t.workflow
  where w.name = any ($1) and t.status in ${sqlList(UNFINISHED_TASK_STATUSES)} and t.limited <> (w.concurrency is not null)
  order by t.id
  for no key update of t
)
update tasks t set limited = r.limited
from rerouted r
where t.id = r.id`;

/**
 * Creates or updates workflows in one transaction: all or nothing. Runs already triggered keep the
 * definition they pinned; a concurrency limit applies across runs from the next claim on, to their
 * unfinished tasks too (those already in flight finish without a slot).
 */
export async function applyWorkflows(pool: Pool, defs: WorkflowDefinition[], now = new Date()): Promise<AppliedWorkflow[]> {
  const names = defs.map((d) => d.name);
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query<{ name: string; version: number; inserted: boolean }>(UPSERT_SQL, [
      names,
      defs.map((d) => JSON.stringify(d)),
      defs.map(definitionHash),
      defs.map((d) => d.concurrency ?? null),
      defs.map((d) => (d.schedule ? nextScheduleSlot(d.schedule, now, d.timezone) : null)),
    ]);
    await client.query(SLOTS_SQL, [names]);
    const { rows: current } = await client.query<{ name: string; version: number }>(
      'select name, version from workflows where name = any ($1)',
      [names],
    );
    await client.query('commit');
    const changed = new Map(rows.map((r) => [r.name, r]));
    return current.map((w) => {
      const row = changed.get(w.name);
      return { name: w.name, version: w.version, action: row ? (row.inserted ? 'created' : 'updated') : 'unchanged' };
    });
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
