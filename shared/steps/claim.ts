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

// One statement: lock the oldest ready tasks (skipping rows other ticks hold), move them to `claimed`
// with a lease and the next attempt number, and return them joined with their run's pinned workflow.
// The status changes before any API call, so no other tick can start the same attempt.
export const CLAIM_SQL = `
with ready as (
  select id from tasks
  where status = 'queued' and next_attempt_at <= now()
  order by next_attempt_at
  limit $1
  for update skip locked
)
update tasks t
set status = 'claimed', attempt = t.attempt + 1, lease_until = now() + $2 * interval '1 millisecond',
    lease_token = gen_random_uuid(), claimed_at = now(), updated_at = now()
from ready, runs r
where t.id = ready.id and r.id = t.run_id
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
