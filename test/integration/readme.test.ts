import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copyCheckout } from '../helpers/checkout';

// The README's first screen, tried as a newcomer does: `npm start` on a fresh copy of the checkout prints
// what the README shows, the next steps it gives work while it runs, and Ctrl-C then `npm start` again goes
// on with the same database. The copy shares this checkout's node_modules: that stands in for
// `npm install`, which has already run here (and whose `prepare` only builds, as `npm start` does again).

const ROOT = path.resolve(__dirname, '..', '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/** The first fenced block of `lang` after the line that starts with `marker`. */
function blockAfter(marker: string, lang: string): string[] {
  const from = README.indexOf(`\n${marker}`);
  if (from === -1) throw new Error(`README.md has no line starting "${marker}"`);
  const open = README.indexOf('```' + lang + '\n', from);
  const close = README.indexOf('\n```', open + 3);
  return README.slice(open + lang.length + 4, close).split('\n');
}

/** A printed line of the README as a pattern: what differs from one machine to another is a wildcard. */
function linePattern(line: string): RegExp {
  const escaped = line.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const wild = escaped
    .replace(/RUN_ID/g, UUID)
    .replace(/PORT|8787/g, '\\d+')
    .replace(/…/g, '.*')
    .replace(/\\\(data in \\\.tickrun\/pg\\\)/, '\\(data in .*\\.tickrun/pg\\)')
    .replace(/\d+\\\.\d+s$/, '[\\d.]+s');
  return new RegExp(`^\\s*${wild}$`);
}

/** `npm start` in `dir`, in a process group of its own (Ctrl-C reaches npm and tickrun alike). */
function npmStart(dir: string, env: NodeJS.ProcessEnv): { proc: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const proc = spawn('npm', ['start'], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, out: () => out, exited };
}

async function waitFor(what: string, until: () => boolean, ms: number, seen: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!until()) {
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}; printed:\n${seen()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("the README's first screen, on a fresh copy of the checkout", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-readme-'));
  const output = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-readme-out-'));
  // The dashboard on a free port (the README's 8787 may be taken by another test); the example's files
  // under a folder of the test's own, as dev.test.ts does.
  const env = { PATH: process.env.PATH!, HOME: process.env.HOME ?? dir, TMPDIR: output, TICKRUN_DASHBOARD_PORT: '0' };
  let started: ReturnType<typeof npmStart> | undefined;
  const npx = (args: string[]) => spawnSync('npx', ['tickrun', ...args], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });

  beforeAll(() => {
    // A clone and a TMPDIR are made with the umask's 755; mkdtemp's 700 would keep the postgres user that
    // Postgres runs as (tickrun runs as root here) out of .tickrun/ and out of initdb's password file.
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(output, 0o755);
    copyCheckout(ROOT, dir, ['dist']);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  });
  afterAll(() => {
    // Still running only when it has neither exited nor been ended by a signal (Ctrl-C leaves exitCode null).
    if (started && started.proc.exitCode === null && started.proc.signalCode === null) process.kill(-started.proc.pid!, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(output, { recursive: true, force: true });
  });

  it('prints what it shows, runs the next steps it gives, and starts again after Ctrl-C with the runs kept', async () => {
    // npm start: what it prints, line by line in order (each README line matches a later printed line).
    started = npmStart(dir, env);
    await waitFor('the first run to end', () => /run \S+ (success|failed) in/.test(started!.out()) || started!.proc.exitCode !== null, 120_000, started.out);
    expect([started.proc.exitCode, started.out()]).toEqual([null, expect.stringMatching(/run \S+ success in/)]);
    const printed = started.out().split('\n');
    let at = 0;
    for (const line of blockAfter('`npm start` prints', 'text')) {
      if (line.trim() === '…' || line.trim() === '') continue;
      const pattern = linePattern(line);
      const found = printed.findIndex((p, i) => i >= at && pattern.test(p));
      expect([line, found >= 0]).toEqual([line, true]);
      at = found + 1;
    }
    expect(started.out()).toMatch(new RegExp(`run ${UUID} success in`));

    // The next steps, as written, with the RUN_ID the trigger printed.
    const dashboard = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(started.out())![1];
    expect((await fetch(dashboard)).status).toBe(200);
    const steps = blockAfter('Then, in another terminal', 'sh').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
    expect(steps.map((s) => s.split(' ').slice(0, 3).join(' '))).toEqual(['npx tickrun trigger', 'npx tickrun status', 'npx tickrun logs']);
    let runId = '';
    for (const step of steps) {
      const args = step.replace(/RUN_ID/g, runId).split(/\s+/).slice(2);
      if (args[0] === 'logs') {
        // The report task's output exists once the run has got that far.
        await waitFor('the triggered run to end', () => /"status": "success"/.test(npx(['status', runId, '--json']).stdout), 60_000);
      }
      const r = npx(args);
      expect([step, r.status, r.stderr]).toEqual([step, 0, '']);
      if (args[0] === 'trigger') runId = new RegExp(UUID).exec(r.stdout)![0];
      if (args[0] === 'status') expect(r.stdout).toContain(runId);
      if (args[0] === 'logs') expect(r.stdout).toMatch(new RegExp(`report for local-etl run ${runId}: \\d+ rows`));
    }

    // Ctrl-C, then npm start again in the same folder: the runs are kept, and a new one runs to success.
    process.kill(-started.proc.pid!, 'SIGINT');
    await started.exited;
    expect(started.out()).toMatch(/stopped\s*$/);
    started = npmStart(dir, env);
    await waitFor('the second start to tick', () => /ticking every/.test(started!.out()) || started!.proc.exitCode !== null, 120_000, started.out);
    expect(started.out()).toMatch(/ticking every/);
    const runs = JSON.parse(npx(['status', '--json']).stdout) as { id: string; status: string }[];
    expect(runs.map((r) => r.status)).toEqual(['success', 'success']);
    const again = npx(['trigger', 'local-etl', '--param', 'rows=2']);
    const next = new RegExp(UUID).exec(again.stdout)![0];
    await waitFor('a run after the restart to end', () => /"status": "success"/.test(npx(['status', next, '--json']).stdout), 60_000);
    process.kill(-started.proc.pid!, 'SIGINT');
    await started.exited;
    await waitFor('the second start to stop', () => /stopped\s*$/.test(started!.out()), 30_000, started.out);
  }, 300_000);
});
