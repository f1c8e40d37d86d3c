import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { startEmbeddedPostgres } from '../../shared/localDb';
import { migrate } from '../../shared/migrate';

/**
 * Starts one real Postgres for the whole test run and migrates a template database once;
 * each test file then copies the template (test/helpers/db.ts), which takes milliseconds.
 */
export default async function globalSetup(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-test-pg-'));
  const db = await startEmbeddedPostgres(path.join(dir, 'data'), { durable: false });
  const admin = new Pool({ connectionString: db.url, max: 1 });
  admin.on('error', () => {});
  await admin.query('create database tickrun_template');
  await admin.end();
  const template = new Pool({ connectionString: db.url.replace(/\/tickrun$/, '/tickrun_template'), max: 1 });
  template.on('error', () => {});
  await migrate(template);
  await template.end();
  process.env.TICKRUN_TEST_PG_URL = db.url;
  (globalThis as any).__tickrunTestPg = { db, dir };
}
