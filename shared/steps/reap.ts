import type { TickContext } from '../context';

// A claim whose lease ran out belongs to a tick that died (or stalled) between claiming and recording
// the dispatch. The attempt is given back so the task is claimed again as the same attempt.
export const REAP_SQL = `
update tasks
set status = 'queued', attempt = attempt - 1, lease_until = null, next_attempt_at = now(), updated_at = now(),
    error = 'claim expired: the tick that claimed it did not record a dispatch'
where status = 'claimed' and lease_until < now()
returning id`;

/** Takes back expired claims. Returns how many tasks were re-queued. */
export async function reapExpiredClaims(ctx: TickContext): Promise<number> {
  const { rowCount } = await ctx.db.query(REAP_SQL, [], 'tickrun_reap');
  return rowCount ?? 0;
}
