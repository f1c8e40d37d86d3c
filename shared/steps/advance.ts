import type { TickContext } from '../context';
import { BROKEN_STATUSES, sqlList } from '../lifecycle';
import { runSpacingSql } from '../regions';

// Waiting tasks move on in one statement: `skipped` when any task they depend on, directly or not,
// ended failed or cancelled (so a failure skips its whole downstream at once), `queued` when every
// task they depend on directly has succeeded. Others keep waiting.
// The tasks waited on are judged once per (run, task name), not once per waiting task, so a fan-in of N
// on a fan-out of N reads about 2N rows, not N × N (docs/performance.md, row 12).
// The lock (see `moving`) re-checks `status = 'waiting'` on the newest version of a row changed
// meanwhile, so a task cancelled or moved on by another tick is left alone; a decision never goes stale
// (success, failed and cancelled are final while the run runs).
export const ADVANCE_SQL = `
with waiting as (
  select id, run_id, depends_on, ancestors from tasks where status = 'waiting'
), needed as (
  -- Ancestors include the direct dependencies; both are named, so neither alone decides what is read.
  select distinct w.run_id, n.name from waiting w cross join lateral unnest(w.ancestors || w.depends_on) as n(name)
), broken as (
  -- The task names with a task that ended failed or cancelled, in the runs that have waiting tasks:
  -- failures are few, and tasks_run_status finds them without reading the rest (ordered by status,
  -- which that index gives and any other read would have to sort).
  select distinct r.run_id, f.name
  from (select distinct run_id from needed) r
  cross join lateral (select f.name from tasks f
                      where f.run_id = r.run_id and f.status in ${sqlList(BROKEN_STATUSES)} order by f.status) f
), judged as materialized (
  -- Each (run, name) judged once, however many waiting tasks are joined with it: done when none of its
  -- tasks has yet to succeed. A scalar subquery with a LIMIT runs once per (run, name) and stops at the
  -- first such task; ordered by task_index, it reads the (run_id, name, task_index) unique index rather
  -- than the table. As NOT EXISTS the planner may hash every task of the table instead (see
  -- steps/complete.ts).
  select nd.run_id, nd.name,
         (nd.run_id, nd.name) in (select run_id, name from broken) as broken,
         (select u.id from tasks u
          where u.run_id = nd.run_id and u.name = nd.name and u.status <> 'success'
          order by u.task_index limit 1) is null as done
  from needed nd
), decided as materialized (
  -- Materialized, and only the tasks that move: the lock below then joins those, where a plan that
  -- re-reads the decisions for every waiting task is quadratic again.
  select id, status from (
    select w.id,
           case when bool_or(j.broken) then 'skipped'
                when bool_and(j.done or j.name <> all (w.depends_on)) then 'queued'
           end as status
    from waiting w
    join judged j on j.run_id = w.run_id and j.name = any (w.ancestors || w.depends_on)
    group by w.id
  ) x
  where status is not null
), moving as (
  -- Only the tasks that move are locked, and those another tick holds are left to it (two ticks
  -- updating the same rows in different orders could deadlock).
  select t.id, d.status from decided d join tasks t on t.id = d.id
  where t.status = 'waiting'
  for update of t skip locked
), shares as materialized (
  -- Each run's share once, not once per task released.
  select r.id, ${runSpacingSql('r')} as spacing from runs r
  where r.id in (select t.run_id from moving m join tasks t on t.id = m.id where m.status = 'queued')
), keyed as (
  -- A released task joins its region's fair order from where the region's claims are now, spaced by
  -- its run's share (shared/regions.ts).
  select m.id, m.status,
         case when m.status = 'queued'
              then coalesce(g.pass, 0) + s.spacing * row_number() over (partition by t.run_id, t.region, m.status order by t.name, t.task_index) end as fair_key
  from moving m join tasks t on t.id = m.id
  left join shares s on s.id = t.run_id
  left join regions g on g.region = t.region
)
update tasks t
set status = m.status, next_attempt_at = now(), updated_at = now(), fair_key = m.fair_key,
    finished_at = case when m.status = 'skipped' then now() end,
    error = case when m.status = 'skipped' then 'a task it depends on did not succeed' end
from keyed m
where t.id = m.id
returning t.status`;

/** Releases waiting tasks whose dependencies all succeeded and skips those whose dependency failed for good. */
export async function advanceWaitingTasks(ctx: TickContext): Promise<{ released: number; skipped: number }> {
  const { rows } = await ctx.db.query<{ status: 'queued' | 'skipped' }>(ADVANCE_SQL, [], 'tickrun_advance');
  const skipped = rows.filter((r) => r.status === 'skipped').length;
  return { released: rows.length - skipped, skipped };
}
