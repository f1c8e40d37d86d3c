import type { TickContext } from '../context';
import { ON_EXECUTION_STATUSES, sqlList, UNFINISHED_TASK_STATUSES } from '../lifecycle';
import { budgetRefillMsSql, LOCAL_REGION } from '../regions';
import { checkSchemaVersion } from '../schemaVersion';

/** SQLSTATE undefined_table. */
const UNDEFINED_TABLE = '42P01';

// Which steps of the cycle have work, one probe per step, each the first row of its step's own index (or
// its statement's own condition): a few index lookups however large the tables.
// - due (schedule): a slot that has come (workflows_due, against the tick's clock, as DUE_SQL reads it);
// - pending (expand): a pending run (runs_status_latest);
// - expired (reap): a claim whose lease ran out, read as the time to the soonest lease's end, which the
//   tick also wakes for (tasks_unfinished: the claims, a batch or two per tick);
// - ready (claim): a ready task, of an unlimited workflow (tasks_ready) or a limited one (tasks_ready_limited);
//   and the time until the next unlimited one comes due (a task given back after a fault, a retry's
//   backoff), which the tick wakes for too (tasks_ready); and, for the regions with queued tasks whose
//   last claim spent their run budget, when it has refilled (shared/regions.ts), which it wakes for as
//   well (tasks_ready_fair);
// - in_flight (poll): a task in flight (tasks_in_flight);
// - waiting (advance): a waiting task (tasks_unfinished);
// - completable (complete): a running run with no unfinished task left (COMPLETE_SQL's own condition,
//   in the same form).
// Each is a scalar subquery ordered as its index is, with a LIMIT: as EXISTS, the planner may scan the
// table instead and read every older row before the first match (test/integration/complete.test.ts).
// A probe may say yes when its step then finds nothing, never no when it has work: a step that learns
// a new kind of work needs its probe here too, or a cycle would skip it.
// The schema's version comes first, in the same round trip: a tick that does not fit the schema stops
// before any step (schemaVersion.ts).
export const PROBE_SQL = `
select (select version from tickrun_schema) as schema_version, (select oldest_tick from tickrun_schema) as oldest_tick,
       exists (select 1 from workflows where next_slot_at <= $1 and not paused) as due,
       (select 1 from runs where status = 'pending' order by status, created_at desc, id desc limit 1) is not null as pending,
       (select (extract(epoch from min(lease_until) - now()) * 1000)::float8 from tasks where status = 'claimed') as next_lease_end_ms,
       (select (extract(epoch from next_attempt_at - now()) * 1000)::float8 from tasks
        where status = 'queued' and not limited and next_attempt_at > now() order by next_attempt_at limit 1) as next_ready_ms,
       (select 1 from tasks where status = 'queued' and not limited and next_attempt_at <= now()
        order by next_attempt_at limit 1) is not null
         or (select 1 from tasks where status = 'queued' and limited and next_attempt_at <= now()
             order by workflow, run_created_at, id limit 1) is not null as ready,
       (select 1 from tasks where status in ${sqlList(ON_EXECUTION_STATUSES)} order by checked_at nulls first limit 1) is not null
         as in_flight,
       (select min(${budgetRefillMsSql('g')})::float8 from regions g
        where g.region <> '${LOCAL_REGION}' and g.refilled_at is not null and g.run_tokens < 1
          and (select 1 from tasks t where t.region = g.region and t.status = 'queued' order by t.region, t.fair_key limit 1) is not null)
         as budget_refill_ms,
       (select 1 from tasks where status = 'waiting' order by status, run_id limit 1) is not null as waiting,
       exists (select 1 from runs r
               where r.status = 'running'
                 and (select t.id from tasks t where t.run_id = r.id
                        and t.status in ${sqlList(UNFINISHED_TASK_STATUSES)}
                      order by t.run_id, t.status limit 1) is null)
         as completable`;

/** Which steps have work as a cycle begins (see PROBE_SQL). */
export interface Work {
  due: boolean;
  pending: boolean;
  expired: boolean;
  /** Time until the soonest claim's lease ends, when a claim exists (negative: it has ended). */
  nextLeaseEndMs: number | null;
  /** Time until the next queued task comes due, when one is waiting for its time. */
  nextReadyMs: number | null;
  /** Time until the run budget of a region with queued tasks, spent by its last claim, has refilled (0: it has), when there is one. */
  budgetRefillMs: number | null;
  ready: boolean;
  inFlight: boolean;
  waiting: boolean;
  completable: boolean;
}

/**
 * Finds out which steps have work, in one round trip. An idle cycle (nothing due, pending, expired,
 * ready, in flight, waiting or left to complete) ends after it, and a busy one skips the steps that
 * would find nothing: the round trips of a cycle follow the kinds of work there are, never the batch.
 */
export async function probeForWork(ctx: TickContext): Promise<Work> {
  const { rows } = await ctx.db.query(PROBE_SQL, [ctx.clock()], 'tickrun_probe').catch(async (err: { code?: string; message?: string }) => {
    // A table the probe reads is missing: the database lacks migrations, which its version says (one
    // migrated before 0008 has no tickrun_schema either), so the error names that, not the table.
    if (err.code === UNDEFINED_TABLE) {
      const schema = await ctx.db.query('select version, oldest_tick from tickrun_schema', [], 'tickrun_schema_version').then(
        ({ rows: [v] }) => v ?? { version: null, oldest_tick: null },
        () => ({ version: null, oldest_tick: null }),
      );
      checkSchemaVersion(schema.version, schema.oldest_tick);
    }
    throw err;
  });
  const r = rows[0];
  checkSchemaVersion(r.schema_version, r.oldest_tick);
  const nextLeaseEndMs: number | null = r.next_lease_end_ms;
  return {
    due: r.due, pending: r.pending, expired: nextLeaseEndMs !== null && nextLeaseEndMs < 0, nextLeaseEndMs, nextReadyMs: r.next_ready_ms, budgetRefillMs: r.budget_refill_ms, ready: r.ready,
    inFlight: r.in_flight, waiting: r.waiting, completable: r.completable,
  };
}

/** Whether a cycle has anything to do at all. */
export const hasWork = ({ nextLeaseEndMs, nextReadyMs, budgetRefillMs, ...steps }: Work): boolean => Object.values(steps).some(Boolean);
