import type { TickContext } from '../context';

/**
 * What became of one attempt. Outcomes of a claim (dispatch, reconciliation) carry the claim's
 * `leaseToken`; outcomes of an execution (poll, cancel) carry its `executionName`.
 * - `requeue`: nothing was started (refused by the executor, or the claim ran short): back to `queued`
 *   after `delayMs`, the same attempt number, no attempt spent;
 * - `ambiguous`: the dispatch may have started an execution: the task stays claimed for `delayMs`,
 *   then reconciliation finds out (steps/reap.ts);
 * - `checked`: a status check that changed nothing (or could not read the status): only `checked_at`
 *   moves, so the next poll takes the tasks checked longest ago first.
 */
export interface AttemptOutcome {
  id: string;
  attempt: number;
  outcome: 'dispatched' | 'running' | 'success' | 'failed' | 'cancelled' | 'requeue' | 'ambiguous' | 'checked';
  leaseToken?: string;
  executionName?: string;
  error?: string;
  delayMs?: number;
}

/** The status each recorded task ended in. */
export interface RecordedOutcome {
  id: string;
  runId: string;
  name: string;
  status: string;
  outcome: AttemptOutcome['outcome'];
}

// Every outcome of a batch in one statement. A failed attempt is retried (`queued` again after an
// exponential backoff, capped at 10 minutes) while attempts remain and its run still runs; otherwise it
// is `failed`. That condition is spelled out where status, next_attempt_at and finished_at need it.
// The guard makes stale outcomes harmless: a claim outcome needs the task still claimed under the same
// lease token, an execution outcome needs the task still in flight on that same execution. It sits in
// the UPDATE's own WHERE, which Postgres checks again on the newest version of a row another tick
// changed meanwhile.
// The tasks of execution outcomes are locked first, in id order. Two statements record the same
// executions at once whenever two ticks check the same tasks (the poll reads them without a lock), or a
// tick and `cancel` stop the same run; an UPDATE locks rows in whatever order its plan reads them, the
// batch's own order when the batch is read first, so two batches in different orders each held a row
// the other waited for, and one failed with a deadlock. Claim outcomes are not locked first: a claim is
// one tick's under its lease token, and the lock pass writes every tuple twice (docs/performance.md).
export const RECORD_SQL = `
with u as (
  -- The batch as one JSON array of AttemptOutcome: serialised natively, where seven array parameters
  -- were built and quoted element by element in JavaScript.
  select id, attempt, outcome, "executionName" as execution_name, error, "leaseToken" as lease_token,
         coalesce("delayMs", 0) as delay_ms
  from jsonb_to_recordset($1::jsonb)
    as j(id uuid, attempt int, outcome text, "executionName" text, error text, "leaseToken" uuid, "delayMs" int)
), locked as materialized (
  -- Only tasks still on the outcome's execution: a stale outcome locks nothing, so it never waits on
  -- the tick that claimed the task again for a retry. The check is one condition of the join: as a
  -- condition on the status alone, it let the planner read every task in flight through
  -- tasks_in_flight when statistics said few were (test/integration/record.test.ts).
  select t.id from tasks t
  join u on u.id = t.id
        and case when t.status in ('dispatched', 'running') then t.execution_name end = u.execution_name
  where t.id = any (array(select id from u where lease_token is null))
  order by t.id
  for no key update of t
), recorded as (
update tasks t
set status = case when u.outcome = 'checked' then t.status
                  when u.outcome = 'failed' and t.attempt < t.max_attempts and r.status = 'running' then 'queued'
                  when u.outcome = 'requeue' then 'queued'
                  when u.outcome = 'ambiguous' then 'claimed'
                  else u.outcome end,
    attempt = case when u.outcome = 'requeue' then t.attempt - 1 else t.attempt end,
    execution_name = case when u.outcome = 'dispatched' then u.execution_name else t.execution_name end,
    lease_until = case when u.outcome = 'ambiguous' then now() + u.delay_ms * interval '1 millisecond' end,
    lease_token = case when u.outcome = 'ambiguous' then t.lease_token end,
    started_at = case when u.outcome = 'dispatched' then coalesce(t.started_at, now()) else t.started_at end,
    dispatched_at = case when u.outcome = 'dispatched' then now() else t.dispatched_at end,
    deadline_at = case when u.outcome = 'dispatched' and t.timeout_ms is not null
                       then now() + t.timeout_ms * interval '1 millisecond' else t.deadline_at end,
    next_attempt_at = case when u.outcome = 'requeue' then now() + u.delay_ms * interval '1 millisecond'
                           when u.outcome = 'failed' and t.attempt < t.max_attempts and r.status = 'running'
                           then now() + least(t.backoff_ms * power(2, t.attempt - 1), 600000) * interval '1 millisecond'
                           else t.next_attempt_at end,
    finished_at = case when u.outcome in ('success', 'cancelled')
                         or (u.outcome = 'failed' and not (t.attempt < t.max_attempts and r.status = 'running'))
                       then now() end,
    error = case when u.outcome in ('failed', 'cancelled', 'requeue', 'ambiguous') then u.error
                 when u.outcome = 'success' then null else t.error end,
    checked_at = case when u.outcome in ('checked', 'running') then now() else t.checked_at end,
    updated_at = case when u.outcome = 'checked' then t.updated_at else now() end
from u, runs r
-- t.id = any(…) as well: an index condition the planner sees, so it reads the batch's rows by key
-- rather than joining the batch with every row of tasks. The array is built, and so every lock of
-- locked taken, before the first row changes.
where t.id = any (array(select id from u where lease_token is not null union all select id from locked))
  and t.id = u.id and t.attempt = u.attempt and r.id = t.run_id
  and case when u.lease_token is not null then t.status = 'claimed' and t.lease_token = u.lease_token
           else t.status in ('dispatched', 'running') and t.execution_name = u.execution_name
                and t.status <> u.outcome end
returning t.id, t.run_id, t.name, t.status, u.outcome, t.attempt, t.claimed_at, t.error,
          -- An outcome of a claim ended an attempt that never had an execution: the task's execution
          -- and send time are still those of an earlier attempt.
          case when u.lease_token is null then t.execution_name end as attempt_execution,
          case when u.lease_token is null then t.dispatched_at end as attempt_dispatched_at
), attempts as (
  -- Each ended attempt's history row (the dashboard's timeline; the attempt in flight is read from its
  -- task). In this statement rather than beside it, so that history costs no round trip of its own.
  insert into task_attempts (task_id, run_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error)
  select r.id, r.run_id, r.attempt, r.outcome, r.attempt_execution, r.claimed_at, r.attempt_dispatched_at, now(),
         case when r.outcome in ('failed', 'cancelled') then r.error end
  from recorded r
  where r.outcome in ('success', 'failed', 'cancelled')
  -- Never twice (the guard lets one outcome end an attempt), but a history row must not fail the record.
  on conflict (task_id, attempt) do nothing
), freed as (
  -- A task out of flight gives its workflow's concurrency slot back. This statement is the only way
  -- out of flight (claimed, dispatched, running), so no slot outlives its task's flight.
  update concurrency_slots s set task_id = null
  from recorded r
  where s.task_id = r.id and r.status not in ('claimed', 'dispatched', 'running')
)
select id, run_id, name, status, outcome from recorded where outcome <> 'checked'`;

/** Records a batch of attempt outcomes in one statement; returns what each task became. */
export async function recordOutcomes(ctx: TickContext, outcomes: AttemptOutcome[]): Promise<RecordedOutcome[]> {
  if (outcomes.length === 0) return [];
  const { rows } = await ctx.db.query(
    RECORD_SQL,
    [JSON.stringify(outcomes)],
    'tickrun_record',
  );
  return rows.map((r) => ({ id: r.id, runId: r.run_id, name: r.name, status: r.status, outcome: r.outcome }));
}
