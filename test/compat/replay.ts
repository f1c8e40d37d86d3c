import type { Pool, PoolClient } from 'pg';
import { isDateTag, type RecordedStatement, type StatementFixture } from './fixture';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const isUuid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v);

/** A statement of a fixture that the schema refused, or answered with another number of rows. */
export class ReplayError extends Error {}

/**
 * Sends a fixture's statements to `pool`'s database in the order recorded, each on the connection standing
 * for the one that sent it (a transaction stays one), and checks each answers as it did: no error where
 * none came, and as many rows. Ids the database generates (uuids) and times it returns are mapped from the
 * recorded values to the replayed ones, and later parameters carry the replayed ones; dates the release
 * computed itself are moved by how much later the replay runs. Statements are never sent closer together
 * than they were: leases, backoffs and timeouts read against now() find what they found.
 * Throws ReplayError naming the first statement that differs.
 */
export async function replayStatements(pool: Pool, fixture: StatementFixture): Promise<void> {
  const ids = new Map<string, string>();
  const dates = new Map<string, string>();
  const conns = new Map<number, PoolClient>();
  const first = performance.now();
  const replayStart = Date.now();
  let behind = 0;
  // A date the release computed (its clock, a schedule's slot) moves with the replay: by when it started,
  // and by how far behind the recording's pace it runs.
  const shiftMs = () => replayStart - fixture.startedAt + behind;
  try {
    for (const [i, s] of fixture.statements.entries()) {
      const late = performance.now() - first - behind - s.at;
      if (late < 0) await new Promise((resolve) => setTimeout(resolve, -late));
      else behind += late;
      const client = conns.get(s.conn) ?? (await pool.connect());
      if (!conns.has(s.conn)) {
        conns.set(s.conn, client);
        // A wait on a lock the recording never waited for would hang the replay: fail it instead.
        await client.query("set lock_timeout = '5s'");
      }
      const values = s.values.map((v) => substitute(v, ids, dates, shiftMs()));
      const where = () => `statement ${i + 1} of ${fixture.statements.length} (${fixture.migration}): ${oneLine(fixture.texts[s.text])}`;
      let result;
      try {
        result = await client.query(fixture.texts[s.text], values);
      } catch (err) {
        if (s.error && (err as { code?: string }).code === s.error) continue;
        throw new ReplayError(`${where()}\nfailed: ${(err as Error).message}`);
      }
      if (s.error) throw new ReplayError(`${where()}\nsucceeded where it failed with ${s.error}`);
      const rows: any[] = result.rows ?? [];
      if (result.rowCount !== s.rowCount || rows.length !== (s.rows?.length ?? 0)) {
        throw new ReplayError(`${where()}\nanswered ${result.rowCount} rows (${rows.length} returned), recorded ${s.rowCount} (${s.rows?.length ?? 0} returned)`);
      }
      pairRows(s, rows, ids, dates);
    }
  } finally {
    for (const client of conns.values()) {
      await client.query('rollback').catch(() => {});
      client.release();
    }
  }
}

/** A recorded parameter as the replay sends it. */
function substitute(v: unknown, ids: Map<string, string>, dates: Map<string, string>, shiftMs: number): unknown {
  if (typeof v === 'string') return v.replace(UUID, (u) => ids.get(u) ?? u);
  if (isDateTag(v)) return new Date(dates.get(v.$date) ?? Date.parse(v.$date) + shiftMs);
  if (Array.isArray(v)) return v.map((x) => substitute(x, ids, dates, shiftMs));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, ids, dates, shiftMs)]));
  return v;
}

/**
 * Pairs each recorded row with a replayed one and learns the generated values from the pair. Rows are
 * paired by content, not position: an order among equals (ties on a time, an order by uuid) may differ.
 * A pair must agree on every id already known; among those, the one agreeing on most text wins.
 */
function pairRows(s: RecordedStatement, rows: any[], ids: Map<string, string>, dates: Map<string, string>): void {
  const free = new Set(rows.keys());
  for (const recorded of s.rows ?? []) {
    let best: { at: number; score: number } | undefined;
    for (const at of free) {
      const score = agreement(recorded, rows[at], ids);
      if (score >= 0 && (!best || score > best.score)) best = { at, score };
    }
    if (!best) continue;
    free.delete(best.at);
    learn(recorded, rows[best.at], ids, dates);
  }
}

/** -1 when the rows contradict a known id or differ in shape, else how many text values they share. */
function agreement(recorded: unknown, replayed: unknown, ids: Map<string, string>): number {
  if (isUuid(recorded)) return !isUuid(replayed) ? (replayed === recorded ? 0 : -1) : ids.has(recorded) && ids.get(recorded) !== replayed ? -1 : 0;
  if (isDateTag(recorded)) return replayed instanceof Date ? 0 : -1;
  if (typeof recorded === 'string') return typeof replayed === 'string' && replayed === recorded.replace(UUID, (u) => ids.get(u) ?? u) ? 1 : 0;
  if (recorded && typeof recorded === 'object') {
    if (!replayed || typeof replayed !== 'object') return -1;
    let score = 0;
    for (const [k, v] of Object.entries(recorded)) {
      const part = agreement(v, (replayed as Record<string, unknown>)[k], ids);
      if (part < 0) return -1;
      score += part;
    }
    return score;
  }
  return 0;
}

/** Maps the uuids and times of a recorded row to those of its replayed pair. */
function learn(recorded: unknown, replayed: unknown, ids: Map<string, string>, dates: Map<string, string>): void {
  if (isUuid(recorded) && isUuid(replayed)) ids.set(recorded, replayed);
  else if (isDateTag(recorded) && replayed instanceof Date) dates.set(recorded.$date, replayed.toISOString());
  else if (recorded && typeof recorded === 'object' && replayed && typeof replayed === 'object') {
    for (const [k, v] of Object.entries(recorded)) learn(v, (replayed as Record<string, unknown>)[k], ids, dates);
  }
}

const oneLine = (sql: string) => {
  const flat = sql.replace(/--[^\n]*/g, '').replace(/\s+/g, ' ').trim();
  return flat.length > 160 ? `${flat.slice(0, 160)}…` : flat;
};
