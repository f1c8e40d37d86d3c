import { recordInTwo } from '../carry';
import type { TickContext } from '../context';
import { errorText } from '../errors';
import { ON_EXECUTION_STATUSES, RUN_CANCELLED, sqlList, type RunStatus } from '../lifecycle';
import { log } from '../log';
import pLimit from 'p-limit';
import { ExecutorFault, type ExecutionStatus, type TaskEnd } from '../executors/executor';
import type { ExecutorKind } from '../workflows/definition';
import { formatDuration } from '../workflows/duration';
import { LOCAL_REGION, refilledSql, regionRowsSql } from '../regions';
import { LIST_FROM } from '../executors/cloudRunListing';
import { ARRAY_OUTCOMES, recordOutcomes, type AttemptOutcome, type ReadsByRegion, type RecordedOutcome } from './record';
import { endedOutcome, readStatuses, stopAttempts, type StopEnd, type StopRequest } from './stop';
import { countThrottledReads } from './throttle';

// The least recently checked in-flight tasks with what the check needs from their run. Read, not
// marked: the statement that records the checks marks them too (steps/record.ts, outcome `checked`),
// so a check that finds its attempt ended costs no write of its own. Two ticks polling at the same time
// may check the same tasks; recording is guarded, so the second records nothing. The timeout is read as
// float8, which node-postgres returns as a number (bigint comes back as text), exact for any file's duration.
// Cloud Run's read budget (shared/regions.ts) is taken here, before the reads are sent: per region, the
// reads checking these tasks costs (a listing of each job with LIST_FROM of them or more, else a read of
// each execution: executors/cloudRunListing.ts), under the region's row lock, and only while it has a
// token (the newest row, so a tick polling at the same moment finds what this one left). A region
// without one keeps its tasks for the polls after it has come back; its tasks are not even picked while
// its tokens are below one, so the batch goes to the regions that can be read. The record of the checks
// settles what the reads really cost (pages past the first, a read of a job). $3: the tick's read
// requests a minute, for regions without their own.
const readTokens = refilledSql('g.read_tokens', 'g.read_refilled_at', 'coalesce(g.read_per_minute, $3)');
export const IN_FLIGHT_SQL = `
with due as materialized (
  select t.id, t.run_id, t.name, t.task_index, t.attempt, t.status, t.execution_name, t.timeout_ms::float8 as timeout_ms,
         t.deadline_at < now() as timed_out, t.stop_sent_at is not null as stop_sent,
         coalesce(t.stop_asked_at < now() - $2 * interval '1 millisecond', false) as stop_overdue, r.status as run_status, r.workflow,
         r.definition -> 'tasks' -> t.name ->> 'executor' as executor, t.region, t.checked_at, t.array_head is not null as array
  from tasks t
  join runs r on r.id = t.run_id
  -- An array execution is checked through its head alone (shared/arrays.ts); tasks_polled holds no other row of it.
  where t.status in ${sqlList(ON_EXECUTION_STATUSES)} and (t.array_head is null or t.array_head = t.id)
    and not exists (select 1 from regions g where g.region = t.region and ${readTokens} < 1)
  order by t.checked_at nulls first
  limit $1
), cost as (
  select region, sum(case when n >= ${LIST_FROM} then 1 else n end)::int as reads
  from (select d.region, split_part(d.execution_name, '/executions/', 1) as job, count(*) as n
        from due d where d.region <> '${LOCAL_REGION}' group by 1, 2) j
  group by region
), ${regionRowsSql('select region from cost')}, reserved as (
  update regions g
  set read_tokens = ${readTokens} - c.reads, read_refilled_at = now(), read_ceiling = coalesce(g.read_per_minute, $3)
  from cost c join region_rows l on l.region = c.region
  where g.region = c.region and ${readTokens} >= 1
  returning g.region, c.reads
)
select d.id, d.run_id, d.name, d.task_index, d.attempt, d.status, d.execution_name, d.timeout_ms, d.timed_out, d.stop_sent,
       d.stop_overdue, d.run_status, d.workflow, d.executor, d.region, d.array, x.reads as reserved
from due d left join reserved x on x.region = d.region
where x.region is not null or d.region is null or d.region not in (select region from region_rows)
order by d.checked_at nulls first`;

export interface InFlightTask {
  id: string;
  run_id: string;
  name: string;
  task_index: number;
  attempt: number;
  status: (typeof ON_EXECUTION_STATUSES)[number];
  execution_name: string;
  timeout_ms: number | null;
  timed_out: boolean | null;
  /** The executor has accepted to stop the execution: the attempt waits for it to end. */
  stop_sent: boolean;
  /** The stop was first asked longer than the stop timeout ago: the attempt ends without waiting more. */
  stop_overdue: boolean;
  run_status: RunStatus;
  workflow: string;
  executor: ExecutorKind;
  /** `project/region` of a Cloud Run task ('' for a process, null before migration 0009). */
  region: string | null;
  /** The reads taken from its region's read budget for this poll's checks of it (repeated on each of its tasks). */
  reserved: number | null;
  /** The head of an array execution: its outcome is every row's of the execution (shared/arrays.ts). */
  array: boolean;
}

/** The result of one poll: how many executions were checked, what was recorded, what could not be read. */
export interface PollResult {
  checked: number;
  recorded: RecordedOutcome[];
  errors: number;
}

/** Up to `statusBatchSize` in-flight tasks, least recently checked first. */
export async function readInFlight(ctx: TickContext): Promise<InFlightTask[]> {
  const { rows } = await ctx.db.query<InFlightTask>(IN_FLIGHT_SQL, [ctx.config.statusBatchSize, ctx.config.stopTimeoutMs, ctx.config.regions.readPerMinute], 'tickrun_in_flight');
  return rows;
}

/** Reads up to `statusBatchSize` in-flight tasks, then checks them (checkInFlight). */
export async function pollInFlight(ctx: TickContext): Promise<PollResult> {
  return checkInFlight(ctx, await readInFlight(ctx));
}

/**
 * Checks the executions of in-flight tasks read by readInFlight and records every check in one statement. The
 * statuses are read with one `statusMany` per executor kind (Cloud Run lists a job's executions instead
 * of reading them one by one), `statusConcurrency` calls at once. An execution that has ended is recorded
 * as what it was, past its attempt's timeout or not; one still running past its timeout, or of a
 * cancelled run, is asked to stop and stays in flight until it has (steps/stop.ts). A status that cannot
 * be read (an API fault) leaves the task as it is, to be checked again next cycle.
 */
export async function checkInFlight(ctx: TickContext, rows: InFlightTask[]): Promise<PollResult> {
  const { config, executors } = ctx;
  if (rows.length === 0) return { checked: 0, recorded: [], errors: 0 };
  // Every call ends within the tick's budget: what is not read by then is read by the next tick. The
  // checks are recorded together once all are read, or, when some call is slow (a listing held to its
  // deadline), those read within a fifth of a poll interval first and the rest when they are read: a
  // slow call holds back only its own executions.
  // Statuses as they are read, then all of them (some are only known at the end: a fault that failed a
  // whole executor's reads).
  let statuses = new Map<string, ExecutionStatus | Error>();
  const all = readStatuses(executors, rows, config.statusConcurrency, ctx.endBy, (name, status) => statuses.set(name, status)).then((read) => (statuses = read));
  // The reads this poll took from the budgets are settled with the first part recorded.
  let reserved = new Map(rows.filter((t) => t.reserved !== null).map((t) => [t.region!, t.reserved!]));
  const takeReserved = () => {
    const taken = reserved;
    reserved = new Map();
    return taken;
  };
  const parts = await recordInTwo(rows, all, { after: config.pollIntervalMs / 5 }, (t) => statuses.has(t.execution_name), (part) => settleChecks(ctx, part, statuses, takeReserved));
  return { checked: rows.length, recorded: parts.flatMap((p) => p.recorded), errors: parts.reduce((n, p) => n + p.errors, 0) };
}

/** Records what the statuses read say of these tasks (see checkInFlight), in one statement. */
async function settleChecks(ctx: TickContext, rows: InFlightTask[], statuses: Map<string, ExecutionStatus | Error>, takeReserved: () => Map<string, number>): Promise<PollResult> {
  const { config, executors } = ctx;
  if (rows.length === 0) return { checked: 0, recorded: [], errors: 0 };
  let errors = 0;
  const throttled = new Map<ExecutorFault, string>();
  const unread = (task: InFlightTask, err: unknown): AttemptOutcome => {
    errors++;
    if (err instanceof ExecutorFault && err.kind === 'quota') throttled.set(err, task.execution_name);
    log('WARNING', `status of ${task.execution_name} not read: ${errorText(err)}`, { run_id: task.run_id, task_id: task.id });
    return checkedOnly(task);
  };
  const outcomes: AttemptOutcome[] = [];
  const toStop: (StopRequest & { task: InFlightTask })[] = [];
  for (const task of rows) {
    const status = statuses.get(task.execution_name) ?? new Error('the executor returned no status');
    const stop = stopEnd(task);
    if (status instanceof Error) outcomes.push(unread(task, status));
    else if (status.state !== 'running') outcomes.push(endedOutcome(task, status, stop));
    else if (stop) toStop.push({ ...task, end: stop, stopSent: task.stop_sent, stopOverdue: task.stop_overdue, status, task });
    else outcomes.push(task.status === 'dispatched' ? { ...checkedOnly(task), outcome: 'running' } : checkedOnly(task));
  }
  const stopped = await stopAttempts(executors, toStop, { concurrency: config.statusConcurrency, stopTimeoutMs: config.stopTimeoutMs, endBy: ctx.endBy, readTimeoutMs: config.timeouts.read });
  for (const { attempt, error } of stopped.errors) {
    errors++;
    log('WARNING', `${attempt.execution_name} not stopped: ${errorText(error)}`, { run_id: attempt.task.run_id, task_id: attempt.id });
  }
  const all = await withArrayEnds(ctx, rows, statuses, [...outcomes, ...stopped.outcomes], (task, err) => unread(task, err));
  const recorded = await recordOutcomes(ctx.db, all, { byRegion: takeReads(executors, takeReserved()), readPerMinute: config.regions.readPerMinute });
  // A refusal is counted once, however many executions it left unread (a listing's, or the rest of a
  // statusMany after it: cloudRun.ts answers them all with the same fault).
  await countThrottledReads(ctx.db, [...throttled.values()]);
  return { checked: rows.length, recorded, errors };
}

/**
 * The outcomes of array executions' heads made every row's (shared/arrays.ts). One that ended otherwise
 * than all succeeded is told index by index from the executor's task ends (Cloud Run's Tasks API, paged):
 * the only time an array execution costs more reads than one per check. An execution whose tasks cannot
 * be read now is left in flight (`unread`), and its end recorded by a later check.
 */
async function withArrayEnds(
  ctx: TickContext,
  rows: InFlightTask[],
  statuses: Map<string, ExecutionStatus | Error>,
  outcomes: AttemptOutcome[],
  unread: (task: InFlightTask, err: unknown) => AttemptOutcome,
): Promise<AttemptOutcome[]> {
  const heads = new Map(rows.filter((t) => t.array).map((t) => [t.id, t]));
  if (heads.size === 0) return outcomes;
  const limit = pLimit(ctx.config.statusConcurrency);
  return Promise.all(outcomes.map((o) => {
    const head = heads.get(o.id);
    if (!head || !ARRAY_OUTCOMES.has(o.outcome)) return o;
    const status = statuses.get(head.execution_name);
    // Read only when Cloud Run says how it ended: an attempt ended without that (a stop overdue, an
    // execution gone) ends every row alike.
    const ended = status && !(status instanceof Error) && (status.state === 'failed' || status.state === 'cancelled') && !o.final;
    const taskEnds = ctx.executors[head.executor].taskEnds;
    if (!ended || !taskEnds) return { ...o, array: {} };
    return limit(async () => {
      try {
        const ends = await taskEnds(head.execution_name, ctx.endBy);
        return { ...o, array: arrayEnds(ends, o) };
      } catch (err) {
        return unread(head, err);
      }
    });
  }));
}


/**
 * How an ended array execution's Cloud Run tasks ended, by position: those that did not succeed, and a
 * success for the rest of the `listed`. A cancelled task ends as the head's outcome says (the stop's end
 * when tickrun stopped it: a timeout, a cancelled run). A task that did not end in an ended execution
 * never ran to its end: a failed attempt, retried as any.
 */
function arrayEnds(ends: Map<number, TaskEnd>, head: AttemptOutcome): NonNullable<AttemptOutcome['array']> {
  const others: NonNullable<NonNullable<AttemptOutcome['array']>['others']> = {};
  const stopped = { outcome: head.outcome as 'failed' | 'cancelled', error: head.error };
  for (const [position, end] of ends) {
    if (end.state === 'cancelled') others[position] = stopped;
    else if (end.state !== 'success') others[position] = { outcome: 'failed', error: end.error };
  }
  return { others, rest: 'success', listed: ends.size };
}

/** The read requests every executor sent since they were last taken, per region, beside those `reserved` beforehand. */
function takeReads(executors: TickContext['executors'], reserved: Map<string, number>): ReadsByRegion {
  const byRegion: ReadsByRegion = new Map([...reserved].map(([region, n]) => [region, { made: 0, reserved: n }]));
  for (const executor of Object.values(executors)) {
    for (const [region, n] of executor.takeReads?.() ?? []) {
      const reads = byRegion.get(region) ?? { made: 0, reserved: 0 };
      byRegion.set(region, { ...reads, made: reads.made + n });
    }
  }
  return byRegion;
}

/** Why poll stops an attempt, as the end it will have: its run was cancelled, or it ran past its timeout. */
function stopEnd(task: InFlightTask): StopEnd | undefined {
  if (task.run_status === 'cancelled') return { outcome: 'cancelled', error: RUN_CANCELLED };
  if (task.timed_out) return { outcome: 'failed', error: `timed out after ${formatDuration(task.timeout_ms!)}` };
  return undefined;
}

/** A check that changed nothing (or could not read the status): the task only goes to the back of the order. */
function checkedOnly(task: InFlightTask): AttemptOutcome {
  return { id: task.id, attempt: task.attempt, executionName: task.execution_name, outcome: 'checked' };
}
