import { execFile } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { UsageError, WorkflowError } from '../../shared/errors';
import { formatDuration, parseDuration } from '../../shared/workflows/duration';
import { loadWorkflowFiles, WorkflowErrors } from '../../shared/workflows/load';
import { checkWorkflow, parseWorkflow } from '../../shared/workflows/parse';
import { checkSchedule, nextScheduleSlot } from '../../shared/workflows/schedule';

const execFileAsync = promisify(execFile);
const EXAMPLES = path.resolve(__dirname, '../../examples');
const readExample = (name: string) => readFileSync(path.join(EXAMPLES, name), 'utf8');

/** The error parseWorkflow throws for `text`, which must be a WorkflowError. */
function refusal(text: string, file = 'flows/bad.yaml'): WorkflowError {
  try {
    parseWorkflow(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowError);
    return err as WorkflowError;
  }
  throw new Error('parseWorkflow accepted the file');
}

describe('the examples', () => {
  it('local-etl resolves to process tasks run from the examples folder', () => {
    const wf = parseWorkflow(readExample('local-etl.yaml'), path.join(EXAMPLES, 'local-etl.yaml'));
    expect(wf.name).toBe('local-etl');
    expect(wf.dir).toBe(EXAMPLES);
    expect(wf.tasks.extract).toEqual({
      executor: 'process',
      command: ['node', 'scripts/extract.js'],
      count: 3,
      env: {},
      dependsOn: [],
      ancestors: [],
      retries: 1,
      backoffMs: 1_000,
      timeoutMs: 60_000,
    });
    expect(wf.tasks.transform.dependsOn).toEqual(['extract']);
    expect(wf.tasks.report.ancestors).toEqual(['extract', 'transform']);
  });

  it('local-etl runs to success with just node, writing outside the checkout', async () => {
    const wf = parseWorkflow(readExample('local-etl.yaml'), path.join(EXAMPLES, 'local-etl.yaml'));
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'tickrun-test-'));
    try {
      // Each task as the process executor runs it: its argv, in the workflow's folder, with the TICKRUN_* env.
      const run = async (name: string, index: number) => {
        const [program, ...args] = wf.tasks[name].command!;
        const env = { ...process.env, EXAMPLE_OUTPUT_DIR: out, TICKRUN_RUN_ID: 'r1', TICKRUN_TASK_INDEX: String(index), TICKRUN_PARAMS: '{"rows":"2"}' };
        const { stdout, stderr } = await execFileAsync(program === 'node' ? process.execPath : program, args, { cwd: wf.dir, env });
        expect(stderr).toBe('');
        return stdout;
      };
      await Promise.all(Array.from({ length: wf.tasks.extract.count }, (_, i) => run('extract', i)));
      await run('transform', 0);
      expect(await run('report', 0)).toMatch(/6 rows from 3 shards/);
      expect((await fs.readdir(path.join(out, 'r1'))).sort()).toEqual(['extract-0.json', 'extract-1.json', 'extract-2.json', 'transform.json']);
    } finally {
      await fs.rm(out, { recursive: true, force: true });
    }
  });

  it('cloudrun-etl merges its defaults into every task', () => {
    const wf = parseWorkflow(readExample('cloudrun-etl.yaml'), path.join(EXAMPLES, 'cloudrun-etl.yaml'));
    expect(wf).toMatchObject({ name: 'cloudrun-etl', concurrency: 20, description: 'Nightly orders ETL on Cloud Run Jobs' });
    expect(wf.schedule).toBeUndefined();
    expect(wf.tasks.extract).toEqual({
      executor: 'cloudrun',
      job: 'orders-extract',
      project: 'my-project',
      region: 'us-central1',
      count: 4,
      args: ['--shards=4'],
      env: { DATASET: 'orders', MODE: 'full' },
      dependsOn: [],
      ancestors: [],
      retries: 2,
      backoffMs: 30_000,
      timeoutMs: 1_800_000,
    });
    expect(wf.tasks.transform).toMatchObject({ taskCount: 50, count: 1, timeoutMs: 3_600_000, dependsOn: ['extract'] });
    expect(wf.tasks.load).toMatchObject({ project: 'my-warehouse', region: 'europe-west1', retries: 0, dependsOn: ['transform', 'check'] });
    expect(wf.tasks.load.ancestors).toEqual(['check', 'extract', 'transform']);
  });
});

describe('parseWorkflow', () => {
  it('applies the contract defaults and keeps env scalars as written', () => {
    const wf = parseWorkflow('name: a\nschedule: "*/5 * * * *"\ntasks:\n  x:\n    job: j\n    env: {PORT: 8080, ZIP: 01234, V: 1.10, ON: true}\n    args: [--n, 5]\n', 'a.yaml');
    expect(wf.schedule).toBe('*/5 * * * *');
    expect(wf.dir).toBe(process.cwd());
    expect(wf.tasks.x).toEqual({
      executor: 'cloudrun', job: 'j', count: 1, args: ['--n', '5'], env: { PORT: '8080', ZIP: '01234', V: '1.10', ON: 'true' },
      dependsOn: [], ancestors: [], retries: 0, backoffMs: 10_000,
    });
  });

  it('drops defaulted fields of the other executor, and takes project/region from a full job name', () => {
    const wf = parseWorkflow(
      'name: a\ndefaults: {project: p, region: r, command: [node, x.js]}\ntasks:\n  c: {job: projects/q/locations/l/jobs/j}\n  p: {executor: process, depends_on: [c, c]}\n',
      'a.yaml',
    );
    expect(wf.tasks.c).toMatchObject({ project: 'q', region: 'l' });
    expect(wf.tasks.c.command).toBeUndefined();
    expect(wf.tasks.p).toMatchObject({ command: ['node', 'x.js'], dependsOn: ['c'] });
    expect(wf.tasks.p.project).toBeUndefined();
  });

  const job = '{job: j}';
  it.each([
    ['a cycle', 'name: a\ntasks:\n  x: {job: j, depends_on: [z]}\n  y: {job: j, depends_on: [x]}\n  z: {job: j, depends_on: [y]}\n', 'x', 'tasks.x.depends_on', /cycle: "x" depends on "z", "z" depends on "y", "y" depends on "x"/],
    ['a task depending on itself', `name: a\ntasks:\n  x: ${job}\n  y: {job: j, depends_on: [y]}\n`, 'y', 'tasks.y.depends_on', /"y" depends on "y"/],
    ['an unknown dependency', `name: a\ntasks:\n  x: ${job}\n  load: {job: j, depends_on: [x, nope]}\n`, 'load', 'tasks.load.depends_on', /"nope" is not a task/],
    ['a cloudrun task without job', 'name: a\ntasks:\n  x: {count: 2}\n', 'x', 'tasks.x.job', /cloudrun task needs job/],
    ['a process task without command', 'name: a\ntasks:\n  x: {executor: process}\n', 'x', 'tasks.x.command', /process task needs command/],
    ['an empty command', 'name: a\ntasks:\n  x: {executor: process, command: []}\n', 'x', 'tasks.x.command', /program to run/],
    ['a command that is not a list', 'name: a\ntasks:\n  x: {executor: process, command: node x.js}\n', 'x', 'tasks.x.command', /as a list/],
    ['command on a cloudrun task', 'name: a\ntasks:\n  x: {job: j, command: [node]}\n', 'x', 'tasks.x.command', /for process tasks/],
    ['job on a process task', 'name: a\ntasks:\n  x: {executor: process, command: [node], job: j}\n', 'x', 'tasks.x.job', /for cloudrun tasks/],
    ['a malformed job', 'name: a\ntasks:\n  x: {job: projects/p/jobs/j}\n', 'x', 'tasks.x.job', /job id .* or its full name/],
    ['a project contradicting the full job name', 'name: a\ntasks:\n  x: {job: projects/p/locations/l/jobs/j, project: q}\n', 'x', 'tasks.x.project', /contradicts/],
    ['an unknown top-level field', `name: a\nowner: me\ntasks:\n  x: ${job}\n`, undefined, 'owner', /unknown field "owner"/],
    ['an unknown task field', 'name: a\ntasks:\n  x: {job: j, dependson: [y]}\n', 'x', 'tasks.x.dependson', /unknown field "dependson"; .*depends_on/],
    ['an unknown defaults field', `name: a\ndefaults: {retry: 2}\ntasks:\n  x: ${job}\n`, undefined, 'defaults.retry', /unknown field "retry"/],
    ['depends_on in defaults', `name: a\ndefaults: {depends_on: [x]}\ntasks:\n  x: ${job}\n`, undefined, 'defaults.depends_on', /not allowed in defaults/],
    ['a bad duration in a task', 'name: a\ntasks:\n  x: {job: j, timeout: 10 minutes}\n', 'x', 'tasks.x.timeout', /not a duration/],
    ['a duration without unit in defaults', `name: a\ndefaults: {backoff: 10}\ntasks:\n  x: ${job}\n`, undefined, 'defaults.backoff', /duration like 90s/],
    ['a zero timeout', 'name: a\ntasks:\n  x: {job: j, timeout: 0s}\n', 'x', 'tasks.x.timeout', /longer than 0s/],
    ['a bad cron', `name: a\nschedule: "61 * * * *"\ntasks:\n  x: ${job}\n`, undefined, 'schedule', /not a valid cron/],
    ['a six-field cron', `name: a\nschedule: "0 */5 * * * *"\ntasks:\n  x: ${job}\n`, undefined, 'schedule', /has 6 fields; a schedule is five fields/],
    ['a cron shorthand', `name: a\nschedule: "@daily"\ntasks:\n  x: ${job}\n`, undefined, 'schedule', /shorthands/],
    ['a hashed cron', `name: a\nschedule: "H * * * *"\ntasks:\n  x: ${job}\n`, undefined, 'schedule', /hashed/],
    ['an unknown time zone', `name: a\nschedule: "0 * * * *"\ntimezone: Mars/Olympus\ntasks:\n  x: ${job}\n`, undefined, 'timezone', /"Mars\/Olympus" is not a time zone: write an IANA name/],
    ['a time zone without a schedule', `name: a\ntimezone: Europe/Paris\ntasks:\n  x: ${job}\n`, undefined, 'timezone', /only applies to a schedule/],
    ['an unknown catchup policy', `name: a\nschedule: "0 * * * *"\ncatchup: some\ntasks:\n  x: ${job}\n`, undefined, 'catchup', /latest .* or all/],
    ['an upper-case name', `name: Nightly\ntasks:\n  x: ${job}\n`, undefined, 'name', /lower-case letters/],
    ['a name starting with a digit', `name: 1etl\ntasks:\n  x: ${job}\n`, undefined, 'name', /starting with a letter/],
    ['a name too long', `name: ${'a'.repeat(64)}\ntasks:\n  x: ${job}\n`, undefined, 'name', /at most 63/],
    ['a missing name', `tasks:\n  x: ${job}\n`, undefined, 'name', /required/],
    ['no tasks', 'name: a\ntasks: {}\n', undefined, 'tasks', /at least one task/],
    ['a bad task name', `name: a\ntasks:\n  "load data": ${job}\n`, 'load data', 'tasks.load data', /task names are letters/],
    ['a task named __proto__', `name: a\ntasks:\n  __proto__: ${job}\n`, '__proto__', 'tasks.__proto__', /cannot be used/],
    ['a zero count', 'name: a\ntasks:\n  x: {job: j, count: 0}\n', 'x', 'tasks.x.count', /1 or more/],
    ['a fractional count', 'name: a\ntasks:\n  x: {job: j, count: 1.5}\n', 'x', 'tasks.x.count', /whole number/],
    ['a count over the cap', 'name: a\ntasks:\n  x: {job: j, count: 10001}\n', 'x', 'tasks.x.count', /at most 10000/],
    ['a zero concurrency', `name: a\nconcurrency: 0\ntasks:\n  x: ${job}\n`, undefined, 'concurrency', /1 or more/],
    ['negative retries', 'name: a\ntasks:\n  x: {job: j, retries: -1}\n', 'x', 'tasks.x.retries', /0 or more/],
    ['an unknown executor', 'name: a\ntasks:\n  x: {executor: lambda}\n', 'x', 'tasks.x.executor', /cloudrun or process/],
    ['an env value that is a list', 'name: a\ntasks:\n  x: {job: j, env: {A: [1]}}\n', 'x', 'tasks.x.env.A', /expected a string/],
    ['an empty env value', 'name: a\ntasks:\n  x:\n    job: j\n    env: {A: }\n', 'x', 'tasks.x.env.A', /empty value/],
    ['a reserved env name', 'name: a\ntasks:\n  x: {job: j, env: {TICKRUN_RUN_ID: x}}\n', 'x', 'tasks.x.env.TICKRUN_RUN_ID', /reserved/],
    ["an array task's reserved env name", 'name: a\ntasks:\n  x: {job: j, env: {TICKRUN_TASK_INDEXES: "0"}}\n', 'x', 'tasks.x.env.TICKRUN_TASK_INDEXES', /reserved/],
    ['array on a process task', 'name: a\ntasks:\n  x: {executor: process, command: [node], array: true}\n', 'x', 'tasks.x.array', /for cloudrun tasks/],
    ['array with task_count', 'name: a\ntasks:\n  x: {job: j, array: true, count: 5, task_count: 3}\n', 'x', 'tasks.x.task_count', /task_count and array do not go together/],
    ['array that is not a boolean', 'name: a\ntasks:\n  x: {job: j, array: yes please}\n', 'x', 'tasks.x.array', /true or false/],
    ['a parallelism in the workflow', 'name: a\ntasks:\n  x: {job: j, array: true, count: 5, parallelism: 10}\n', 'x', 'tasks.x.parallelism', /set on the Cloud Run job .* jobs.run cannot override it/],
    ['a task that is not a mapping', 'name: a\ntasks:\n  x: extract\n', 'x', 'tasks.x', /mapping of task fields/],
    ['a YAML syntax error', 'name: a\ntasks:\n  x: {job: j\n  y: {job: j}\n', undefined, undefined, /invalid YAML at line \d+, column \d+/],
    ['a duplicate YAML key', `name: a\nname: b\ntasks:\n  x: ${job}\n`, undefined, undefined, /invalid YAML at line 2, column 1: Map keys must be unique/],
    ['an empty file', '', undefined, undefined, /mapping with name and tasks/],
  ])('refuses %s', (_what, text, task, field, reason) => {
    const err = refusal(text);
    expect({ file: err.file, task: err.task, field: err.field }).toEqual({ file: 'flows/bad.yaml', task, field });
    expect(err.reason).toMatch(reason);
    expect(err.message).toContain('flows/bad.yaml');
    if (task) expect(err.message).toContain(`task "${task}"`);
    if (field) expect(err.message).toContain(`field "${field}"`);
  });

  it('checkWorkflow reports every problem of one stage at once', () => {
    const { errors } = checkWorkflow('name: a\nfoo: 1\ndefaults: {backoff: soon}\ntasks:\n  x: {job: j, count: 0}\n', 'a.yaml');
    expect(errors.map((e) => e.field).sort()).toEqual(['defaults.backoff', 'foo', 'tasks.x.count']);
  });
});

describe('durations', () => {
  it.each([
    ['90s', 90_000], ['10m', 600_000], ['2h', 7_200_000], ['500ms', 500], ['1h30m', 5_400_000],
    ['1d', 86_400_000], ['1m30s250ms', 90_250], ['0s', 0], [' 5s ', 5_000],
  ])('reads %p as %p ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '90', '1.5h', '-5s', '10 m', '30m1h', '1m1m', '5x', 'h', '1h 30m', `${'9'.repeat(20)}d`])('refuses %p', (text) => {
    expect(() => parseDuration(text)).toThrow(/duration|unit/);
  });

  it.each([
    [5_400_000, '1h30m'], [45_000, '45s'], [250, '250ms'], [0, '0s'], [90_061_001, '1d1h1m1s1ms'], [-1_500, '-1s500ms'],
  ])('writes %p ms as %p', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text.replace('-', ''))).toBe(Math.abs(ms));
  });
});

describe('schedules', () => {
  it('gives the next UTC slot strictly after the given time', () => {
    expect(nextScheduleSlot('*/5 * * * *', new Date('2024-01-01T00:05:00Z'))).toEqual(new Date('2024-01-01T00:10:00Z'));
    expect(nextScheduleSlot('*/5 * * * *', new Date('2024-01-01T00:04:59.999Z'))).toEqual(new Date('2024-01-01T00:05:00Z'));
    expect(nextScheduleSlot('0 2 * * *', new Date('2024-03-31T01:30:00+02:00'))).toEqual(new Date('2024-03-31T02:00:00Z'));
  });

  it('refuses a cron that never fires', () => {
    expect(() => checkSchedule('0 0 30 2 *')).toThrow(/not a valid cron/);
  });
});

describe('loadWorkflowFiles', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tickrun-wf-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  const write = async (name: string, text: string) => {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  };

  it('reads the examples folder', async () => {
    const loaded = await loadWorkflowFiles([EXAMPLES]);
    expect(loaded.map((l) => [path.basename(l.file), l.definition.name])).toEqual([
      ['cloudrun-etl.yaml', 'cloudrun-etl'],
      ['local-etl.yaml', 'local-etl'],
    ]);
  });

  it('reads files and folders recursively, each file once, skipping other extensions and hidden entries', async () => {
    await write('a.yaml', 'name: a\ntasks: {x: {job: j}}\n');
    await write('sub/b.yml', 'name: b\ntasks: {x: {job: j}}\n');
    await write('notes.txt', 'not a workflow');
    await write('.hidden/c.yaml', 'broken: [');
    const loaded = await loadWorkflowFiles([dir, path.join(dir, 'a.yaml')]);
    expect(loaded.map((l) => l.definition.name)).toEqual(['a', 'b']);
    expect(loaded[1].definition.dir).toBe(path.join(dir, 'sub'));
  });

  it('reports every error over every file and path at once', async () => {
    await write('a.yaml', 'name: a\ntasks: {x: {job: j}}\n');
    await write('b.yaml', 'name: b\ntasks:\n  x: {job: j, depends_on: [y]}\n  y: {job: j, depends_on: [x]}\n');
    await write('c.yml', 'name: c\nowner: me\ntasks: {x: {executor: process}}\n');
    await write('d.yaml', 'name: a\ntasks: {x: {job: j}}\n');
    await write('e.yaml', 'name: [\n');
    await fs.mkdir(path.join(dir, 'empty'));
    const missing = path.join(dir, 'missing.yaml');
    const err = await loadWorkflowFiles([dir, path.join(dir, 'empty'), missing]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowErrors);
    expect(err).toBeInstanceOf(UsageError);
    const { errors, message } = err as WorkflowErrors;
    expect(errors.map((e) => [path.relative(dir, e.file), e.task, e.field])).toEqual([
      ['empty', undefined, undefined],
      ['missing.yaml', undefined, undefined],
      ['b.yaml', 'x', 'tasks.x.depends_on'],
      ['c.yml', undefined, 'owner'],
      ['d.yaml', undefined, 'name'],
      ['e.yaml', undefined, undefined],
    ]);
    expect(errors[0].reason).toMatch(/no workflow files/);
    expect(errors[1].reason).toMatch(/no such file or folder/);
    // The duplicate names both files.
    expect(errors[4].message).toContain(path.join(dir, 'd.yaml'));
    expect(errors[4].message).toContain(path.join(dir, 'a.yaml'));
    expect(message.split('\n')).toEqual(errors.map((e) => e.message));
  });

  it('refuses an empty list of paths', async () => {
    await expect(loadWorkflowFiles([])).rejects.toThrow(UsageError);
  });
});

describe('dueSlots', () => {
  const { dueSlots } = require('../../shared/workflows/schedule') as typeof import('../../shared/workflows/schedule');
  it('lists the slots from `from` up to and including `until`, oldest first', () => {
    const slots = dueSlots('*/10 * * * *', 'UTC', new Date('2026-01-01T00:10:00Z'), new Date('2026-01-01T00:40:00Z'), 100);
    expect(slots.map((d) => d.toISOString())).toEqual(['2026-01-01T00:10:00.000Z', '2026-01-01T00:20:00.000Z', '2026-01-01T00:30:00.000Z', '2026-01-01T00:40:00.000Z']);
  });
  it('keeps only the newest `max` slots, also after a year of downtime at one slot a minute', () => {
    const slots = dueSlots('* * * * *', 'UTC', new Date('2025-01-01T00:00:00Z'), new Date('2026-01-01T00:00:30Z'), 3);
    expect(slots.map((d) => d.toISOString())).toEqual(['2025-12-31T23:58:00.000Z', '2025-12-31T23:59:00.000Z', '2026-01-01T00:00:00.000Z']);
  });
  it('is empty when no slot has come', () => {
    expect(dueSlots('0 0 * * *', 'UTC', new Date('2026-01-02T00:00:00Z'), new Date('2026-01-01T12:00:00Z'), 10)).toEqual([]);
  });
});

describe('dueSlots across DST', () => {
  const { dueSlots, nextScheduleSlot } = require('../../shared/workflows/schedule') as typeof import('../../shared/workflows/schedule');
  it('gives the slot that spring-forward moved out of the lost hour, as nextScheduleSlot does', () => {
    const from = nextScheduleSlot('30 2 * * *', new Date('2026-03-07T08:00:00Z'), 'America/New_York');
    expect(from.toISOString()).toBe('2026-03-08T07:30:00.000Z');
    expect(dueSlots('30 2 * * *', 'America/New_York', from, new Date('2026-03-08T07:40:00Z'), 100)).toEqual([from]);
  });
});
