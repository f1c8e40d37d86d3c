import { CronExpressionParser } from 'cron-parser';

/**
 * Checks a workflow's `schedule`: a five-field cron (minute hour day-of-month month day-of-week),
 * read in UTC, that has at least one slot to come. Throws a plain Error saying what is wrong;
 * parseWorkflow wraps it with the file and field.
 */
export function checkSchedule(schedule: string): void {
  const fields = schedule.trim().split(/\s+/);
  if (schedule.trim().startsWith('@')) {
    throw new Error(`"${schedule}": shorthands like @daily are not accepted; write the five fields, like "0 0 * * *"`);
  }
  if (fields.length !== 5) {
    throw new Error(
      `"${schedule}" has ${fields.length} field${fields.length === 1 ? '' : 's'}; a schedule is five fields: ` +
        'minute hour day-of-month month day-of-week, like "*/5 * * * *" (no seconds field)',
    );
  }
  // cron-parser draws a fresh random value for `H` on every parse unless given a seed, so the slots
  // would move between ticks and "exactly once per slot" could not hold.
  if (fields.some((field) => field.split(/[,/-]/).some((part) => /^h/i.test(part)))) {
    throw new Error(`"${schedule}": "H" (hashed) values are not accepted; write the minute and hour you want`);
  }
  try {
    // Asking for the next slot also refuses expressions that parse but never fire, like "0 0 30 2 *".
    nextScheduleSlot(schedule, new Date());
  } catch (err) {
    throw new Error(`"${schedule}" is not a valid cron schedule: ${(err as Error).message}`);
  }
}

/** Checks an IANA time zone name; throws a plain Error naming it otherwise. */
export function checkTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    throw new Error(`"${timezone}" is not a time zone: write an IANA name like UTC, Europe/Paris or America/New_York`);
  }
}

/**
 * The first slot of `schedule` (five-field cron, read in `timezone`) strictly after `after`. Across a
 * DST change a daily slot fires once: one that falls in the skipped hour fires just after it, one in
 * the repeated hour fires on its first pass. Throws when the expression cannot be read; workflows
 * stored through parseWorkflow always can.
 */
export function nextScheduleSlot(schedule: string, after: Date, timezone = 'UTC'): Date {
  return CronExpressionParser.parse(schedule, { tz: timezone, currentDate: after }).next().toDate();
}

/**
 * The slots of `schedule` from `from` (itself a slot) up to and including `until`, oldest first, at most `max` of them:
 * the newest ones when there are more. A long downtime costs about `max` steps, not one per missed
 * slot: it first walks back `max` slots from `until`, then lists forward from there. Forward, because
 * cron-parser's prev() skips a slot that DST moved out of the lost hour, which next() gives.
 */
export function dueSlots(schedule: string, timezone: string, from: Date, until: Date, max: number): Date[] {
  const back = CronExpressionParser.parse(schedule, { tz: timezone, currentDate: new Date(until.getTime() + 1) });
  let start = from;
  for (let i = 0; i < max && back.hasPrev(); i++) {
    const slot = back.prev().toDate();
    if (slot < from) break;
    start = slot;
  }
  if (from > until) return [];
  // `from` is a slot next() gave (the one the workflow waits for): it counts as it is, since next()
  // started just before it may not give it again (a DST-shifted slot is only found from before the gap).
  const slots: Date[] = start.getTime() === from.getTime() ? [from] : [];
  const forward = CronExpressionParser.parse(schedule, { tz: timezone, currentDate: slots.length ? start : new Date(start.getTime() - 1) });
  for (let slot = forward.next().toDate(); slot <= until; slot = forward.next().toDate()) slots.push(slot);
  return slots.slice(-max);
}
