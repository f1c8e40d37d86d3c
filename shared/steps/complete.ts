import type { TickContext } from '../context';
import { sqlList, UNFINISHED_TASK_STATUSES, type RunStatus } from '../lifecycle';

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
    -- The run's first unfinished task, if any, through tasks_run_status: one index lookup per running
    -- run. As NOT EXISTS, or without that index's ORDER BY, the planner may read every unfinished task
    -- while one wide run holds most of the table (test/integration/complete.test.ts).
    and (select t.id from tasks t where t.run_id = r.id
           and t.status in ${sqlList(UNFINISHED_TASK_STATUSES)}
         order by t.run_id, t.status limit 1) is null
  for update of r skip locked
)
update runs r
set status = case when d.failure is null then 'success' else 'failed' end,
    error = d.failure, finished_at = now()
from done d
where r.id = d.id
returning r.id, r.status`;

/** Completes every run whose tasks have all ended. Returns the runs completed with their status. */
export async function completeRuns(ctx: TickContext): Promise<{ id: string; status: RunStatus }[]> {
  const { rows } = await ctx.db.query<{ id: string; status: RunStatus }>(COMPLETE_SQL, [], 'tickrun_complete');
  return rows;
}
