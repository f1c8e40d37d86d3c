import type { TickContext } from '../context';

// Waiting tasks move on in one statement: `skipped` when any task they depend on, directly or not,
// ended failed or cancelled (so a failure skips its whole downstream at once), `queued` when every
// task they depend on directly has succeeded. Others keep waiting.
export const ADVANCE_SQL = `
with decided as (
  select t.id,
         case
           when exists (select 1 from tasks a
                        where a.run_id = t.run_id and a.name = any (t.ancestors)
                          and a.status in ('failed', 'cancelled')) then 'skipped'
           when not exists (select 1 from tasks d
                            where d.run_id = t.run_id and d.name = any (t.depends_on)
                              and d.status <> 'success') then 'queued'
         end as status
  from tasks t
  where t.status = 'waiting'
  for update of t skip locked
)
update tasks t
set status = d.status, next_attempt_at = now(), updated_at = now(),
    finished_at = case when d.status = 'skipped' then now() end,
    error = case when d.status = 'skipped' then 'a task it depends on did not succeed' end
from decided d
where t.id = d.id and d.status is not null
returning t.status`;

/** Releases waiting tasks whose dependencies all succeeded and skips those whose dependency failed for good. */
export async function advanceWaitingTasks(ctx: TickContext): Promise<{ released: number; skipped: number }> {
  const { rows } = await ctx.db.query<{ status: string }>(ADVANCE_SQL, [], 'tickrun_advance');
  const skipped = rows.filter((r) => r.status === 'skipped').length;
  return { released: rows.length - skipped, skipped };
}
