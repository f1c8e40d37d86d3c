import type { TickContext } from '../context';
import type { TaskSpec } from '../workflows/definition';

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
  workflow: string;
  params: Record<string, string>;
  spec: TaskSpec;
  dir: string;
}

// One statement claims both kinds of ready task and moves them to `claimed` with a lease, the next attempt
// number and a token, before any API call, so no other tick can start the same attempt:
// - tasks of workflows without a limit: the oldest ready, from their own index, skipping rows other
//   ticks hold;
// - tasks of limited workflows: first the free concurrency slots (FOR UPDATE SKIP LOCKED, so two ticks
//   never take the same slot, and a slot another tick just filled fails the re-check of
//   `task_id is null`), then, per workflow, as many of its ready tasks as it has free slots, oldest run
//   first. Rows over the limit are never read, and a slot is held until the task leaves flight
//   (steps/record.ts frees it).
// A task is claimed only while its run runs: a cancelled run starts nothing (and no statement leaves a
// task queued in an ended run: operator/cancel.ts, steps/record.ts). A scalar subquery, not a join: it
// filters the ready index read row by row by the run's key, so the claim still stops at its batch in
// index order instead of hashing every ready task against the runs (test/integration/explain.test.ts).
const ofRunningRun = (t: string) => `(select r.status from runs r where r.id = ${t}.run_id) = 'running'`;

export const CLAIM_SQL = `
with open_slots as (
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
  select p.id, p.workflow, row_number() over (partition by p.workflow order by p.run_created_at, p.id) as n
  from wanted w
  cross join lateral (
    select t.id, t.workflow, t.run_created_at from tasks t
    where t.workflow = w.workflow and t.status = 'queued' and t.limited and t.next_attempt_at <= now()
      and ${ofRunningRun('t')}
    order by t.run_created_at, t.id
    limit w.k
    for update skip locked
  ) p
), taken as (
  update concurrency_slots s set task_id = p.id
  from picked p join free f on f.workflow = p.workflow and f.n = p.n
  where s.workflow = f.workflow and s.slot = f.slot
  returning s.task_id as id
), ready as (
  select id from tasks t
  where status = 'queued' and not limited and next_attempt_at <= now() and ${ofRunningRun('t')}
  order by next_attempt_at
  limit $1
  for update skip locked
)
update tasks t
set status = 'claimed', attempt = t.attempt + 1, lease_until = now() + $2 * interval '1 millisecond',
    lease_token = gen_random_uuid(), claimed_at = now(), updated_at = now()
from (select id from ready union all select id from taken) c, runs r
where t.id = c.id and r.id = t.run_id
returning t.id, t.lease_token, t.run_id, t.name, t.task_index, t.attempt, r.workflow, r.params,
          r.definition -> 'tasks' -> t.name as spec, r.definition ->> 'dir' as dir`;

/** Claims up to one batch of ready tasks with their workflow, in one JOIN. */
export async function claimReadyTasks(ctx: TickContext): Promise<ClaimedTask[]> {
  const { db, config } = ctx;
  // Read before the statement is sent, so the local view of the lease never outlasts the database's.
  const leaseEndsAt = performance.now() + config.claimLeaseMs;
  const { rows } = await db.query(CLAIM_SQL, [config.batchSize, config.claimLeaseMs], 'tickrun_claim');
  return rows.map((r) => ({
    id: r.id,
    leaseToken: r.lease_token,
    leaseEndsAt,
    runId: r.run_id,
    name: r.name,
    index: r.task_index,
    attempt: r.attempt,
    workflow: r.workflow,
    params: r.params,
    spec: r.spec,
    dir: r.dir,
  }));
}
