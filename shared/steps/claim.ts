import type { TickContext } from '../context';
import { GROWTH_PER_MINUTE, LOCAL_REGION, MIN_RATE_PER_MINUTE, refilledSql } from '../regions';
import type { TaskSpec } from '../workflows/definition';
import { ARRAY_UNITS_PER_CLAIM, MAX_ARRAY_SIZE } from '../arrays';

/** A task claimed for dispatch, with what its run pinned of the workflow. */
export interface ClaimedTask {
  id: string;
  /** Names this claim: only its holder may record what became of it. */
  leaseToken: string;
  /** The lease's end on this process's monotonic clock (performance.now), measured from before the claim was sent. */
  leaseEndsAt: number;
  runId: string;
  name: string;
  index: number;
  attempt: number;
  /** An array task's row: the id of the row heading the execution it is sent in (shared/arrays.ts). */
  arrayHead: string | null;
  workflow: string;
  params: Record<string, string>;
  spec: TaskSpec;
  dir: string;
}

// One statement claims both kinds of ready task and moves them to `claimed` with a lease, the next attempt
// number and a token, before any API call, so no other tick can start the same attempt:
// - tasks of workflows without a limit: per region, the first ready in the region's fair order (their
//   own index), skipping rows other ticks hold;
// - tasks of limited workflows: first the free concurrency slots (FOR UPDATE SKIP LOCKED, so two ticks
//   never take the same slot, and a slot another tick just filled fails the re-check of
//   `task_id is null`), then, per workflow, as many of its ready tasks as it has free slots, oldest run
//   first. Rows over the limit are never read, and a slot is held until the task leaves flight
//   (steps/record.ts frees it).
// Both kinds then meet Cloud Run's limits per region (shared/regions.ts), in the same statement: each
// region's row is locked, its tokens refilled, and at most that many of its tasks, and no more than
// the cap less its count in flight, are taken, the first in the fair order; the row keeps the tokens
// left and the new count. Ticks claiming at once queue on the region's row for the few milliseconds of
// the statement, and the next one reads what the first left (the lock returns the row's newest
// version), so together they never spend more than the budget nor run more than the cap. A count in
// the row, not a slot row per task: the lock already orders the claims, and 100 slot rows more to
// write made the claim nearly twice as slow (bench row 1). Process tasks (region '') and tasks made
// before the regions existed (null) are claimed without a budget.
// A task is claimed only while its run runs: a cancelled run starts nothing (and no statement leaves a
// task queued in an ended run: operator/cancel.ts, steps/record.ts). A scalar subquery, not a join: it
// reads the run by key for each task, never hashing every ready task against the runs
// (test/integration/explain.test.ts). For the region's fair order it is checked on the tasks read, after
// their limit: inside it, the planner's estimate of it made the read look like a row or two, and it chose
// to sort every due task.
const ofRunningRun = (t: string) => `(select r.status from runs r where r.id = ${t}.run_id) = 'running'`;

// The ready tasks of a region are read in its fair order from tasks_ready_fair, which stops at the limit,
// never all due tasks from tasks_ready and then sorted (a 10,000-task fan-out is due all at once). The
// planner, which expects few rows, would pick that; written so, tasks_ready's condition (`not limited`,
// `next_attempt_at`) matches nothing, while tasks_ready_fair's (status only) still does. `limited` is
// never null, so `is not true` is `not limited`; tasks not yet due are few, filtered on the way.
const notLimited = (t: string) => `${t}.limited is not true`;
const dueNow = (t: string) => `coalesce(${t}.next_attempt_at, now()) <= now()`;

// $1 the batch, $2 the lease (ms), $3–$5 the tick's run requests per minute, maximum running executions
// and reserve (config.regions), for regions without their own.
const ceiling = `coalesce(g.run_per_minute, $3)::float8`;
const elapsedMinutes = `least(1, extract(epoch from now() - coalesce(g.refilled_at, now() - interval '1 minute')) / 60)::float8`;

export const CLAIM_SQL = `
with budget as materialized (
  -- Each region's rate, grown back since the last claim, and its tokens, refilled at that rate.
  select g.region, c.ceiling, c.cap, c.rate,
         case when g.region = '${LOCAL_REGION}' then $1::float8
              else ${refilledSql('g.run_tokens', 'g.refilled_at', 'c.rate')} end as tokens,
         greatest(0, c.cap - g.running) as room
  from regions g
  cross join lateral (
    select ${ceiling} as ceiling,
           greatest(0, coalesce(g.max_running, $4) - coalesce(g.reserved, $5)) as cap,
           least(${ceiling}, greatest(${MIN_RATE_PER_MINUTE}, coalesce(g.run_rate, ${ceiling})) + ${ceiling} * ${GROWTH_PER_MINUTE} * ${elapsedMinutes}) as rate
  ) c
  -- In the regions' order, as every statement that changes several of them locks them.
  order by g.region
  for update of g
), regions_open as (
  -- What each region can take now: its whole tokens, and no more than the cap leaves.
  select region, case when region = '${LOCAL_REGION}' then $1 else least(greatest(0, floor(tokens))::int, room) end as tokens from budget
  union all
  select '${LOCAL_REGION}', $1 where not exists (select 1 from budget where region = '${LOCAL_REGION}')
), open_slots as (
  select s.workflow, s.slot
  from concurrency_slots s
  join workflows w on w.name = s.workflow
  where s.task_id is null and s.slot <= w.concurrency
    and exists (select 1 from tasks q where q.workflow = s.workflow and q.status = 'queued' and q.limited
                and q.next_attempt_at <= now())
  limit $1
  for update of s skip locked
), free as (
  select workflow, slot, row_number() over (partition by workflow order by slot) as n from open_slots
), wanted as (
  select workflow, count(*) as k from free group by workflow
), picked as (
  select p.id, p.workflow, p.region, p.fair_key, p.run_id, p.name, p.task_index, p.attempt, p.array_task,
         row_number() over (partition by p.workflow order by p.run_created_at, p.id) as n
  from wanted w
  cross join lateral (
    select t.id, t.workflow, t.run_created_at, coalesce(t.region, '${LOCAL_REGION}') as region, t.fair_key,
           t.run_id, t.name, t.task_index, t.attempt, t.array_task from tasks t
    where t.workflow = w.workflow and t.status = 'queued' and t.limited and t.next_attempt_at <= now()
      and ${ofRunningRun('t')}
    order by t.run_created_at, t.id
    limit w.k
    for update skip locked
  ) p
), ready as (
  select c.id, o.region, c.fair_key, c.run_id, c.name, c.task_index, c.attempt, c.array_task
  from regions_open o
  cross join lateral (
    select t.id, t.fair_key, t.run_id, t.name, t.task_index, t.attempt, t.array_task from tasks t
    where t.region = o.region and t.status = 'queued' and ${notLimited('t')} and ${dueNow('t')}
    order by t.fair_key
    limit least($1, o.tokens)
    for update skip locked
  ) c
  union all
  select c.id, '${LOCAL_REGION}', c.fair_key, c.run_id, c.name, c.task_index, c.attempt, c.array_task
  from (
    select t.id, t.fair_key, t.run_id, t.name, t.task_index, t.attempt, t.array_task from tasks t
    where t.region is null and t.status = 'queued' and ${notLimited('t')} and ${dueNow('t')}
    order by t.region, t.fair_key
    limit $1
    for update skip locked
  ) c
), candidates as (
  select c.*, false as limited from ready c where ${ofRunningRun('c')}
  union all
  select p.id, p.region, p.fair_key, p.run_id, p.name, p.task_index, p.attempt, p.array_task, true from picked p
), leads as (
  -- A unit is what one execution sends: a task, or an array task's ready rows at one attempt, led here
  -- by the first of them in the fair order.
  select c.* from candidates c where not c.array_task
  union all
  select * from (select distinct on (c.run_id, c.name, c.attempt) c.* from candidates c where c.array_task
                 order by c.run_id, c.name, c.attempt, c.fair_key, c.id) a
), units as materialized (
  -- Within each region's room, then the batch, the first units in the fair order; of them, at most
  -- ${ARRAY_UNITS_PER_CLAIM} array units, each up to ${MAX_ARRAY_SIZE} rows (a claim stays a few tens of thousands of rows).
  select u.* from (
    select u.*, count(*) filter (where u.array_task) over (order by u.fair_key nulls first, u.id) as nth
    from (select c.*, row_number() over (partition by c.region order by c.fair_key, c.id) as n from leads c) u
    join regions_open m on m.region = u.region
    where u.n <= m.tokens
    order by u.fair_key nulls first, u.id
    limit $1
  ) u
  where not u.array_task or u.nth <= ${ARRAY_UNITS_PER_CLAIM}
), chosen as materialized (
  -- The rows of the units: a task itself; or an array task's rows at that attempt, those picked with a
  -- slot when it is limited, else every ready one (read by the (run, name, index) key), under their head,
  -- the lowest index.
  select u.id, u.region, u.limited, u.fair_key, null::uuid as head from units u where not u.array_task
  union all
  select x.id, x.region, x.limited, x.fair_key, first_value(x.id) over (partition by x.unit order by x.task_index)
  from (
    select c.id, u.region, true as limited, u.fair_key, u.id as unit, c.task_index
    from units u join candidates c on c.run_id = u.run_id and c.name = u.name and c.attempt = u.attempt and c.array_task
    where u.array_task and u.limited
    union all
    select m.id, u.region, false, u.fair_key, u.id, m.task_index
    from units u
    cross join lateral (
      select t.id, t.task_index from tasks t
      where t.run_id = u.run_id and t.name = u.name and t.array_task and t.attempt = u.attempt
        and t.status = 'queued' and ${notLimited('t')} and ${dueNow('t')}
      order by t.task_index
      limit ${MAX_ARRAY_SIZE}
      for update skip locked
    ) m
    where u.array_task and not u.limited
  ) x
), taken as (
  update concurrency_slots s set task_id = p.id
  from chosen c join picked p on p.id = c.id join free f on f.workflow = p.workflow and f.n = p.n
  where s.workflow = f.workflow and s.slot = f.slot
  returning s.task_id as id
), spent as (
  update regions g
  set run_tokens = case when g.region = '${LOCAL_REGION}' then 0 else b.tokens - coalesce(k.n, 0) end,
      run_rate = case when g.region = '${LOCAL_REGION}' then null else b.rate end,
      run_ceiling = case when g.region = '${LOCAL_REGION}' then null else b.ceiling end,
      cap = case when g.region = '${LOCAL_REGION}' then null else b.cap end,
      -- Each execution to be sent is in flight until the statement recording it leaves (steps/record.ts).
      running = case when g.region = '${LOCAL_REGION}' then 0 else g.running + coalesce(k.n, 0) end,
      refilled_at = now(), pass = greatest(g.pass, coalesce(k.top, g.pass))
  from budget b left join (select region, count(*) as n, max(fair_key) as top from units group by region) k on k.region = b.region
  where g.region = b.region
), used as (
  insert into region_usage (region, minute, run_calls)
  select region, date_trunc('minute', now()), count(*) from units where region <> '${LOCAL_REGION}' group by region
  on conflict (region, minute) do update set run_calls = region_usage.run_calls + excluded.run_calls
)
update tasks t
set status = 'claimed', attempt = t.attempt + 1, lease_until = now() + $2 * interval '1 millisecond',
    lease_token = gen_random_uuid(), claimed_at = now(), updated_at = now(), array_head = c.head
from runs r, chosen c
-- t.id = any(…): an index condition, so the chosen rows are read by key, however few the planner expects.
where t.id = any (array(select id from chosen where not limited union all select id from taken)) and r.id = t.run_id and c.id = t.id
returning t.id, t.lease_token, t.run_id, t.name, t.task_index, t.attempt, t.array_head, r.workflow, r.params,
          r.definition -> 'tasks' -> t.name as spec, r.definition ->> 'dir' as dir`;

/** Claims up to one batch of ready tasks with their workflow, in one JOIN. */
export async function claimReadyTasks(ctx: TickContext): Promise<ClaimedTask[]> {
  const { db, config } = ctx;
  // Read before the statement is sent, so the local view of the lease never outlasts the database's.
  const leaseEndsAt = performance.now() + config.claimLeaseMs;
  const { runPerMinute, maxRunning, reserved } = config.regions;
  const { rows } = await db.query(CLAIM_SQL, [config.batchSize, config.claimLeaseMs, runPerMinute, maxRunning, reserved], 'tickrun_claim');
  return rows.map((r) => ({
    id: r.id,
    leaseToken: r.lease_token,
    leaseEndsAt,
    runId: r.run_id,
    name: r.name,
    index: r.task_index,
    attempt: r.attempt,
    arrayHead: r.array_head,
    workflow: r.workflow,
    params: r.params,
    spec: r.spec,
    dir: r.dir,
  }));
}
