import type { TickContext } from '../context';

/** What became of one attempt, as the dispatch and poll steps saw it. */
export interface AttemptOutcome {
  id: string;
  attempt: number;
  outcome: 'dispatched' | 'running' | 'success' | 'failed' | 'cancelled';
  executionName?: string;
  error?: string;
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
// The attempt number and the prior statuses guard against a stale outcome: a result for an attempt that
// was already settled or taken back changes nothing.
export const RECORD_SQL = `
with u as (
  select * from unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[])
    as u(id, attempt, outcome, execution_name, error)
), next as (
  select t.id, u.outcome, u.execution_name, u.error,
         case when u.outcome = 'failed' and t.attempt < t.max_attempts and r.status = 'running' then 'queued'
              else u.outcome end as status,
         least(t.backoff_ms * power(2, t.attempt - 1), 600000) as backoff_ms
  from u
  join tasks t on t.id = u.id and t.attempt = u.attempt
  join runs r on r.id = t.run_id
  where t.status in ('claimed', 'dispatched', 'running') and t.status <> u.outcome
  for update of t
)
update tasks t
set status = n.status,
    execution_name = coalesce(n.execution_name, t.execution_name),
    lease_until = null,
    started_at = case when n.outcome = 'dispatched' then coalesce(t.started_at, now()) else t.started_at end,
    deadline_at = case when n.outcome = 'dispatched' and t.timeout_ms is not null
                       then now() + t.timeout_ms * interval '1 millisecond' else t.deadline_at end,
    next_attempt_at = case when n.status = 'queued' then now() + n.backoff_ms * interval '1 millisecond'
                           else t.next_attempt_at end,
    finished_at = case when n.status in ('success', 'failed', 'cancelled') then now() end,
    error = case when n.outcome in ('failed', 'cancelled') then n.error
                 when n.outcome = 'success' then null else t.error end,
    updated_at = now()
from next n
where t.id = n.id
returning t.id, t.run_id, t.name, t.status, n.outcome`;

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
    ],
    'tickrun_record',
  );
  return rows.map((r) => ({ id: r.id, runId: r.run_id, name: r.name, status: r.status, outcome: r.outcome }));
}
