import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli';

const ROOT = path.resolve(__dirname, '..', '..');
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

// `tickrun dev` on a .tickrun/ it made before: after a clean stop (Ctrl-C), after `kill -9` of its whole
// process group (Postgres killed too, its postmaster.pid left behind), and while another dev of the same
// folder runs. Each start must reach a run's success; the refused one must say what runs and where.
describe('tickrun dev, started again in the same folder', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-restart-'));
  const output = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-restart-out-'));
  // Postgres runs as its own user under root: it must reach the folder and initdb's password file.
  fs.chmodSync(home, 0o755);
  fs.chmodSync(output, 0o755);
  const env = { PATH: process.env.PATH!, TICKRUN_HOME: home, TICKRUN_POLL_INTERVAL: '300ms', TMPDIR: output, TICKRUN_DASHBOARD_PORT: '0' };
  let dev: { proc: ChildProcess; out: () => string; exited: Promise<number | null> } | undefined;

  function startDev() {
    const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'tickrun.js'), 'dev'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    return { proc, out: () => out, exited };
  }

  async function waitFor(what: string, until: () => boolean, ms = 90_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!until()) {
      if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}; dev printed:\n${dev?.out()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Starts dev and has a new run of the local example reach success through it. */
  async function startAndRun(): Promise<string> {
    dev = startDev();
    await waitFor('dev to tick', () => /ticking every/.test(dev!.out()) || dev!.proc.exitCode !== null);
    expect([dev.proc.exitCode, dev.out()]).toEqual([null, expect.stringMatching(/ticking every/)]);
    const triggered = await runCli(['trigger', 'local-etl', '--json'], { TICKRUN_HOME: home }, ROOT);
    expect(triggered.code).toBe(0);
    const runId = UUID.exec(triggered.stdout)![0];
    let status = '';
    for (let i = 0; i < 300 && !/^(success|failed|cancelled)$/.test(status); i++) {
      status = JSON.parse((await runCli(['status', runId, '--json'], { TICKRUN_HOME: home }, ROOT)).stdout).status;
      if (!/^(success|failed|cancelled)$/.test(status)) await new Promise((r) => setTimeout(r, 200));
    }
    expect([runId, status]).toEqual([runId, 'success']);
    return runId;
  }

  afterAll(() => {
    // Still running only when it has neither exited nor been ended by a signal (Ctrl-C leaves exitCode null).
    if (dev && dev.proc.exitCode === null && dev.proc.signalCode === null) process.kill(-dev.proc.pid!, 'SIGKILL');
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(output, { recursive: true, force: true });
  });

  it('after a clean stop (Ctrl-C), a new run reaches success', async () => {
    await startAndRun();
    process.kill(-dev!.proc.pid!, 'SIGINT');
    expect(await dev!.exited).toBe(0);
    await startAndRun();
  }, 240_000);

  it('refuses a second dev of the same folder, naming the one that runs and how to reach it', async () => {
    const url = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(dev!.out())![1];
    const second = await runCli(['dev'], { ...env }, ROOT);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`tickrun dev already runs here (pid ${dev!.proc.pid}`);
    expect(second.stderr).toContain(url);
    // The first goes on.
    expect((await fetch(url)).status).toBe(200);
  }, 120_000);

  it('after kill -9 of its whole process group (a stale postmaster.pid), a new run reaches success', async () => {
    process.kill(-dev!.proc.pid!, 'SIGKILL');
    await dev!.exited;
    expect(fs.existsSync(path.join(home, 'pg', 'postmaster.pid'))).toBe(true);
    await startAndRun();
    process.kill(-dev!.proc.pid!, 'SIGINT');
    expect(await dev!.exited).toBe(0);
  }, 240_000);
});
