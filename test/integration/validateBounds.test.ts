import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli';

// Every duration, count and limit a workflow file can hold, each just outside its range, on a task and
// in the defaults block. `validate` needs no database: it reads the files only.
const TASK = 'job: j';
const cases: [string, string, string][] = [
  // [what, the workflow file's body under `name:`, the field the error must name]
  ['timeout above 168h', `tasks:\n  t: { ${TASK}, timeout: 169h }`, 'tasks.t.timeout'],
  ['timeout of 30 days', `tasks:\n  t: { ${TASK}, timeout: 30d }`, 'tasks.t.timeout'],
  ['timeout of 0s', `tasks:\n  t: { ${TASK}, timeout: 0s }`, 'tasks.t.timeout'],
  ['backoff above 10m', `tasks:\n  t: { ${TASK}, backoff: 11m }`, 'tasks.t.backoff'],
  ['backoff of 30 days', `tasks:\n  t: { ${TASK}, backoff: 30d }`, 'tasks.t.backoff'],
  ['count above 10000', `tasks:\n  t: { ${TASK}, count: 10001 }`, 'tasks.t.count'],
  ['count of 0', `tasks:\n  t: { ${TASK}, count: 0 }`, 'tasks.t.count'],
  ['task_count above 10000', `tasks:\n  t: { ${TASK}, task_count: 10001 }`, 'tasks.t.task_count'],
  ['task_count of 0', `tasks:\n  t: { ${TASK}, task_count: 0 }`, 'tasks.t.task_count'],
  ['retries above 100', `tasks:\n  t: { ${TASK}, retries: 101 }`, 'tasks.t.retries'],
  ['retries below 0', `tasks:\n  t: { ${TASK}, retries: -1 }`, 'tasks.t.retries'],
  ['concurrency above 100000', `concurrency: 100001\ntasks:\n  t: { ${TASK} }`, 'concurrency'],
  ['concurrency of 0', `concurrency: 0\ntasks:\n  t: { ${TASK} }`, 'concurrency'],
  ['defaults timeout above 168h', `defaults: { timeout: 8d }\ntasks:\n  t: { ${TASK} }`, 'defaults.timeout'],
  ['defaults backoff above 10m', `defaults: { backoff: 1h }\ntasks:\n  t: { ${TASK} }`, 'defaults.backoff'],
  ['defaults count above 10000', `defaults: { count: 20000 }\ntasks:\n  t: { ${TASK} }`, 'defaults.count'],
  ['defaults task_count above 10000', `defaults: { task_count: 20000 }\ntasks:\n  t: { ${TASK} }`, 'defaults.task_count'],
  ['defaults retries above 100', `defaults: { retries: 1000 }\ntasks:\n  t: { ${TASK} }`, 'defaults.retries'],
];

describe('tickrun validate: every duration, count and limit has a range', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-bounds-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const validate = (body: string) => {
    const file = path.join(dir, 'flow.yaml');
    fs.writeFileSync(file, `name: bounds\n${body}\n`);
    return runCli(['validate', file], { TICKRUN_HOME: path.join(dir, '.tickrun') }, dir);
  };

  it.each(cases)('refuses %s with exit 2, naming the field', async (_what, body, field) => {
    const r = await validate(body);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('flow.yaml');
    expect(r.stderr).toContain(`field "${field}"`);
    expect(r.stdout).toBe('');
  });

  it('accepts each field at the top of its range', async () => {
    const r = await validate(
      `concurrency: 100000\ndefaults: { retries: 100, backoff: 10m, timeout: 168h }\ntasks:\n  t: { ${TASK}, count: 10000, task_count: 10000 }`,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok .*flow\.yaml: bounds \(1 tasks\)/);
  });

  it('says the bound of a duration and why', async () => {
    const timeout = await validate(`tasks:\n  t: { ${TASK}, timeout: 30d }`);
    expect(timeout.stderr).toMatch(/field "tasks\.t\.timeout": at most 168h: Cloud Run stops a task after 168 hours/);
    const backoff = await validate(`tasks:\n  t: { ${TASK}, backoff: 30d }`);
    expect(backoff.stderr).toMatch(/field "tasks\.t\.backoff": at most 10m: .*capped at 10m/);
  });
});
