import { Pool } from 'pg';
import fs from 'node:fs';
import { migrate, MIGRATIONS_DIR } from '../../shared/migrate';

describe('migrate', () => {
  const admin = new Pool({ connectionString: process.env.TICKRUN_TEST_PG_URL, max: 1 });
  admin.on('error', () => {});
  let pool: Pool;
  beforeAll(async () => {
    await admin.query('create database migrate_race');
    pool = new Pool({ connectionString: process.env.TICKRUN_TEST_PG_URL!.replace(/\/tickrun$/, '/migrate_race'), max: 6 });
    pool.on('error', () => {});
  });
  afterAll(async () => {
    await pool.end();
    await admin.query('drop database migrate_race with (force)');
    await admin.end();
  });

  it('applies every migration once when two migrators race, and is a no-op the second time', async () => {
    const [a, b] = await Promise.all([migrate(pool), migrate(pool)]);
    const all = fs.readdirSync(MIGRATIONS_DIR).map((f) => f.replace(/\.sql$/, '')).sort();
    expect(all.length).toBeGreaterThan(1);
    // Each migration applied exactly once, by one migrator or the other.
    expect([...a, ...b].sort()).toEqual(all);
    expect(await migrate(pool)).toEqual([]);
    const { rows } = await pool.query('select name from tickrun_migrations order by id');
    expect(rows.map((r) => r.name)).toEqual(all);
    const { rows: idx } = await pool.query("select indexname from pg_indexes where tablename = 'tasks' order by 1");
    expect(idx.map((r) => r.indexname)).toEqual(expect.arrayContaining(['tasks_unfinished', 'tasks_run_status', 'tasks_execution_name', 'tasks_ready', 'tasks_in_flight']));
  });
});
