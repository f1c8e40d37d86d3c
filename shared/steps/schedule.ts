import type { TickContext } from '../context';
import { log } from '../log';
import { dueSlots, nextScheduleSlot } from '../workflows/schedule';

/** `catchup: all` makes at most this many runs for one workflow in one tick (the newest missed slots). */
export const CATCHUP_CAP = 100;

// Scheduled workflows whose slot has come, oldest first.
export const DUE_SQL = `
select name, definition ->> 'schedule' as schedule, coalesce(definition ->> 'timezone', 'UTC') as timezone,
       coalesce(definition ->> 'catchup', 'latest') as catchup, next_slot_at
from workflows
where next_slot_at <= $1 and not paused
order by next_slot_at
limit $2`;

// One statement for every due workflow: move its next slot forward, compare-and-set against the slot this
// tick read, and create a run for each slot it owes. A tick overlapping this one fails the compare and
// creates nothing; and were two ever to get past it, the unique index on (workflow, scheduled_for)
// keeps the second run of a slot from being made.
export const SCHEDULE_SQL = `
with due as (
  select * from unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) as d(workflow, expected, next)
), moved as (
  update workflows w set next_slot_at = d.next
  from due d
  where w.name = d.workflow and w.next_slot_at = d.expected and not w.paused
  returning w.name, w.version, w.definition
)
insert into runs (workflow, workflow_version, definition, triggered_by, scheduled_for)
select m.name, m.version, m.definition, 'schedule', s.slot
from moved m
join unnest($4::text[], $5::timestamptz[]) as s(workflow, slot) on s.workflow = m.name
on conflict (workflow, scheduled_for) where scheduled_for is not null do nothing
returning id, workflow, scheduled_for`;

interface DueWorkflow {
  name: string;
  schedule: string;
  timezone: string;
  catchup: 'latest' | 'all';
  next_slot_at: Date;
}

/**
 * Creates the runs whose schedule slots have come since the last tick, exactly once per (workflow, slot).
 * After downtime `catchup: latest` (the default) runs only the newest missed slot, `all` every missed
 * slot up to CATCHUP_CAP. Costs one round trip when nothing is due.
 */
export async function scheduleDueRuns(ctx: TickContext): Promise<number> {
  const { db, config, clock } = ctx;
  const now = clock();
  const { rows } = await db.query<DueWorkflow>(DUE_SQL, [now, config.batchSize], 'tickrun_due');
  if (rows.length === 0) return 0;
  const slotWorkflows: string[] = [];
  const slots: Date[] = [];
  for (const w of rows) {
    const owed = dueSlots(w.schedule, w.timezone, w.next_slot_at, now, CATCHUP_CAP);
    for (const slot of w.catchup === 'all' ? owed : owed.slice(-1)) {
      slotWorkflows.push(w.name);
      slots.push(slot);
    }
  }
  const { rows: created } = await db.query(
    SCHEDULE_SQL,
    [rows.map((w) => w.name), rows.map((w) => w.next_slot_at), rows.map((w) => nextScheduleSlot(w.schedule, now, w.timezone)), slotWorkflows, slots],
    'tickrun_schedule',
  );
  for (const r of created) log('INFO', `scheduled ${r.workflow} for ${r.scheduled_for.toISOString()}: run ${r.id}`, { run_id: r.id, workflow: r.workflow });
  return created.length;
}
