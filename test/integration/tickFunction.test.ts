import { UNLIMITED_REGIONS } from '../helpers/harness';
import { freePort } from '../../shared/localDb';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import { triggerRun } from '../../shared/operator/trigger';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { post, serveTick } from '../helpers/functionServer';

describe('the tick function served by functions-framework', () => {
  let db: TestDatabase;
  let emu: CloudRunEmulator;
  let server: Awaited<ReturnType<typeof serveTick>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    emu = await startCloudRunEmulator();
    server = await serveTick({ DATABASE_URL: db.url, CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_POLL_INTERVAL: '200ms', ...UNLIMITED_REGIONS });
  });
  afterAll(async () => {
    server?.proc.kill();
    await db.drop();
    await emu.stop();
  });

  it('a POST runs one tick and answers its summary; ticks carry a run to success', async () => {
    await applyWorkflows(db.pool, [parseWorkflow('name: fn\ntasks:\n  a: { job: projects/p/locations/l/jobs/a, count: 3 }\n  b: { job: projects/p/locations/l/jobs/b, depends_on: [a] }\n', '/w/fn.yaml')]);
    const { runId } = await triggerRun(db.pool, 'fn');
    const first = await post(server.url);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ cycles: 1, runsStarted: 1, claimed: 3, dispatched: 3, checked: 0 });
    expect(first.body.roundTrips).toBeGreaterThan(0);
    expect(typeof first.body.durationMs).toBe('number');
    // What one tick sent, the next checks: the three `a` ended (the emulator ends them at once), `b` is
    // released and sent in the same cycle.
    expect((await post(server.url, { budgetMs: 0 })).body).toMatchObject({ checked: 3, succeeded: 3, released: 1, claimed: 1, dispatched: 1 });
    expect((await post(server.url, { budgetMs: 0 })).body).toMatchObject({ checked: 1, succeeded: 1, runsCompleted: 1 });
    const { rows } = await db.pool.query('select status from runs where id = $1', [runId]);
    expect(rows[0].status).toBe('success');
    // Logs are JSON lines Cloud Logging reads, with run and task ids as labels.
    const line = server.logs().split('\n').find((l) => l.includes('dispatched a[0]'))!;
    expect(JSON.parse(line)).toMatchObject({ severity: 'INFO', 'logging.googleapis.com/labels': { run_id: runId, workflow: 'fn' } });
  });

  it('with {"budgetMs": n} it cycles every poll interval until the budget is spent', async () => {
    const r = await post(server.url, { budgetMs: 700 });
    expect(r.status).toBe(200);
    expect(r.body.cycles).toBeGreaterThanOrEqual(3);
    expect(r.body.durationMs).toBeLessThanOrEqual(700 + 200);
  });

  it('refuses a bad budget with 400 and other methods with 405', async () => {
    const bad = await post(server.url, { budgetMs: 'soon' });
    expect(bad).toEqual({ status: 400, body: { error: 'budgetMs must be a whole number of milliseconds from 0 to 3600000' } });
    const get = await fetch(server.url);
    expect(get.status).toBe(405);
  });

  it('answers 500 with the error when the database is unreachable', async () => {
    const port = await freePort();
    const down = await serveTick({ DATABASE_URL: `postgres://x:y@127.0.0.1:${port}/none`, CLOUD_RUN_EMULATOR_HOST: emu.host });
    try {
      const r = await post(down.url);
      expect(r.status).toBe(500);
      expect(r.body.error).toMatch(/ECONNREFUSED/);
      expect(down.logs()).toMatch(/"severity":"ERROR","message":"tick failed: .*ECONNREFUSED/);
    } finally {
      down.proc.kill();
    }
  });
});
