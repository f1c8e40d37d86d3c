import { Pool } from 'pg';
import { migrate, migrationNames } from '../../shared/migrate';

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
    const all = migrationNames();
    expect(all.length).toBeGreaterThan(1);
    // Each migration applied exactly once, by one migrator or the other.
    expect([...a, ...b].sort()).toEqual(all);
    expect(await migrate(pool)).toEqual([]);
    const { rows } = await pool.query('select name from tickrun_migrations order by id');
    expect(rows.map((r) => r.name)).toEqual(all);
    const { rows: idx } = await pool.query("select indexname from pg_indexes where tablename = 'tasks' order by 1");
    expect(idx.map((r) => r.indexname)).toEqual(expect.arrayContaining(['tasks_unfinished', 'tasks_run_status', 'tasks_execution_name', 'tasks_ready', 'tasks_in_flight']));
  });

  it('0005 moves the attempt in flight to its task and keeps the ended ones', async () => {
    await admin.query('create database migrate_0005');
    const db = new Pool({ connectionString: process.env.TICKRUN_TEST_PG_URL!.replace(/\/tickrun$/, '/migrate_0005'), max: 1 });
    db.on('error', () => {});
    try {
      await migrate(db, { count: 4 });
      await db.query(`
        insert into workflows (name, definition, version, hash) values ('w', '{}', 1, 'h');
        insert into runs (id, workflow, workflow_version, definition, status) values ('00000000-0000-4000-8000-000000000001', 'w', 1, '{}', 'running');
        insert into tasks (id, run_id, workflow, run_created_at, name, task_index, status, attempt, max_attempts, backoff_ms, execution_name, claimed_at)
        values ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 'w', now(), 't', 0, 'running', 2, 3, 0, 'e2', '2026-01-01 00:00:10+00');
        insert into task_attempts (task_id, run_id, attempt, status, execution_name, claimed_at, dispatched_at, finished_at, error) values
          ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 1, 'failed', 'e1', '2026-01-01 00:00:00+00', '2026-01-01 00:00:01+00', '2026-01-01 00:00:05+00', 'boom'),
          ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 2, 'running', 'e2', '2026-01-01 00:00:10+00', '2026-01-01 00:00:11+00', null, null);`);
      // 0005 and every migration after it, in order.
      const after0004 = migrationNames().slice(4);
      expect(after0004[0]).toBe('0005_fewer_writes');
      expect(await migrate(db)).toEqual(after0004);
      const { rows: tasks } = await db.query('select status, attempt, dispatched_at from tasks');
      expect(tasks).toEqual([{ status: 'running', attempt: 2, dispatched_at: new Date('2026-01-01T00:00:11Z') }]);
      const { rows: attempts } = await db.query('select attempt, status, execution_name, error from task_attempts order by attempt');
      expect(attempts).toEqual([{ attempt: 1, status: 'failed', execution_name: 'e1', error: 'boom' }]);
      // 0006: durations in bigint, values kept.
      const { rows: durations } = await db.query("select data_type from information_schema.columns where table_name = 'tasks' and column_name in ('backoff_ms', 'timeout_ms')");
      expect(durations).toEqual([{ data_type: 'bigint' }, { data_type: 'bigint' }]);
      expect((await db.query('select backoff_ms::int as b, timeout_ms from tasks')).rows).toEqual([{ b: 0, timeout_ms: null }]);
    } finally {
      await db.end();
      await admin.query('drop database migrate_0005 with (force)');
    }
  });
});
