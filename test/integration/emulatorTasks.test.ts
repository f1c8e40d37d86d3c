import { ExecutionsClient, JobsClient, TasksClient, type protos } from '@google-cloud/run';
import { PassThroughClient } from 'google-auth-library';
import { emulatorClientOptions } from '../../shared/emulatorClient';
import { behaviourFromEnv, logicalIndexes, startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';

// The emulator's Tasks API and per-task outcomes (test/helpers/emulatedTasks.ts), through the real clients.

type Task = protos.google.cloud.run.v2.ITask;
type ClientOptions = NonNullable<ConstructorParameters<typeof JobsClient>[0]>;
const LOCATION = 'projects/p1/locations/europe-west1';
const JOB = `${LOCATION}/jobs/fan`;
const MASK = 'nextPageToken,tasks.index,tasks.conditions';
const completed = (t: Task) => t.conditions?.find((c) => c.type === 'Completed');

describe('the emulator’s Cloud Run tasks', () => {
  let emu: CloudRunEmulator;
  let jobs: JobsClient;
  let executions: ExecutionsClient;
  let tasks: TasksClient;
  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    const options = () => emulatorClientOptions(emu.host, new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } })) as ClientOptions;
    jobs = new JobsClient(options());
    executions = new ExecutionsClient(options());
    tasks = new TasksClient(options());
  });
  afterAll(async () => {
    await Promise.all([jobs.close(), executions.close(), tasks.close()]);
    await emu.stop();
  });

  /** Runs `job` with these env vars and task count; the new execution's name. */
  async function run(vars: Record<string, string>, taskCount = 1, job = JOB): Promise<string> {
    const env = Object.entries(vars).map(([name, value]) => ({ name, value }));
    const [op] = await jobs.runJob({ name: job, overrides: { taskCount, containerOverrides: [{ env }] } });
    return (op.metadata as unknown as { name: string }).name;
  }
  const getExecution = async (name: string) => (await executions.getExecution({ name }))[0];
  /** Every task of an execution, page by page: the tasks and the number of pages. */
  async function listAll(parent: string, pageSize?: number, mask?: string): Promise<{ all: Task[]; pages: number }> {
    const all: Task[] = [];
    let request: protos.google.cloud.run.v2.IListTasksRequest | null = { parent, pageSize };
    let pages = 0;
    while (request) {
      const [page, next]: [Task[], protos.google.cloud.run.v2.IListTasksRequest | null, unknown] = await tasks.listTasks(request, { autoPaginate: false, ...(mask && { otherArgs: { headers: { 'x-goog-fieldmask': mask } } }) });
      all.push(...page);
      pages++;
      request = next;
    }
    return { all, pages };
  }
  const failedIndexes = (all: Task[]) => all.filter((t) => completed(t)?.state === 'CONDITION_FAILED').map((t) => t.index);

  it('an execution of 10,000 tasks whose logical indexes 17, 4242 and 9999 fail: counts 3 failed, 9,997 succeeded, and 10 pages of 1,000 show exactly those three', async () => {
    const name = await run({ TICKRUN_TASK_INDEXES: '0-9999', EMU_FAIL_INDEXES: '17,4242,9999' }, 10_000);
    const execution = await getExecution(name);
    expect(execution).toMatchObject({ taskCount: 10_000, failedCount: 3, succeededCount: 9997, runningCount: 0, cancelledCount: 0, retriedCount: 0 });
    expect(completed(execution)).toMatchObject({ state: 'CONDITION_FAILED', executionReason: 'NON_ZERO_EXIT_CODE', message: `Task ${name.split('/').pop()}-task17 failed with message: The container exited with an error (exit code 1).` });

    const before = emu.calls.listTasks;
    const { all, pages } = await listAll(name, 1000, MASK);
    expect(pages).toBe(10);
    expect(emu.calls.listTasks - before).toBe(10);
    expect(emu.fieldMasks.listTasks).toBe(MASK);
    expect(all.map((t) => t.index)).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
    expect(failedIndexes(all)).toEqual([17, 4242, 9999]);
    expect(all.filter((t) => completed(t)?.state === 'CONDITION_SUCCEEDED')).toHaveLength(9997);
    // The mask kept only what it names: no name, no attempt result.
    expect(all[17].name).toBe('');
    expect(all[17].lastAttemptResult).toBeNull();
    // The control surface names the failed tasks in short.
    const state = (await (await fetch(`http://${emu.host}/_emulator/state`)).json()) as { executions: { name: string; failedTasks?: string }[] };
    expect(state.executions.find((e) => e.name === name)!.failedTasks).toBe('17,4242,9999');
    expect(emu.executions.find((e) => e.name === name)!.failedTasks).toEqual(new Set([17, 4242, 9999]));
  });

  it('a retry of logical indexes 17, 4242 and 9999 at attempt 2 under EMU_FAIL=attempts<2 succeeds on all three; at attempt 1 all three fail', async () => {
    const vars = { TICKRUN_TASK_INDEXES: '17,4242,9999', EMU_FAIL_INDEXES: '17,4242,9999', EMU_FAIL: 'attempts<2' };
    const second = await run({ ...vars, TICKRUN_ATTEMPT: '2' }, 3);
    expect(await getExecution(second)).toMatchObject({ failedCount: 0, succeededCount: 3 });
    expect(completed(await getExecution(second))?.state).toBe('CONDITION_SUCCEEDED');
    const { all } = await listAll(second);
    expect(all.map((t) => [t.index, completed(t)?.state, t.lastAttemptResult?.exitCode])).toEqual([0, 1, 2].map((i) => [i, 'CONDITION_SUCCEEDED', 0]));

    const first = await run({ ...vars, TICKRUN_ATTEMPT: '1' }, 3);
    expect(await getExecution(first)).toMatchObject({ failedCount: 3, succeededCount: 0 });
    expect(failedIndexes((await listAll(first)).all)).toEqual([0, 1, 2]);
  });

  it('getTask answers one task: its index, its execution, its failed attempt, and NOT_FOUND past the last', async () => {
    const name = await run({ TICKRUN_TASK_INDEXES: '0-16,18-40', EMU_FAIL_INDEXES: '20' }, 40);
    const id = `${name.split('/').pop()}-task19`;
    const before = emu.calls.getTask;
    const [task] = await tasks.getTask({ name: `${name}/tasks/${id}` });
    expect(emu.calls.getTask - before).toBe(1);
    // Cloud Run task 19 ran logical index 20 (17 is not in the list).
    expect(task).toMatchObject({
      name: `${name}/tasks/${id}`, index: 19, execution: name, job: 'fan', retried: 0, maxRetries: 0,
      lastAttemptResult: { status: { code: 2, message: 'The container exited with an error (exit code 1).' }, exitCode: 1 },
    });
    expect(task.conditions).toEqual([
      expect.objectContaining({ type: 'Started', state: 'CONDITION_SUCCEEDED' }),
      expect.objectContaining({ type: 'Completed', state: 'CONDITION_FAILED', executionReason: 'NON_ZERO_EXIT_CODE', severity: 'ERROR', message: 'The container exited with an error (exit code 1).' }),
    ]);
    expect(task.completionTime).not.toBeNull();
    const [other] = await tasks.getTask({ name: `${name}/tasks/${name.split('/').pop()}-task0` });
    expect(other).toMatchObject({ index: 0, lastAttemptResult: { exitCode: 0 } });
    expect(completed(other)?.state).toBe('CONDITION_SUCCEEDED');
    await expect(tasks.getTask({ name: `${name}/tasks/${name.split('/').pop()}-task40` })).rejects.toMatchObject({ code: 404 });
    await expect(tasks.getTask({ name: `${name}/tasks/other-task1` })).rejects.toMatchObject({ code: 404 });
  });

  it('answers enums as numbers when the client asks, and as names otherwise', async () => {
    const name = await run({ EMU_FAIL_INDEXES: '3', TICKRUN_TASK_INDEX: '3' });
    const url = `http://${emu.host}/v2/${name}/tasks`;
    const asNumbers = (await (await fetch(`${url}?$alt=json;enum-encoding=int`)).json()) as { tasks: Record<string, unknown>[] };
    expect(asNumbers.tasks[0].conditions).toEqual([
      expect.objectContaining({ type: 'Started', state: 4 }),
      expect.objectContaining({ type: 'Completed', state: 3, executionReason: 2, severity: 1 }),
    ]);
    const asNames = (await (await fetch(url)).json()) as { tasks: Record<string, unknown>[] };
    expect(asNames.tasks[0].conditions).toEqual([
      expect.objectContaining({ type: 'Started', state: 'CONDITION_SUCCEEDED' }),
      expect.objectContaining({ type: 'Completed', state: 'CONDITION_FAILED', executionReason: 'NON_ZERO_EXIT_CODE', severity: 'ERROR' }),
    ]);
    const one = (await (await fetch(`${url}/${name.split('/').pop()}-task0?$alt=json;enum-encoding=int`)).json()) as Record<string, unknown>;
    expect(one).toMatchObject({ index: 0, conditions: [{ state: 4 }, { state: 3, executionReason: 2 }] });
  });

  it('a running execution’s tasks are not ended; once it ends they are', async () => {
    const name = await run({ TICKRUN_TASK_INDEXES: '0-2', EMU_FAIL_INDEXES: '1', EMU_DURATION_MS: '400' }, 3);
    expect(await getExecution(name)).toMatchObject({ runningCount: 3, failedCount: 0, succeededCount: 0 });
    const running = (await listAll(name)).all;
    expect(running.map((t) => completed(t)?.state)).toEqual(['CONDITION_RECONCILING', 'CONDITION_RECONCILING', 'CONDITION_RECONCILING']);
    expect(running.every((t) => t.completionTime === null && t.lastAttemptResult === null && t.reconciling === true)).toBe(true);
    await new Promise((r) => setTimeout(r, 450));
    expect(await getExecution(name)).toMatchObject({ runningCount: 0, failedCount: 1, succeededCount: 2 });
    expect((await listAll(name)).all.map((t) => completed(t)?.state)).toEqual(['CONDITION_SUCCEEDED', 'CONDITION_FAILED', 'CONDITION_SUCCEEDED']);
  });

  it('a cancelled execution’s tasks are all cancelled, none failed, even those that would have', async () => {
    const name = await run({ TICKRUN_TASK_INDEXES: '0-3', EMU_FAIL_INDEXES: '2', EMU_DURATION_MS: '60000' }, 4);
    await executions.cancelExecution({ name });
    expect(await getExecution(name)).toMatchObject({ cancelledCount: 4, failedCount: 0, succeededCount: 0, runningCount: 0 });
    const { all } = await listAll(name);
    expect(all.map((t) => completed(t))).toEqual(Array(4).fill(expect.objectContaining({ state: 'CONDITION_FAILED', executionReason: 'CANCELLED' })));
    expect(all.every((t) => t.lastAttemptResult === null)).toBe(true);
  });

  it('the tasks of an execution that failed to start never ran: no start, no attempt, the execution’s reason', async () => {
    emu.setBehaviour(() => ({ outcome: 'failed', durationMs: 0, startFailure: { reason: 'CONTAINER_MISSING', message: 'Image not found.' } }));
    try {
      const name = await run({}, 2);
      const { all } = await listAll(name);
      expect(all).toHaveLength(2);
      for (const t of all) {
        expect(t.conditions).toEqual([
          expect.objectContaining({ type: 'Started', state: 'CONDITION_FAILED', reason: 'CONTAINER_MISSING', message: 'Image not found.' }),
          expect.objectContaining({ type: 'Completed', state: 'CONDITION_FAILED', reason: 'CONTAINER_MISSING' }),
        ]);
        expect([t.startTime, t.completionTime, t.lastAttemptResult]).toEqual([null, null, null]);
      }
    } finally {
      emu.setBehaviour(behaviourFromEnv);
    }
  });

  it('keeps the defaults: EMU_FAIL=1 fails the first task of three, and a behaviour may list the failed tasks', async () => {
    const legacy = await run({ EMU_FAIL: '1' }, 3);
    expect(await getExecution(legacy)).toMatchObject({ failedCount: 1, succeededCount: 2 });
    expect(failedIndexes((await listAll(legacy)).all)).toEqual([0]);
    emu.setBehaviour(() => ({ outcome: 'success', durationMs: 0, failedTasks: [4, 1, 99] }));
    try {
      const listed = await run({}, 5);
      // Indexes past the task count are no task's; the outcome follows the tasks.
      expect(await getExecution(listed)).toMatchObject({ failedCount: 2, succeededCount: 3 });
      expect(completed(await getExecution(listed))).toMatchObject({ state: 'CONDITION_FAILED', message: expect.stringContaining('-task1 failed') });
      expect(failedIndexes((await listAll(listed)).all)).toEqual([1, 4]);
    } finally {
      emu.setBehaviour(behaviourFromEnv);
    }
  });

  it('pages 100 tasks by default and at most 1,000, and refuses a page token of another listing', async () => {
    const name = await run({}, 2500);
    expect((await tasks.listTasks({ parent: name }, { autoPaginate: false }))[0]).toHaveLength(100);
    const [big, next] = await tasks.listTasks({ parent: name, pageSize: 5000 }, { autoPaginate: false });
    expect(big).toHaveLength(1000);
    const other = await run({}, 2500);
    await expect(tasks.listTasks({ ...next!, parent: other }, { autoPaginate: false })).rejects.toMatchObject({ code: 400 });
    await expect(tasks.listTasks({ parent: name, pageToken: 'bm90IGEgdG9rZW4' }, { autoPaginate: false })).rejects.toMatchObject({ code: 400 });
    await expect(tasks.listTasks({ ...next!, showDeleted: true }, { autoPaginate: false })).rejects.toMatchObject({ code: 400 });
    expect((await tasks.listTasks(next!, { autoPaginate: false }))[0][0].index).toBe(1000);
  });

  it('NOT_FOUND for an unknown execution, and for the tasks of an execution removed by retention or with its job', async () => {
    await expect(tasks.listTasks({ parent: `${JOB}/executions/fan-zzzzz` }, { autoPaginate: false })).rejects.toMatchObject({ code: 404 });
    const kept = `${LOCATION}/jobs/kept`;
    const name = await run({}, 2, kept);
    const task = `${name}/tasks/${name.split('/').pop()}-task1`;
    expect((await tasks.getTask({ name: task }))[0].index).toBe(1);
    // Retention of none, over no days: the ended execution goes, and its tasks with it.
    emu.setRetention({ completed: 0, days: 0 });
    try {
      await expect(tasks.getTask({ name: task })).rejects.toMatchObject({ code: 404 });
      await expect(tasks.listTasks({ parent: name }, { autoPaginate: false })).rejects.toMatchObject({ code: 404 });
    } finally {
      emu.setRetention({ completed: 1000, days: 7 });
    }
    const gone = `${LOCATION}/jobs/gone`;
    const other = await run({}, 1, gone);
    emu.deleteJob(gone);
    await expect(tasks.listTasks({ parent: other }, { autoPaginate: false })).rejects.toMatchObject({ code: 404 });
  });

  it('PERMISSION_DENIED without run.tasks.list (listTasks) or run.tasks.get (getTask), each on its own', async () => {
    const job = `${LOCATION}/jobs/private`;
    const name = await run({}, 1, job);
    const task = `${name}/tasks/${name.split('/').pop()}-task0`;
    emu.denyPermission(job, 'run.tasks.list');
    await expect(tasks.listTasks({ parent: name }, { autoPaginate: false })).rejects.toMatchObject({ code: 403, message: expect.stringContaining("Permission 'run.tasks.list' denied") });
    expect((await tasks.getTask({ name: task }))[0].index).toBe(0);
    emu.denyPermission(job, 'run.tasks.get');
    await expect(tasks.getTask({ name: task })).rejects.toMatchObject({ code: 403, message: expect.stringContaining("Permission 'run.tasks.get' denied") });
  });

  it('counts listTasks and getTask from zero, and spends the read quota on them', async () => {
    const fresh = await startCloudRunEmulator();
    const options = emulatorClientOptions(fresh.host, new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } })) as ClientOptions;
    const [freshJobs, freshTasks] = [new JobsClient(options), new TasksClient(options)];
    try {
      expect(fresh.calls).toMatchObject({ listTasks: 0, getTask: 0 });
      const [op] = await freshJobs.runJob({ name: JOB, overrides: { taskCount: 2 } });
      const name = (op.metadata as unknown as { name: string }).name;
      fresh.setQuotas({ readPerMinute: 2 });
      await freshTasks.listTasks({ parent: name }, { autoPaginate: false });
      await freshTasks.getTask({ name: `${name}/tasks/${name.split('/').pop()}-task1` });
      await expect(freshTasks.listTasks({ parent: name }, { autoPaginate: false })).rejects.toMatchObject({ code: 429, message: expect.stringContaining("'Read requests per minute per region'") });
      expect(fresh.throttled).toEqual({ run: 0, read: 1, running: 0 });
      expect(fresh.calls).toMatchObject({ runJob: 1, listTasks: 2, getTask: 1 });
    } finally {
      await Promise.all([freshJobs.close(), freshTasks.close()]);
      await fresh.stop();
    }
  });

  it('startsByIndex counts each logical index an execution runs, per run, task name and attempt', async () => {
    const ids = { TICKRUN_RUN_ID: 'r-starts', TICKRUN_TASK_NAME: 'fan' };
    await run({ ...ids, TICKRUN_TASK_INDEXES: '0-16,18-40', TICKRUN_ATTEMPT: '1' }, 40);
    await run({ ...ids, TICKRUN_TASK_INDEXES: '17,40', TICKRUN_ATTEMPT: '2' }, 2);
    // The same retry sent twice: each of its indexes started twice at attempt 2.
    await run({ ...ids, TICKRUN_TASK_INDEXES: '17,40', TICKRUN_ATTEMPT: '2' }, 2);
    // A plain task's execution is one logical task, whatever its task count.
    await run({ ...ids, TICKRUN_TASK_NAME: 'plain', TICKRUN_TASK_INDEX: '5', TICKRUN_ATTEMPT: '1' }, 3);
    const starts = [...emu.startsByIndex()].filter(([key]) => key.startsWith('r-starts/'));
    expect(starts).toHaveLength(40 + 2 + 1);
    expect(new Map(starts)).toEqual(new Map([
      ...Array.from({ length: 41 }, (_, i) => i).filter((i) => i !== 17).map((i) => [`r-starts/fan/${i}/1`, 1] as const),
      ['r-starts/fan/17/2', 2], ['r-starts/fan/40/2', 2], ['r-starts/plain/5/1', 1],
    ]));
  });

  it('logicalIndexes is the container’s side of the contract: the list expanded, or the one TICKRUN_TASK_INDEX', () => {
    expect(logicalIndexes({ TICKRUN_TASK_INDEXES: '17,4242,9999' })).toEqual([17, 4242, 9999]);
    expect(logicalIndexes({ TICKRUN_TASK_INDEXES: '0-2,5,7-8' })).toEqual([0, 1, 2, 5, 7, 8]);
    expect(logicalIndexes({ TICKRUN_TASK_INDEX: '7' })).toEqual([7]);
    expect(logicalIndexes({})).toEqual([]);
    const started = performance.now();
    expect(logicalIndexes({ TICKRUN_TASK_INDEXES: '0-9999' })).toHaveLength(10_000);
    expect(performance.now() - started).toBeLessThan(50);
    for (const bad of ['3-3', '5-2', '4,4', '4,2', '1,,2', 'a', '-1']) expect(() => logicalIndexes({ TICKRUN_TASK_INDEXES: bad })).toThrow(/TICKRUN_TASK_INDEXES/);
    // Without TICKRUN_TASK_INDEXES the whole execution is one logical task: all its tasks fail, or none.
    expect(behaviourFromEnv({ env: { TICKRUN_TASK_INDEX: '4', EMU_FAIL_INDEXES: '4' }, taskCount: 2 })).toMatchObject({ outcome: 'failed', failedTasks: [0, 1] });
    expect(behaviourFromEnv({ env: { TICKRUN_TASK_INDEX: '5', EMU_FAIL_INDEXES: '4' }, taskCount: 2 })).toMatchObject({ outcome: 'success', failedTasks: [] });
    // A task past the list cannot compute its index: its container fails.
    expect(behaviourFromEnv({ env: { TICKRUN_TASK_INDEXES: '0-1', EMU_FAIL_INDEXES: '' }, taskCount: 3 })).toMatchObject({ failedTasks: [2] });
    // Without EMU_FAIL_INDEXES, as before.
    expect(behaviourFromEnv({ env: { EMU_FAIL: '1' } })).toEqual({ outcome: 'failed', durationMs: 0 });
  });
});
