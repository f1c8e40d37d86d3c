import type { TickContext } from '../context';

/**
 * What became of one attempt. Outcomes of a claim (dispatch, reconciliation) carry the claim's
 * `leaseToken`; outcomes of an execution (poll, cancel) carry its `executionName`.
 * - `requeue`: nothing was started (refused by the executor, or the claim ran short): back to `queued`
 *   after `delayMs`, the same attempt number, no attempt spent;
 * - `ambiguous`: the dispatch may have started an execution: the task stays claimed for `delayMs`,
 *   then reconciliation finds out (steps/reap.ts).
 */
export interface AttemptOutcome {
  id: string;
  attempt: number;
  outcome: 'dispatched' | 'running' | 'success' | 'failed' | 'cancelled' | 'requeue' | 'ambiguous';
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

// Every outcome of a batch in one statement. A failed attempt goes back to `queued` with an exponential
// backoff (capped at 10 minutes) while attempts remain and its run still runs; otherwise it is `failed`.
// The guard makes stale outcomes harmless: a claim outcome needs the task still claimed under the same
// lease token, an execution outcome needs the task still in flight on that same execution.
export const RECORD_SQL = `
with u as (
  select * from unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::int[])
    as u(id, attempt, outcome, execution_name, error, lease_token, delay_ms)
), next as (
  select t.id, u.outcome, u.execution_name, u.error, u.delay_ms,
         case when u.outcome = 'failed' and t.attempt < t.max_attempts and r.status = 'running' then 'queued'
              when u.outcome = 'requeue' then 'queued'
              when u.outcome = 'ambiguous' then 'claimed'
              else u.outcome end as status,
         least(t.backoff_ms * power(2, t.attempt - 1), 600000) as backoff_ms
  from u
  join tasks t on t.id = u.id and t.attempt = u.attempt
  join runs r on r.id = t.run_id
  where case when u.lease_token is not null then t.status = 'claimed' and t.lease_token = u.lease_token
             else t.status in ('dispatched', 'running') and t.execution_name = u.execution_name
                  and t.status <> u.outcome end
  for update of t
), recorded as (
update tasks t
set status = n.status,
    attempt = case when n.outcome = 'requeue' then t.attempt - 1 else t.attempt end,
    execution_name = case when n.outcome = 'dispatched' then n.execution_name else t.execution_name end,
    lease_until = case when n.outcome = 'ambiguous' then now() + n.delay_ms * interval '1 millisecond' end,
    lease_token = case when n.outcome = 'ambiguous' then t.lease_token end,
    started_at = case when n.outcome = 'dispatched' then coalesce(t.started_at, now()) else t.started_at end,
    deadline_at = case when n.outcome = 'dispatched' and t.timeout_ms is not null
                       then now() + t.timeout_ms * interval '1 millisecond' else t.deadline_at end,
    next_attempt_at = case when n.outcome = 'requeue' then now() + n.delay_ms * interval '1 millisecond'
                           when n.status = 'queued' then now() + n.backoff_ms * interval '1 millisecond'
                           else t.next_attempt_at end,
    finished_at = case when n.status in ('success', 'failed', 'cancelled') then now() end,
    error = case when n.outcome in ('failed', 'cancelled', 'requeue', 'ambiguous') then n.error
                 when n.outcome = 'success' then null else t.error end,
    updated_at = now()
from next n
where t.id = n.id
returning t.id, t.run_id, t.name, t.status, n.outcome, t.attempt, t.execution_name, t.claimed_at, t.error
), attempts as (
  -- Each attempt's history (the dashboard's timeline): a row when the executor takes it, then its end.
  -- In this statement rather than beside it, so that history costs no round trip of its own.
  insert into task_attempts as a (task_id, run_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error)
  select r.id, r.run_id, r.attempt, r.outcome, r.execution_name, r.claimed_at,
         case when r.outcome = 'dispatched' then now() end,
         case when r.outcome in ('success', 'failed', 'cancelled') then now() end,
         case when r.outcome in ('failed', 'cancelled') then r.error end
  from recorded r
  where r.outcome in ('dispatched', 'running', 'success', 'failed', 'cancelled')
  on conflict (task_id, attempt) do update
  set status = excluded.status,
      execution_name = coalesce(excluded.execution_name, a.execution_name),
      finished_at = excluded.finished_at,
      error = excluded.error
), freed as (
  -- A task out of flight gives its workflow's concurrency slot back. This statement is the only way
  -- out of flight (claimed, dispatched, running), so no slot outlives its task's flight.
  update concurrency_slots s set task_id = null
  from recorded r
  where s.task_id = r.id and r.status not in ('claimed', 'dispatched', 'running')
)
select id, run_id, name, status, outcome from recorded`;

/** Records a batch of attempt outcomes in one statement; returns what each task became. */
export async function recordOutcomes(ctx: TickContext, outcomes: AttemptOutcome[]): Promise<RecordedOutcome[]> {
  if (outcomes.length === 0) return [];
  const { rows } = await ctx.db.query(
    RECORD_SQL,
    [
      outcomes.map((o) => o.id),
      outcomes.map((o) => o.attempt),
      outcomes.map((o) => o.outcome),
      outcomes.map((o) => o.executionName ?? null),
      outcomes.map((o) => o.error ?? null),
      outcomes.map((o) => o.leaseToken ?? null),
      outcomes.map((o) => o.delayMs ?? 0),
    ],
    'tickrun_record',
  );
  return rows.map((r) => ({ id: r.id, runId: r.run_id, name: r.name, status: r.status, outcome: r.outcome }));
}
