import type { Db } from '../db';
import { burstSql, LOCAL_REGION, refilledSql, regionRowsSql } from '../regions';
import { ATTEMPT_END_STATUSES, IN_FLIGHT_STATUSES, ON_EXECUTION_STATUSES, retryAllowed, retryDelaySql, RUN_CANCELLED, sqlList, type TaskStatus } from '../lifecycle';

/**
 * What became of one attempt. Outcomes of a claim (dispatch, reconciliation) carry the claim's
 * `leaseToken`; outcomes of an execution (poll, cancel) carry its `executionName`.
 * - `requeue`: nothing was started (refused by the executor, or the claim ran short): back to `queued`
 *   after `delayMs`, the same attempt number, no attempt spent; `cancelled` if its run no longer runs;
 * - `ambiguous`: the dispatch may have started an execution: the task stays claimed for `delayMs`,
 *   then reconciliation finds out (steps/reap.ts);
 * - `checked`: a status check that changed nothing (or could not read the status): only `checked_at`
 *   moves, so the next poll takes the tasks checked longest ago first;
 * - `stopping`: the execution was asked to stop: the attempt stays in flight until a check sees the
 *   execution ended. The first asking is kept (`stop_asked_at`: a stop ends within the stop timeout of
 *   it), and with `stopSent` the executor's acceptance (`stop_sent_at`), after which it is not sent again.
 */
export interface AttemptOutcome {
  id: string;
  attempt: number;
  outcome: 'dispatched' | 'running' | 'success' | 'failed' | 'cancelled' | 'requeue' | 'ambiguous' | 'checked' | 'stopping';
  leaseToken?: string;
  executionName?: string;
  error?: string;
  delayMs?: number;
  stopSent?: boolean;
  /** A `failed` that no retry may follow: a refusal no retry cures, or an execution whose outcome is unknown. */
  final?: boolean;
  /**
   * On an array execution's head (shared/arrays.ts): the outcome is every row's on that execution, except
   * that when its Cloud Run tasks were listed (`listed` of them, each row's at its position), the rows
   * whose task is in `others` end as it says and the rest as `rest`.
   */
  array?: { others?: Record<number, { outcome: 'success' | 'failed' | 'cancelled'; error?: string }>; rest?: 'success'; listed?: number };
  /** A `failed` because the execution was found cancelled with no stop asked: `cancelled` if its run is cancelled by now. */
  cancelledExecution?: boolean;
}

/**
 * The outcomes of an array execution's head that are every row's (`array`): its start (dispatched to
 * running) and its ends. A check that changed nothing, or a stop asked, is the head's alone.
 */
export const ARRAY_OUTCOMES: ReadonlySet<AttemptOutcome['outcome']> = new Set(['running', 'success', 'failed', 'cancelled']);

/** The status each recorded task ended in. */
export interface RecordedOutcome {
  id: string;
  runId: string;
  name: string;
  status: TaskStatus;
  outcome: AttemptOutcome['outcome'];
}

// Every outcome of a batch in one statement. A failed attempt is retried (`queued` after its backoff)
// while the retry rule allows, else it is `failed`. The guard in the UPDATE's WHERE, which Postgres
// re-checks on the newest version of a row changed meanwhile, makes stale outcomes harmless: a claim
// outcome needs the same lease token, an execution outcome the task still on that execution.
// Execution outcomes (poll, cancel) lock their tasks first, in id order: two ticks, or a tick and
// `cancel`, may record the same executions at once, and rows locked in two batch orders deadlock.
// Claim outcomes are one tick's under their lease token and skip that pass (docs/performance.md, row 9).
const retried = `u.outcome = 'failed' and not u.final and ${retryAllowed('t', 'r')}`;

const givenBackToEndedRun = `b.outcome = 'requeue' and g.run_status <> 'running'`;
// An execution found cancelled with no stop asked, as its poll saw it, while its run is cancelled now: the
// run's cancel stopped it after the poll had read the run still running (operator/cancel.ts), so the
// attempt ends cancelled with its run, as one the poll had stopped would.
const cancelledWithRun = `b.outcome = 'failed' and b.cancelled_execution and g.run_status = 'cancelled'`;

export const RECORD_SQL = `
with given as (
  -- The batch as one JSON array of AttemptOutcome, serialised natively.
  select id, attempt, outcome, "executionName" as execution_name, error, "leaseToken" as lease_token,
         coalesce("delayMs", 0) as delay_ms, coalesce("stopSent", false) as stop_sent, coalesce("final", false) as final, "array" as array_ends,
         coalesce("cancelledExecution", false) as cancelled_execution
  from jsonb_to_recordset($1::jsonb)
    as j(id uuid, attempt int, outcome text, "executionName" text, error text, "leaseToken" uuid, "delayMs" int, "stopSent" boolean, "final" boolean, "array" jsonb, "cancelledExecution" boolean)
), batch as (
  select id, attempt, outcome, execution_name, error, lease_token, delay_ms, stop_sent, final, cancelled_execution from given where array_ends is null
  union all
  -- An array execution's outcome, given on its head, is each of its rows' (shared/arrays.ts): the row at
  -- position p in the execution (its indexes in order, TICKRUN_TASK_INDEXES) ran as Cloud Run task p.
  -- Rows take the rest's outcome only when Cloud Run listed a task for every one of them.
  select m.id, m.attempt,
         coalesce(g.array_ends -> 'others' -> m.pos ->> 'outcome',
                  case when (g.array_ends ->> 'listed')::int = m.total then g.array_ends ->> 'rest' end, g.outcome),
         g.execution_name,
         case when g.array_ends -> 'others' ? m.pos then g.array_ends -> 'others' -> m.pos ->> 'error'
              when (g.array_ends ->> 'listed')::int = m.total then null else g.error end,
         null, 0, false, g.final, g.cancelled_execution
  from given g
  cross join lateral (
    select t.id, t.attempt, (row_number() over (order by t.task_index) - 1)::text as pos, count(*) over () as total
    from tasks t
    where t.array_head = g.id and t.execution_name = g.execution_name and t.status in ${sqlList(ON_EXECUTION_STATUSES)}
  ) m
  where g.array_ends is not null
), given_back as materialized (
  -- A claim given back (requeue) is queued again only while its run runs. The run's newest status is read
  -- under a share lock: a cancel committed meanwhile is seen, and one not yet begun waits for this
  -- statement, then finds the task queued (operator/cancel.ts). So is the run of an execution found
  -- cancelled (cancelledWithRun).
  select t.id, r.status as run_status from tasks t join runs r on r.id = t.run_id
  where t.id = any (array(select id from batch where outcome = 'requeue' or cancelled_execution))
  for share of r
), u as (
  -- Given back in a run no longer running, a claim ends cancelled with its run, as any attempt does.
  select b.id, b.attempt, b.execution_name, b.lease_token, b.delay_ms, b.stop_sent, b.final,
         case when ${givenBackToEndedRun} or ${cancelledWithRun} then 'cancelled' else b.outcome end as outcome,
         case when ${givenBackToEndedRun} or ${cancelledWithRun} then '${RUN_CANCELLED}' else b.error end as error
  from batch b left join given_back g on g.id = b.id
), locked as materialized (
  -- Only tasks still on the outcome's execution: a stale outcome locks nothing, so it never waits on
  -- the tick that claimed the task again. One join condition, so no plan reads every task in flight
  -- (test/integration/record.test.ts).
  select t.id from tasks t
  join u on u.id = t.id
        and case when t.status in ${sqlList(ON_EXECUTION_STATUSES)} then t.execution_name end = u.execution_name
  where t.id = any (array(select id from u where lease_token is null))
  order by t.id
  for no key update of t
), recorded as (
update tasks t
set status = case when u.outcome in ('checked', 'stopping') then t.status
                  when ${retried} then 'queued'
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
                           when ${retried} then now() + ${retryDelaySql('t')}
                           else t.next_attempt_at end,
    finished_at = case when u.outcome in ('success', 'cancelled')
                         or (u.outcome = 'failed' and (u.final or not ${retryAllowed('t', 'r')}))
                       then now() end,
    error = case when u.outcome in ('failed', 'cancelled', 'requeue', 'ambiguous') then u.error
                 when u.outcome = 'success' then null else t.error end,
    -- A stop is kept while the attempt is in flight, and ends with it.
    stop_asked_at = case when u.outcome = 'stopping' then coalesce(t.stop_asked_at, now())
                         when u.outcome in ('checked', 'running') then t.stop_asked_at end,
    stop_sent_at = case when u.outcome = 'stopping' and u.stop_sent then coalesce(t.stop_sent_at, now())
                        when u.outcome in ('checked', 'running', 'stopping') then t.stop_sent_at end,
    checked_at = case when u.outcome in ('checked', 'running', 'stopping') then now() else t.checked_at end,
    updated_at = case when u.outcome = 'checked' then t.updated_at else now() end
from u, runs r
-- t.id = any(…): an index condition, so the batch's rows are read by key; the array is built, and so
-- every lock of locked taken, before the first row changes.
where t.id = any (array(select id from u where lease_token is not null union all select id from locked))
  and t.id = u.id and t.attempt = u.attempt and r.id = t.run_id
  and case when u.lease_token is not null then t.status = 'claimed' and t.lease_token = u.lease_token
           else t.status in ${sqlList(ON_EXECUTION_STATUSES)} and t.execution_name = u.execution_name
                and t.status <> u.outcome end
returning t.id, t.run_id, t.name, t.status, u.outcome, t.attempt, t.claimed_at, t.error, t.region, t.array_head,
          -- An outcome of a claim ended an attempt that never had an execution: the task's execution
          -- and send time are still those of an earlier attempt.
          case when u.lease_token is null then t.execution_name end as attempt_execution,
          case when u.lease_token is null then t.dispatched_at end as attempt_dispatched_at
), attempts as (
  -- Each ended attempt's history row (the attempt in flight is read from its task), in this statement
  -- so that history costs no round trip of its own.
  insert into task_attempts (task_id, run_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error)
  select r.id, r.run_id, r.attempt, r.outcome, r.attempt_execution, r.claimed_at, r.attempt_dispatched_at, now(),
         case when r.outcome <> 'success' then r.error end
  from recorded r
  where r.outcome in ${sqlList(ATTEMPT_END_STATUSES)}
  -- Never twice (the guard lets one outcome end an attempt), but a history row must not fail the record.
  on conflict (task_id, attempt) do nothing
), freed as (
  -- A task out of flight gives its workflow's concurrency slot back. This statement is the only way
  -- out of flight, so no slot outlives its task's flight.
  update concurrency_slots s set task_id = null
  from recorded r
  where s.task_id = r.id and r.status not in ${sqlList(IN_FLIGHT_STATUSES)}
), regions_changed as (
  -- Per region: its Cloud Run tasks that left flight, which leave its count against the cap (the claim
  -- added them: steps/claim.ts), and the reads the checks made ($2: {"project/region": {made, reserved}}),
  -- of which the poll took 'reserved' from the read budget before sending them (steps/poll.ts): the
  -- difference is paid or given back here ($3: the tick's read requests a minute, for regions without
  -- their own).
  select region, sum(left_flight)::int as left_flight, sum(made)::int as made, sum(reserved)::int as reserved
  from (
    -- An array execution is one place under the cap, left with its head, with which every row of it leaves.
    select r.region, 1 as left_flight, 0 as made, 0 as reserved from recorded r
    where r.region <> '${LOCAL_REGION}' and r.status not in ${sqlList(IN_FLIGHT_STATUSES)} and (r.array_head is null or r.array_head = r.id)
    union all
    select key, 0, coalesce((value ->> 'made')::int, 0), coalesce((value ->> 'reserved')::int, 0) from jsonb_each($2::jsonb)
  ) x
  group by region
), ${regionRowsSql('select region from regions_changed')}, region_updated as (
  update regions g
  set running = greatest(0, g.running - c.left_flight),
      read_tokens = case when c.made = 0 and c.reserved = 0 then g.read_tokens
                         else least(${burstSql('coalesce(g.read_per_minute, $3)')},
                                    ${refilledSql('g.read_tokens', 'g.read_refilled_at', 'coalesce(g.read_per_minute, $3)')} - (c.made - c.reserved)) end,
      read_refilled_at = case when c.made = 0 and c.reserved = 0 then g.read_refilled_at else now() end,
      read_ceiling = case when c.made = 0 and c.reserved = 0 then g.read_ceiling else coalesce(g.read_per_minute, $3) end
  from regions_changed c join region_rows l on l.region = c.region
  where g.region = c.region
  returning g.region
), read_counted as (
  -- After region_updated (it reads its rows): a region's row is always locked before its usage row, in
  -- the order the claim takes them, or two statements could each hold one and wait for the other.
  insert into region_usage (region, minute, read_calls)
  select c.region, date_trunc('minute', now()), c.made from regions_changed c
  where c.made > 0 and c.region in (select region from region_updated)
  on conflict (region, minute) do update set read_calls = region_usage.read_calls + excluded.read_calls
)
select id, run_id, name, status, outcome from recorded where outcome <> 'checked'`;

/** The read requests sent per region since they were last paid: all of them, and those the poll took from its budget before sending. */
export type ReadsByRegion = Map<string, { made: number; reserved: number }>;

/**
 * Records a batch of attempt outcomes in one statement; returns what each task became. `reads`: the read
 * requests the checks of the batch sent per region, settled with each region's read budget in the same
 * statement (`readPerMinute`: the tick's setting, for regions without their own).
 */
export async function recordOutcomes(db: Db, outcomes: AttemptOutcome[], reads?: { byRegion: ReadsByRegion; readPerMinute: number }): Promise<RecordedOutcome[]> {
  if (outcomes.length === 0) return [];
  const settled = JSON.stringify(Object.fromEntries(reads?.byRegion ?? []));
  const { rows } = await db.query(RECORD_SQL, [JSON.stringify(outcomes), settled, reads?.readPerMinute ?? 1], 'tickrun_record');
  return rows.map((r) => ({ id: r.id, runId: r.run_id, name: r.name, status: r.status, outcome: r.outcome }));
}
