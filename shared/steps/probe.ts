import type { TickContext } from '../context';

// Whether any step of the cycle has work, one probe per step, each reading only its own partial index
// (or its own statement's condition), so the answer costs a few index lookups however large the tables:
// - schedule: a slot that has come (workflows_due, against the tick's clock, as DUE_SQL reads it);
// - expand: a pending run (runs_unfinished);
// - reap: a claim whose lease ran out (tasks_unfinished);
// - claim: a ready task, of an unlimited workflow (tasks_ready) or a limited one (tasks_ready_limited);
// - poll: a task in flight (tasks_in_flight);
// - advance: a waiting task (tasks_unfinished);
// - complete: a running run with no unfinished task left (COMPLETE_SQL's own condition).
// A probe may say yes when its step then finds nothing (a ready task of a workflow with no free slot):
// the cycle runs as usual. It never says no when a step has work: skipping the steps then loses nothing.
// A step that learns a new kind of work needs its probe here too, or an idle-looking cycle would skip it.
export const PROBE_SQL = `
select exists (select 1 from workflows where next_slot_at <= $1 and not paused)
    or exists (select 1 from runs where status = 'pending')
    or exists (select 1 from tasks where status = 'claimed' and lease_until < now())
    or exists (select 1 from tasks where status = 'queued' and not limited and next_attempt_at <= now())
    or exists (select 1 from tasks where status = 'queued' and limited and next_attempt_at <= now())
    or exists (select 1 from tasks where status in ('dispatched', 'running'))
    or exists (select 1 from tasks where status = 'waiting')
    or exists (select 1 from runs r
               where r.status = 'running'
                 and not exists (select 1 from tasks t where t.run_id = r.id
                                 and t.status in ('waiting', 'queued', 'claimed', 'dispatched', 'running')))
    as has_work`;

/**
 * Says whether this cycle has anything to do, in one round trip: an idle cycle (nothing due, pending,
 * expired, ready, in flight, waiting or left to complete) then ends after it instead of making every
 * step's round trip to find nothing.
 */
export async function probeForWork(ctx: TickContext): Promise<boolean> {
  const { rows } = await ctx.db.query<{ has_work: boolean }>(PROBE_SQL, [ctx.clock()], 'tickrun_probe');
  return rows[0].has_work;
}
