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
