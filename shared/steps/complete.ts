import type { TickContext } from '../context';

// A running run whose tasks have all ended is complete: `success` when every task succeeded, else
// `failed` with the first failed task's error. Cancelled runs were finished by `cancel`.
export const COMPLETE_SQL = `
with done as (
  select r.id,
         (select t.name || '[' || t.task_index || ']: ' || coalesce(t.error, 'failed')
          from tasks t where t.run_id = r.id and t.status = 'failed'
          order by t.finished_at, t.name, t.task_index limit 1) as failure
  from runs r
  where r.status = 'running'
    and not exists (select 1 from tasks t where t.run_id = r.id
                    and t.status in ('waiting', 'queued', 'claimed', 'dispatched', 'running'))
  for update of r skip locked
)
update runs r
set status = case when d.failure is null then 'success' else 'failed' end,
    error = d.failure, finished_at = now()
from done d
where r.id = d.id
returning r.id, r.status`;

/** Completes every run whose tasks have all ended. Returns the runs completed with their status. */
export async function completeRuns(ctx: TickContext): Promise<{ id: string; status: string }[]> {
  const { rows } = await ctx.db.query<{ id: string; status: string }>(COMPLETE_SQL, [], 'tickrun_complete');
  return rows;
}
