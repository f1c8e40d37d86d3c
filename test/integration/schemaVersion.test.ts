import { Pool } from 'pg';
import { migrate, migrationNames } from '../../shared/migrate';
import { SCHEMA_VERSION } from '../../shared/schemaVersion';
import { triggerRun } from '../../shared/operator/trigger';
import { tick } from '../../shared/tick';
import { migrationNumber } from '../compat/fixture';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createHarness, type Harness } from '../helpers/harness';
import { post, serveTick, type TickServer } from '../helpers/functionServer';

// A tick built for the newest migration, against a schema that no longer lets it run (a breaking migration
// of a later release) or that lacks a migration it needs: one error that says which and what to do, and
// nothing claimed, sent or changed.
const JOB = 'projects/demo/locations/us-central1/jobs/work';
const newest = migrationNumber(migrationNames().at(-1)!);

/** Every row of the tables a tick writes, and the executions started: what a refused tick must leave alone. */
async function everything(pool: Pool, emu: CloudRunEmulator) {
  const read = async (sql: string) => (await pool.query(sql)).rows;
  return {
    runs: await read('select * from runs order by id'),
    tasks: await read('select * from tasks order by id'),
    workflows: await read('select * from workflows order by name'),
    slots: await read('select * from concurrency_slots order by workflow, slot'),
    attempts: await read('select * from task_attempts order by task_id, attempt'),
    executions: emu.executions.length,
  };
}

it("the tick's SCHEMA_VERSION is the newest migration's number: a release that adds one cannot forget it", () => {
  expect(SCHEMA_VERSION).toBe(newest);
});

describe('a tick refuses a schema it does not fit', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  let server: TickServer;
  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host });
    server = await serveTick({ DATABASE_URL: h.db.url, CLOUD_RUN_EMULATOR_HOST: emu.host });
    // A run with tasks in flight and queued (a limit of one), and a run not yet expanded.
    await h.apply(`name: busy\nconcurrency: 1\ntasks:\n  a: { job: ${JOB}, count: 3, env: { EMU_DURATION_MS: "600000" } }\n`);
    await h.trigger('busy');
    expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ dispatched: 1 });
    await h.trigger('busy');
  });
  afterAll(async () => {
    server?.proc.kill();
    await h?.close();
    await emu?.stop();
  });
  afterEach(() => h.db.pool.query(`update tickrun_schema set version = ${newest}, oldest_tick = least(oldest_tick, ${newest})`));

  it('whose oldest supported tick is newer than it: it logs one error naming both versions, answers 500, and changes nothing', async () => {
    await h.db.pool.query(`update tickrun_schema set version = ${newest + 1}, oldest_tick = ${newest + 1}`);
    const before = await everything(h.db.pool, emu);
    const refusal = `the database's schema (version ${newest + 1}) lets no tick older than version ${newest + 1} run, and this one is version ${newest}: deploy the tick function of the release that migrated it`;
    await expect(tick(h.deps)).rejects.toThrow(refusal);
    const r = await post(server.url);
    expect(r).toEqual({ status: 500, body: { error: expect.stringContaining(refusal) } });
    const errors = server.logs().split('\n').filter((l) => l.includes('"severity":"ERROR"'));
    expect(errors).toEqual([expect.stringContaining(refusal)]);
    expect(await everything(h.db.pool, emu)).toEqual(before);
  });

  it('whose version is older than its own: it asks for `tickrun migrate`', async () => {
    await h.db.pool.query(`update tickrun_schema set version = ${newest - 1}`);
    const before = await everything(h.db.pool, emu);
    await expect(tick(h.deps, { budgetMs: 0 })).rejects.toThrow(
      `the database's schema is at version ${newest - 1} and this tick needs version ${newest}: run \`tickrun migrate\` before this function`,
    );
    expect(await everything(h.db.pool, emu)).toEqual(before);
  });

  it('whose version is newer but lets it run (expand-only migrations since): it ticks', async () => {
    await h.db.pool.query(`update tickrun_schema set version = ${newest + 1}`);
    expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ runsStarted: 1 });
  });
});

describe('a tick against a database without its newest migration', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host });
  });
  afterAll(async () => {
    await h?.close();
    await emu?.stop();
  });

  it('asks for `tickrun migrate` and changes nothing', async () => {
    // The harness's database, emptied and migrated as the release before this one left it.
    const admin = new Pool({ connectionString: h.db.url, max: 1 });
    try {
      await admin.query('drop schema public cascade; create schema public');
      expect((await migrate(admin, { count: migrationNames().length - 1 })).length).toBe(migrationNames().length - 1);
    } finally {
      await admin.end();
    }
    await h.apply(`name: early\ntasks:\n  a: { job: ${JOB} }\n`);
    await triggerRun(h.db.pool, 'early');
    const before = await everything(h.db.pool, emu);
    await expect(tick(h.deps, { budgetMs: 0 })).rejects.toThrow(/^the database's schema is (at|older than) version \d+.* and this tick needs version \d+: run `tickrun migrate` before this function/);
    expect(await everything(h.db.pool, emu)).toEqual(before);
  });
});
