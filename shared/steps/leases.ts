import { LEASE_MARGIN_MS } from '../config';
import type { TickContext } from '../context';
import { errorText } from '../errors';
import { log } from '../log';

// Every claim of a batch still held, renewed in one statement: by key and token, so a claim another tick
// took over (a new token) is not renewed, and the answer says which ones are still this tick's.
export const RENEW_SQL = `
update tasks t set lease_until = now() + $3 * interval '1 millisecond', updated_at = now()
from unnest($1::uuid[], $2::uuid[]) as held(id, token)
where t.id = held.id and t.status = 'claimed' and t.lease_token = held.token
returning t.id`;

/**
 * The lease of one batch of claims, as the tick that holds them sees it. Leases are short, so a dead
 * tick's claims come back within one lease; the live holder renews them, all in one statement, only
 * when a call it is about to start would not end, with its margin, before the lease does. A batch sent
 * within the lease's first part (its length less one dispatch deadline and the margin) renews nothing.
 */
export class BatchLease {
  /** Claims still this tick's, by task id, with their tokens. */
  private readonly held: Map<string, string>;
  private renewing: Promise<void> | undefined;

  constructor(
    private readonly ctx: Pick<TickContext, 'db' | 'config'>,
    claims: { id: string; leaseToken: string }[],
    /** The lease's end on the performance.now() clock, read before the claim was sent. */
    private endsAt: number,
  ) {
    this.held = new Map(claims.map((c) => [c.id, c.leaseToken]));
  }

  /**
   * Whether a call of `timeoutMs` may start now for this claim: it ends, with the margin, before the
   * lease. When it would not, the batch is renewed first (one statement however many wait for it).
   * False when the claim is no longer this tick's, or the renewal failed.
   */
  async room(id: string, timeoutMs: number): Promise<boolean> {
    const fits = () => this.held.has(id) && performance.now() + timeoutMs + LEASE_MARGIN_MS <= this.endsAt;
    if (fits()) return true;
    if (!this.held.has(id)) return false;
    await (this.renewing ??= this.renew().finally(() => (this.renewing = undefined)));
    return fits();
  }

  private async renew(): Promise<void> {
    const ids = [...this.held.keys()];
    // Read before the statement is sent, as for the claim: the local view never outlasts the database's.
    const before = performance.now();
    try {
      const { rows } = await this.ctx.db.query<{ id: string }>(RENEW_SQL, [ids, ids.map((id) => this.held.get(id)), this.ctx.config.claimLeaseMs], 'tickrun_renew');
      const kept = new Set(rows.map((r) => r.id));
      for (const id of ids) if (!kept.has(id)) this.held.delete(id);
      this.endsAt = before + this.ctx.config.claimLeaseMs;
    } catch (err) {
      // Unrenewed, the claims not yet sent are given back unsent; the lease bounds those in flight.
      log('WARNING', `could not renew ${ids.length} claims: ${errorText(err)}`);
    }
  }
}
