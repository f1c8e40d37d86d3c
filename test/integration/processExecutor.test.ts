import fs from 'node:fs';
import path from 'node:path';
import { createProcessExecutor } from '../../shared/executors/process';
import { getRun } from '../../shared/model/runs';
import { cancelRun } from '../../shared/operator/cancel';
import { tick } from '../../shared/tick';
import { createHarness, type Harness } from '../helpers/harness';

// A script that records its environment and exits as the task's env asks: FAIL_UNTIL=n fails attempts below n.
const SCRIPT = `
const fs = require('fs');
const out = process.env.OUT_DIR + '/' + process.env.TICKRUN_TASK_NAME + '-' + process.env.TICKRUN_TASK_INDEX + '-' + process.env.TICKRUN_ATTEMPT + '.json';
fs.writeFileSync(out, JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('TICKRUN_')))));
console.log('hello from', process.env.TICKRUN_TASK_NAME);
if (Number(process.env.TICKRUN_ATTEMPT) < Number(process.env.FAIL_UNTIL || 0)) { console.error('boom'); process.exit(3); }
setTimeout(() => {}, Number(process.env.SLEEP_MS || 0));
`;

// A command that traps SIGTERM and goes on, as a task stuck in cleanup would; it writes its pid first.
const STUBBORN = `
process.on('SIGTERM', () => console.log('SIGTERM ignored'));
require('fs').writeFileSync(process.env.PID_FILE, String(process.pid));
setInterval(() => {}, 1000);
`;

// A command that writes its whole environment to ENV_FILE.
const PRINT_ENV = `require('fs').writeFileSync(process.env.ENV_FILE, JSON.stringify(process.env));`;

/** Whether a process still runs: gone, or a zombie nobody reaped, is not running. */
function running(pid: number): boolean {
  try {
    if (fs.existsSync('/proc/self/stat')) return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z';
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `check` holds or `ms` have passed; returns whether it held. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (check()) return true;
  return check();
}

describe('process executor through the tick', () => {
  let h: Harness;
  let dir: string;
  let out: string;
  beforeAll(async () => {
    h = await createHarness({ TICKRUN_POLL_INTERVAL: '100ms' });
    dir = path.join(h.home, 'wf');
    out = path.join(h.home, 'out');
    fs.mkdirSync(dir);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(dir, 'task.js'), SCRIPT);
  });
  afterAll(() => h.close());

  const workflow = (name: string, extra = '') => `
name: ${name}
defaults:
  executor: process
  command: ["node", "task.js"]
  env: { OUT_DIR: "${'$'}{OUT}" }
${extra}`;

  it('runs a fan-out → join → final DAG to success, in the workflow folder, with the contract environment', async () => {
    await h.apply(
      workflow('dag').replace('${OUT}', out) +
        `tasks:
  extract: { count: 3 }
  join: { depends_on: [extract] }
  final: { depends_on: [join] }
`,
      dir,
    );
    const runId = await h.trigger('dag', { day: '2026-11-27' });
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('success');
    expect(run.tasks).toEqual({ success: 5 });
    const files = fs.readdirSync(out).sort();
    expect(files).toEqual(['extract-0-1.json', 'extract-1-1.json', 'extract-2-1.json', 'final-0-1.json', 'join-0-1.json']);
    const tasks = await h.tasks(runId);
    const join = tasks.find((t) => t.name === 'join')!;
    const env = JSON.parse(fs.readFileSync(path.join(out, 'join-0-1.json'), 'utf8'));
    expect(env).toEqual({
      TICKRUN_WORKFLOW: 'dag',
      TICKRUN_RUN_ID: runId,
      TICKRUN_TASK_ID: join.id,
      TICKRUN_TASK_NAME: 'join',
      TICKRUN_TASK_INDEX: '0',
      TICKRUN_ATTEMPT: '1',
      TICKRUN_PARAMS: JSON.stringify({ day: '2026-11-27' }),
    });
    // The join started only after every extract ended: its output file is newer than theirs.
    const mtime = (f: string) => fs.statSync(path.join(out, f)).mtimeMs;
    expect(mtime('join-0-1.json')).toBeGreaterThanOrEqual(Math.max(mtime('extract-0-1.json'), mtime('extract-1-1.json'), mtime('extract-2-1.json')));
    // Output is kept in a log per attempt.
    const log = fs.readFileSync(path.join(h.home, join.executionName!.slice('process:'.length), 'output.log'), 'utf8');
    expect(log).toContain('hello from join');
  });

  it('retries a failing attempt and records the failure text of the last one', async () => {
    fs.rmSync(out, { recursive: true });
    fs.mkdirSync(out);
    await h.apply(
      workflow('flaky').replace('${OUT}', out) +
        `  retries: 2
  backoff: 0s
tasks:
  once: { env: { FAIL_UNTIL: "2" } }
  never: { env: { FAIL_UNTIL: "99" } }
`,
      dir,
    );
    const run = await h.runToEnd(await h.trigger('flaky'));
    expect(run.status).toBe('failed');
    const tasks = await h.tasks(run.id);
    expect(tasks.find((t) => t.name === 'once')).toMatchObject({ status: 'success', attempt: 2, error: null });
    expect(tasks.find((t) => t.name === 'never')).toMatchObject({ status: 'failed', attempt: 3 });
    expect(tasks.find((t) => t.name === 'never')!.error).toMatch(/exited with code 3.*boom/s);
    expect(run.error).toMatch(/^never\[0\]: exited with code 3/);
  });

  it('cancels an attempt past its timeout and counts it as failed', async () => {
    await h.apply(
      workflow('slow').replace('${OUT}', out) +
        `tasks:
  sleepy: { timeout: 500ms, env: { SLEEP_MS: "60000" } }
`,
      dir,
    );
    const run = await h.runToEnd(await h.trigger('slow'), { pauseMs: 100 });
    expect(run.status).toBe('failed');
    const [task] = await h.tasks(run.id);
    expect(task).toMatchObject({ status: 'failed', attempt: 1, error: 'timed out after 500ms' });
    // The process group was killed: the pid recorded for the attempt is gone.
    const pid = Number(fs.readFileSync(path.join(h.home, task.executionName!.slice('process:'.length), 'pid'), 'utf8'));
    await new Promise((r) => setTimeout(r, 200));
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('kills a task that ignores SIGTERM once the grace after it has passed, with no later tick', async () => {
    const pidFile = path.join(out, 'stubborn.pid');
    fs.writeFileSync(path.join(dir, 'stubborn.js'), STUBBORN);
    await h.apply(`name: stubborn\ntasks:\n  hold: { executor: process, command: ["node", "stubborn.js"], env: { PID_FILE: "${pidFile}" } }\n`, dir);
    const runId = await h.trigger('stubborn');
    const executors = { ...h.deps.executors, process: createProcessExecutor(h.home, { killGraceMs: 1000 }) };
    const deps = { ...h.deps, executors };
    for (let i = 0; i < 50 && !fs.existsSync(pidFile); i++) {
      await tick(deps, { budgetMs: 0 });
      await new Promise((r) => setTimeout(r, 50));
    }
    await eventually(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8') !== '', 5000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(running(pid)).toBe(true);
    expect(await cancelRun(h.db.pool, h.config, executors, runId)).toMatchObject({ status: 'cancelled', executionsCancelled: 1, errors: [] });
    // SIGTERM was sent and ignored: the task still runs inside its grace...
    await new Promise((r) => setTimeout(r, 300));
    expect(running(pid)).toBe(true);
    const [task] = await h.tasks(runId);
    expect(fs.readFileSync(path.join(h.home, task.executionName!.slice('process:'.length), 'output.log'), 'utf8')).toContain('SIGTERM ignored');
    // ...and is killed after it, though no tick comes back to it (the attempt is recorded cancelled).
    expect(await eventually(() => !running(pid), 3000)).toBe(true);
    expect((await getRun(h.db.pool, runId)).status).toBe('cancelled');
  });

  it('a cancel that finds SIGTERM sent longer ago than the grace kills the task (a later tick, in another process)', async () => {
    const pidFile = path.join(out, 'stubborn-late.pid');
    const executor = createProcessExecutor(h.home, { killGraceMs: 5000 });
    const name = await executor.dispatch({
      taskId: 'late-kill', runId: 'r', workflow: 'w', taskName: 'hold', index: 0, attempt: 1, params: {},
      spec: { executor: 'process', command: ['node', 'stubborn.js'], env: { PID_FILE: pidFile } } as never, workflowDir: dir,
    });
    expect(await eventually(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8') !== '', 5000)).toBe(true);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await executor.cancel(name);
    await new Promise((r) => setTimeout(r, 300));
    expect(running(pid)).toBe(true);
    expect(await executor.status(name)).toEqual({ state: 'running' });
    // The SIGTERM as a later tick finds it: sent 10 s ago, past the 5 s grace.
    const folder = path.join(h.home, name.slice('process:'.length));
    fs.writeFileSync(path.join(folder, 'cancelled'), new Date(Date.now() - 10_000).toISOString());
    await createProcessExecutor(h.home, { killGraceMs: 5000 }).cancel(name);
    expect(await eventually(() => !running(pid), 1000)).toBe(true);
    // Once its process group is gone, the attempt reads as cancelled.
    let state = '';
    for (let i = 0; i < 20 && state !== 'cancelled'; i++, await new Promise((r) => setTimeout(r, 50))) state = (await executor.status(name)).state;
    expect(state).toBe('cancelled');
  });

  it('gives a task only the allow-listed environment of the machine, its own env and the TICKRUN_* variables', async () => {
    const envFile = path.join(out, 'env.json');
    fs.writeFileSync(path.join(dir, 'env.js'), PRINT_ENV);
    const secrets = { PGPASSWORD: 'pg-secret', GOOGLE_APPLICATION_CREDENTIALS: '/keys/sa.json', PGHOST: 'db.internal', API_TOKEN: 'token' };
    Object.assign(process.env, secrets, { LC_TIME: 'C' });
    try {
      await h.apply(`name: envs\ntasks:\n  show: { executor: process, command: ["node", "env.js"], env: { ENV_FILE: "${envFile}", MODE: full } }\n`, dir);
      const run = await h.runToEnd(await h.trigger('envs'));
      expect(run.status).toBe('success');
    } finally {
      for (const k of [...Object.keys(secrets), 'LC_TIME']) delete process.env[k];
    }
    const env = JSON.parse(fs.readFileSync(envFile, 'utf8'));
    for (const k of Object.keys(secrets)) expect(env).not.toHaveProperty(k);
    expect(env).toMatchObject({ PATH: process.env.PATH, LC_TIME: 'C', MODE: 'full', ENV_FILE: envFile, TICKRUN_TASK_NAME: 'show' });
    if (process.env.HOME) expect(env.HOME).toBe(process.env.HOME);
    // The shell that starts the command sets PWD to the workflow's folder, never the tick's.
    expect(env.PWD).toBe(dir);
    // Nothing else of the parent's: every variable is allow-listed, the task's own or the contract's.
    const own = ['ENV_FILE', 'MODE', 'PWD'];
    const allowed = (k: string) => own.includes(k) || k.startsWith('TICKRUN_') || k.startsWith('LC_') ||
      ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TERM'].includes(k);
    expect(Object.keys(env).filter((k) => !allowed(k))).toEqual([]);
  });
});
