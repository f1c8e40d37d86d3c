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

/**
 * The first slot of `schedule` (five-field cron, UTC) strictly after `after`. Throws when the
 * expression cannot be read; workflows stored through parseWorkflow always can.
 */
export function nextScheduleSlot(schedule: string, after: Date): Date {
  return CronExpressionParser.parse(schedule, { tz: 'UTC', currentDate: after }).next().toDate();
}
