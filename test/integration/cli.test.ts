import { UNLIMITED_REGIONS } from '../helpers/harness';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../shared/localDb';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { runCli } from '../helpers/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Daily at twelve hours from now: no tick of this file comes near a slot, whose run would join its runs.
const SLOT_HOUR = (new Date().getUTCHours() + 12) % 24;
const SLOT_TIME = `T${String(SLOT_HOUR).padStart(2, '0')}:00:00.000Z`;

describe('tickrun CLI', () => {
  let db: TestDatabase;
  let emu: CloudRunEmulator;
  let dir: string;
  let env: Record<string, string>;
  const cli = (...args: string[]) => runCli(args, env, dir);

  beforeAll(async () => {
    db = await createTestDatabase();
    emu = await startCloudRunEmulator();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-cli-'));
    env = { DATABASE_URL: db.url, CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_HOME: path.join(dir, '.tickrun'), ...UNLIMITED_REGIONS };
    fs.mkdirSync(path.join(dir, 'flows'));
    fs.writeFileSync(
      path.join(dir, 'flows', 'etl.yaml'),
      `name: etl
description: the CLI test workflow
schedule: "0 ${SLOT_HOUR} * * *"
defaults: { project: demo, region: us-central1 }
tasks:
  extract: { job: extract, count: 2 }
  load: { job: load, depends_on: [extract] }
`,
    );
    fs.writeFileSync(path.join(dir, 'flows', 'slow.yml'), `name: slow\ntasks:\n  wait: { job: projects/p/locations/l/jobs/wait, env: { EMU_DURATION_MS: "60000" } }\n`);
    fs.writeFileSync(path.join(dir, 'bad.yaml'), `name: bad\ntasks:\n  a: { job: a, depends_on: [b] }\n  b: { job: b, depends_on: [a] }\n`);
  });
  afterAll(async () => {
    await db.drop();
    await emu.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--help lists the commands and every variable that overrides a profile', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const word of ['schedule', 'timezone', 'catchup: latest', 'catchup: all', 'pause|resume', 'concurrency', 'oldest run first', '--idempotency-key', 'dev', 'migrate', 'pause', 'resume', 'validate', 'apply', 'workflows', 'trigger', 'tick', 'status', 'tasks', 'cancel', 'retry', 'TICKRUN_PROFILE', 'TICKRUN_BATCH_SIZE', 'TICKRUN_STATUS_BATCH_SIZE', 'TICKRUN_DISPATCH_CONCURRENCY', 'TICKRUN_STATUS_CONCURRENCY', 'TICKRUN_POOL_SIZE', 'TICKRUN_POLL_INTERVAL']) {
      expect(r.stdout).toContain(word);
    }
  });

  it('migrate is a no-op on a migrated database, also when two run at once', async () => {
    const [a, b] = await Promise.all([cli('migrate'), cli('migrate')]);
    expect([a.code, b.code, a.stdout.trim(), b.stdout.trim()]).toEqual([0, 0, 'nothing to migrate', 'nothing to migrate']);
  });

  it('validate checks files and folders and changes nothing', async () => {
    const ok = await cli('validate', 'flows');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/ok .*etl\.yaml: etl/);
    const bad = await cli('validate', 'flows', 'bad.yaml');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad\.yaml.*task "a".*depends_on.*cycle/);
    const { rows } = await db.pool.query('select count(*)::int as n from workflows');
    expect(rows[0].n).toBe(0);
  });

  it('apply is all or nothing: one invalid file and nothing is written', async () => {
    const r = await cli('apply', 'flows', 'bad.yaml');
    expect(r.code).toBe(2);
    expect((await db.pool.query('select count(*)::int as n from workflows')).rows[0].n).toBe(0);
    const ok = await cli('apply', 'flows');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('created etl (version 1)');
    expect((await cli('apply', 'flows')).stdout).toContain('unchanged etl (version 1)');
  });

  it('workflows --json lists them with their schedule and next slot', async () => {
    const r = await cli('workflows', '--json');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout);
    expect(list.map((w: any) => w.name)).toEqual(['etl', 'slow']);
    expect(list[0]).toMatchObject({ name: 'etl', description: 'the CLI test workflow', schedule: `0 ${SLOT_HOUR} * * *`, timezone: 'UTC', catchup: 'latest', paused: false, nextRunAt: expect.stringMatching(new RegExp(`${SLOT_TIME}$`)) });
    expect(list[1]).toMatchObject({ schedule: null, nextRunAt: null });
    expect((await cli('workflows')).stdout).toMatch(/NAME\s+SCHEDULE/);
  });

  it('pause and resume a schedule; refused for a workflow without one, or unknown', async () => {
    expect((await cli('pause', 'etl')).stdout.trim()).toBe('paused etl');
    expect(JSON.parse((await cli('workflows', '--json')).stdout)[0]).toMatchObject({ paused: true, nextRunAt: null });
    const resumed = await cli('resume', 'etl');
    expect(resumed.stdout).toMatch(new RegExp(`^resumed etl: next run at .*${SLOT_TIME}`));
    expect(JSON.parse((await cli('workflows', '--json')).stdout)[0]).toMatchObject({ paused: false, nextRunAt: expect.stringMatching(new RegExp(SLOT_TIME)) });
    const none = await cli('pause', 'slow');
    expect([none.code, none.stderr.trim()]).toEqual([2, 'tickrun: workflow "slow" has no schedule to pause']);
    expect((await cli('resume', 'nope')).code).toBe(2);
  });

  let runId: string;
  it('trigger --json creates a run; the same idempotency key returns the same run', async () => {
    const r = await cli('trigger', 'etl', '--param', 'day=mon', '--param', 'x=a=b', '--idempotency-key', 'k1', '--json');
    expect(r.code).toBe(0);
    runId = JSON.parse(r.stdout).runId;
    expect(runId).toMatch(UUID);
    const again = await cli('trigger', 'etl', '--idempotency-key', 'k1', '--json');
    expect(JSON.parse(again.stdout)).toEqual({ runId });
    const other = await cli('trigger', 'etl', '--json');
    expect(JSON.parse(other.stdout).runId).not.toBe(runId);
    const { rows } = await db.pool.query('select params from runs where id = $1', [runId]);
    expect(rows[0].params).toEqual({ day: 'mon', x: 'a=b' });
  });

  it('trigger refuses an unknown workflow and a malformed param with exit 2', async () => {
    const r = await cli('trigger', 'nope');
    expect([r.code, r.stderr.trim()]).toEqual([2, expect.stringContaining('unknown workflow "nope"')]);
    const p = await cli('trigger', 'etl', '--param', 'novalue');
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('--param "novalue" is not valid');
  });

  it('tick --json prints the tick summary', async () => {
    const r = await cli('tick', '--json');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ cycles: 1, runsStarted: 2, claimed: 4, dispatched: 4 });
    expect(summary.roundTrips).toBeGreaterThan(0);
    expect(typeof summary.durationMs).toBe('number');
    const budget = await cli('tick', '--budget', '1s', '--json');
    expect(JSON.parse(budget.stdout).cycles).toBeGreaterThanOrEqual(1);
    expect((await cli('tick', '--budget', 'forever')).code).toBe(2);
  });

  it('status --json: one run with its task counts, or all runs latest first', async () => {
    // Ticked to its end: the extracts are sent and end (the emulator ends them at once), then the load.
    for (let i = 0; i < 10 && ['pending', 'running'].includes(JSON.parse((await cli('status', runId, '--json')).stdout).status); i++) await cli('tick');
    const one = await cli('status', runId, '--json');
    expect(one.code).toBe(0);
    const run = JSON.parse(one.stdout);
    expect(Object.keys(run)).toEqual(expect.arrayContaining(['id', 'workflow', 'status', 'tasks', 'createdAt', 'startedAt', 'finishedAt', 'error']));
    expect(run).toMatchObject({ id: runId, workflow: 'etl', status: 'success', tasks: { success: 3 }, error: null });
    expect(Date.parse(run.finishedAt)).toBeGreaterThanOrEqual(Date.parse(run.startedAt));
    const all = JSON.parse((await cli('status', '--json')).stdout);
    expect(all).toHaveLength(2);
    expect(all.map((r: any) => r.id)).toContain(runId);
    expect(Date.parse(all[0].createdAt)).toBeGreaterThanOrEqual(Date.parse(all[1].createdAt));
    expect((await cli('status')).stdout).toMatch(/RUN\s+WORKFLOW\s+STATUS/);
  });

  it('tasks --json lists a run’s tasks in the contract shape', async () => {
    const r = await cli('tasks', runId, '--json');
    expect(r.code).toBe(0);
    const tasks = JSON.parse(r.stdout);
    expect(tasks).toHaveLength(3);
    for (const t of tasks) expect(Object.keys(t).sort()).toEqual(['attempt', 'error', 'executionName', 'id', 'index', 'name', 'status']);
    expect(tasks.filter((t: any) => t.name === 'extract').map((t: any) => t.index).sort()).toEqual([0, 1]);
  });

  it('status, tasks and cancel refuse a malformed or unknown run id with exit 2', async () => {
    for (const cmd of ['status', 'tasks', 'cancel']) {
      const bad = await cli(cmd, 'not-a-uuid');
      expect([cmd, bad.code]).toEqual([cmd, 2]);
      expect(bad.stderr).toContain('"not-a-uuid" is not a run id');
      const unknown = await cli(cmd, '00000000-0000-4000-8000-000000000000');
      expect([cmd, unknown.code, unknown.stderr.trim()]).toEqual([cmd, 2, 'tickrun: unknown run 00000000-0000-4000-8000-000000000000']);
    }
  });

  it('cancel stops a run with an execution in flight', async () => {
    const slow = JSON.parse((await cli('trigger', 'slow', '--json')).stdout).runId;
    await cli('tick');
    await cli('tick');
    const r = await cli('cancel', slow);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 executions stopped');
    expect(emu.executions.find((e) => e.env.TICKRUN_RUN_ID === slow)!.cancelled).toBe(true);
    // The task ends once a tick sees its execution stopped.
    await cli('tick');
    expect(JSON.parse((await cli('status', slow, '--json')).stdout)).toMatchObject({ status: 'cancelled', tasks: { cancelled: 1 } });
    expect((await cli('cancel', slow)).stdout).toContain('had already ended (cancelled)');
  });

  it('retry queues a failed run\'s failed task again and its skipped downstream, then refuses a run that is not failed', async () => {
    // Its first attempt of `a` fails (EMU_FAIL), with no retries: the run fails and `b` is skipped.
    fs.writeFileSync(path.join(dir, 'flaky.yml'), `name: flaky\ntasks:\n  a: { job: projects/p/locations/l/jobs/a, env: { EMU_FAIL: "attempts<2" } }\n  b: { job: projects/p/locations/l/jobs/b, depends_on: [a] }\n`);
    expect((await cli('apply', path.join(dir, 'flaky.yml'))).code).toBe(0);
    const runId = JSON.parse((await cli('trigger', 'flaky', '--json')).stdout).runId;
    for (let i = 0; i < 10 && ['pending', 'running'].includes(JSON.parse((await cli('status', runId, '--json')).stdout).status); i++) await cli('tick');
    expect(JSON.parse((await cli('status', runId, '--json')).stdout)).toMatchObject({ status: 'failed', tasks: { failed: 1, skipped: 1 } });
    const r = await cli('retry', runId, '--json');
    expect([r.code, JSON.parse(r.stdout)]).toEqual([0, { runId, retried: true, status: 'running', requeuedTasks: 1, resetTasks: 1 }]);
    // The second attempt of `a` succeeds (EMU_FAIL fails attempt 1 only), then `b` runs.
    for (let i = 0; i < 10 && ['pending', 'running'].includes(JSON.parse((await cli('status', runId, '--json')).stdout).status); i++) await cli('tick');
    expect(JSON.parse((await cli('status', runId, '--json')).stdout)).toMatchObject({ status: 'success', tasks: { success: 2 } });
    const again = await cli('retry', runId);
    expect([again.code, again.stderr.trim()]).toEqual([2, `tickrun: run ${runId} is success, not failed: only a failed run can be retried`]);
    expect((await cli('retry', 'not-a-uuid')).code).toBe(2);
  });

  it('a bad configuration value exits 2 naming the variable', async () => {
    const r = await runCli(['status'], { ...env, TICKRUN_STATUS_CONCURRENCY: 'lots' }, dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('tickrun: TICKRUN_STATUS_CONCURRENCY="lots" is not valid: it accepts a whole number from 1 to 1000');
  });

  it('a failure exits 1 with one line, and a stack trace only with TICKRUN_DEBUG=1', async () => {
    const closed = `postgres://tickrun:tickrun@127.0.0.1:${await freePort()}/tickrun`;
    const r = await runCli(['status'], { ...env, DATABASE_URL: closed }, dir);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^tickrun: .*ECONNREFUSED/);
    const debug = await runCli(['status'], { ...env, DATABASE_URL: closed, TICKRUN_DEBUG: '1' }, dir);
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('an unknown command or option exits 2', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('status', '--wat')).code).toBe(2);
  });
});
