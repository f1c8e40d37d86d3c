import type { Pool } from 'pg';
import { SETTINGS, type RegionLimits } from '../config';
import { UsageError } from '../errors';

/** A region as tasks name it: `project/region`, the project id (or domain:project) and the region of a job. */
export const REGION_NAME = /^[a-z0-9][a-z0-9.:-]{0,62}\/[a-z0-9][a-z0-9-]{0,62}$/;

/** What `tickrun regions set` changes: a number, or null to fall back to the ticks' setting again. */
export interface RegionChanges {
  runPerMinute?: number | null;
  readPerMinute?: number | null;
  maxRunning?: number | null;
  reserved?: number | null;
}

/** Each change's column and the setting whose bounds it takes. */
const FIELDS = {
  runPerMinute: { column: 'run_per_minute', setting: SETTINGS.runRequestsPerMinute },
  readPerMinute: { column: 'read_per_minute', setting: SETTINGS.readRequestsPerMinute },
  maxRunning: { column: 'max_running', setting: SETTINGS.maxRunningExecutions },
  reserved: { column: 'reserved', setting: SETTINGS.reservedExecutions },
} as const;

// The region's row when it has none yet, then its values, in one transaction: a region set
// before any task of it ran is ready for the first claim. Only the columns given change; the rate a 429
// shrank is reset when the ceiling changes, so a raised quota applies at once.
const CREATE_SQL = 'insert into regions (region) values ($1) on conflict (region) do nothing';

/**
 * Gives a region its own Cloud Run limits (`tickrun regions set`). UsageError naming the region or the
 * value that is wrong; a reserve must leave something of the maximum, the ticks' settings (`limits`)
 * standing in for what the region does not set.
 */
export async function setRegionLimits(pool: Pool, region: string, changes: RegionChanges, limits: RegionLimits): Promise<void> {
  if (!REGION_NAME.test(region)) throw new UsageError(`region "${region}" is not valid: it accepts PROJECT/REGION, like my-project/us-central1`);
  const given = Object.entries(changes).filter(([, v]) => v !== undefined) as [keyof RegionChanges, number | null][];
  if (given.length === 0) throw new UsageError('give at least one of --run-per-minute, --read-per-minute, --max-running, --reserved');
  for (const [key, value] of given) {
    const { setting } = FIELDS[key];
    if (value !== null && (!Number.isInteger(value) || value < setting.min || value > setting.max)) {
      throw new UsageError(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${value} is not valid: it accepts a whole number from ${setting.min} to ${setting.max}, or default`);
    }
  }
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(CREATE_SQL, [region]);
    const sets = given.map(([key], i) => `${FIELDS[key].column} = $${i + 2}`);
    if (changes.runPerMinute !== undefined) sets.push('run_rate = null');
    const { rows } = await client.query(`update regions set ${sets.join(', ')} where region = $1 returning max_running, reserved`, [region, ...given.map(([, v]) => v)]);
    const max = rows[0].max_running ?? limits.maxRunning;
    const reserved = rows[0].reserved ?? limits.reserved;
    if (reserved >= max) throw new UsageError(`--reserved ${reserved} must be less than the maximum of running executions (${max}): nothing would be left for tickrun to run`);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  } finally {
    client.release();
  }
}
