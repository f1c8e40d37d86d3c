import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli';

const ROOT = path.resolve(__dirname, '..', '..');

// What `npm start` does on a fresh checkout: `tickrun dev` with its own embedded Postgres under the
// home folder, the examples applied, the process example triggered and run to success; Ctrl-C stops it.
describe('tickrun dev (npm start)', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-dev-'));
  const output = path.join(home, 'example-output');
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('runs the local example to success, serves the other commands meanwhile, and stops cleanly on SIGINT', async () => {
    fs.mkdirSync(output);
    const env = { PATH: process.env.PATH!, TICKRUN_HOME: home, TICKRUN_POLL_INTERVAL: '300ms', TMPDIR: output, TICKRUN_DASHBOARD_PORT: '0' };
    const dev = spawn(process.execPath, [path.join(ROOT, 'bin', 'tickrun.js'), 'dev'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dev.stdout.on('data', (d) => (out += d));
    dev.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => dev.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 90_000;
    while (!/run \S+ (success|failed)/.test(out) && Date.now() < deadline && dev.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(out).toMatch(/triggered local-etl: run [0-9a-f-]{36}/);
    expect(out).toMatch(/run [0-9a-f-]{36} success in/);
    for (const task of ['extract[0]', 'extract[1]', 'extract[2]', 'transform[0]', 'report[0]']) expect(out).toContain(task);

    // While dev runs, the other commands find its database through the home folder.
    const status = await runCli(['status', '--json'], { TICKRUN_HOME: home }, ROOT);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ workflow: 'local-etl', status: 'success', tasks: { success: 5 } })]);
    // The dashboard is served at the URL dev printed, over dev's database.
    const url = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)![1];
    expect(await (await fetch(url)).text()).toContain('<script src="app.js"></script>');
    const runs = (await (await fetch(`${url}api/runs`)).json()) as any;
    expect(runs.runs).toEqual([expect.objectContaining({ workflow: 'local-etl', status: 'success', tasks: { success: 5 } })]);
    // A second dev on the same home is refused, not started against the same data.
    const second = await runCli(['dev'], { TICKRUN_HOME: home }, ROOT);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/tickrun dev already runs here/);

    dev.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toMatch(/stopped\s*$/);
    expect(fs.existsSync(path.join(home, 'db.json'))).toBe(false);
    // The example wrote its report where it was told to (the TMPDIR tasks are given), not into the checkout.
    expect(fs.readdirSync(path.join(output, 'tickrun-example')).length).toBeGreaterThan(0);
  }, 120_000);
});
