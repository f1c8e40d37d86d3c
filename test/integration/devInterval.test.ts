import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

// `npm start` as a new user meets it: the default profile (a 5 s poll interval) and the local example,
// three layers of tasks that each take well under a second. Its run should take about as long as its
// tasks, not a poll interval or two per layer.
describe('tickrun dev with the default profile', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-dev-interval-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('runs the three-layer local example in less than one poll interval', async () => {
    const output = path.join(home, 'example-output');
    fs.mkdirSync(output);
    const env = { PATH: process.env.PATH!, TICKRUN_HOME: home, TMPDIR: output, TICKRUN_DASHBOARD_PORT: '0' };
    const dev = spawn(process.execPath, [path.join(ROOT, 'bin', 'tickrun.js'), 'dev'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dev.stdout.on('data', (d) => (out += d));
    dev.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => dev.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (!/run \S+ (success|failed) in/.test(out) && Date.now() < deadline && dev.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    dev.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toMatch(/ticking every 5s/);
    const took = /run \S+ success in ([\d.]+)s/.exec(out);
    expect(took).not.toBeNull();
    expect(Number(took![1])).toBeLessThan(5);
  }, 90_000);
});
