import crypto from 'node:crypto';
import { Pool } from 'pg';

/** A fresh, migrated database of its own for one test file. */
export interface TestDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

function serverUrl(): string {
  const url = process.env.TICKRUN_TEST_PG_URL;
  if (!url) throw new Error('TICKRUN_TEST_PG_URL is not set: run the tests through jest (globalSetup starts Postgres)');
  return url;
}

/** Copies the migrated template database (created once in globalSetup). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const base = serverUrl();
  const name = `t_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new Pool({ connectionString: base, max: 1 });
  admin.on('error', () => {});
  await admin.query(`create database ${name} template tickrun_template`);
  const url = base.replace(/\/tickrun$/, `/${name}`);
  const pool = new Pool({ connectionString: url, max: 20 });
  pool.on('error', () => {});
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** A plan node of `EXPLAIN (ANALYZE, FORMAT JSON)`, with its children under `Plans`. */
export type PlanNode = Record<string, any> & { Plans?: PlanNode[] };

/**
 * Runs `sql` under EXPLAIN (ANALYZE, BUFFERS) in a transaction rolled back, so what it writes is undone;
 * the root plan node, whose buffer counts include its children's.
 */
export async function analyzedPlan(pool: Pool, sql: string, params: unknown[] = []): Promise<PlanNode> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query(`explain (analyze, buffers, format json) ${sql}`, params);
    return rows[0]['QUERY PLAN'][0].Plan;
  } finally {
    await client.query('rollback');
    client.release();
  }
}

/** Blocks a plan read, found or not, in the shared buffers: deterministic, unlike time. */
export const buffersRead = (plan: PlanNode): number => plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];

/**
 * The rows every node of a plan handled (returned or filtered out, times its loops): work that stays in
 * memory too, which buffers do not count.
 */
export function rowsHandled(node: PlanNode): number {
  const own = ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Join Filter'] ?? 0)) * (node['Actual Loops'] ?? 1);
  return own + (node.Plans ?? []).reduce((n, child) => n + rowsHandled(child), 0);
}
