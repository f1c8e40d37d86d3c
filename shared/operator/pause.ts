import type { Pool } from 'pg';
import { NotFoundError, UsageError } from '../errors';
import { nextScheduleSlot } from '../workflows/schedule';

/**
 * Pauses or resumes a workflow's schedule. Resuming waits for the next slot from now: the slots that
 * passed while paused are not made up for. NotFoundError for an unknown workflow, UsageError for one
 * without a schedule.
 */
export async function setSchedulePaused(pool: Pool, workflow: string, paused: boolean, now = new Date()): Promise<{ nextRunAt: string | null }> {
  const { rows } = await pool.query('select definition from workflows where name = $1', [workflow]);
  if (!rows[0]) throw new NotFoundError(`unknown workflow "${workflow}": \`tickrun workflows\` lists them`);
  const def = rows[0].definition;
  if (!def.schedule) throw new UsageError(`workflow "${workflow}" has no schedule to ${paused ? 'pause' : 'resume'}`);
  const next = paused ? null : nextScheduleSlot(def.schedule, now, def.timezone);
  await pool.query(
    'update workflows set paused = $2, next_slot_at = coalesce($3, next_slot_at), updated_at = now() where name = $1',
    [workflow, paused, next],
  );
  return { nextRunAt: next ? next.toISOString() : null };
}
