import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { JobsClient } from '@google-cloud/run';
import { PassThroughClient } from 'google-auth-library';
import { createCloudRunExecutor, executionStatus, type CloudRunOptions } from '../../shared/executors/cloudRun';
import { executionEnv, type DispatchRequest, type Executor } from '../../shared/executors/executor';
import type { TaskSpec } from '../../shared/workflows/definition';
import { behaviourFromEnv, startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';

const JOB = 'projects/p1/locations/europe-west1/jobs/nightly';

type RpcError = { error: { code: number; message: string; status: string } };
type ExecutionJson = { name: string; succeededCount?: number; createTime: string; conditions: { type: string; state: unknown }[] };
const completed = (e: ExecutionJson) => e.conditions.find((c) => c.type === 'Completed');

function request(spec: Partial<TaskSpec> = {}, attempt = 1): DispatchRequest {
  return {
    taskId: '42',
    runId: '7',
    workflow: 'etl',
    taskName: 'load',
    index: 3,
    attempt,
    params: { day: '2024-05-01' },
    workflowDir: '/tmp',
    spec: { executor: 'cloudrun', job: JOB, count: 4, env: {}, dependsOn: [], ancestors: [], retries: 0, backoffMs: 1000, ...spec },
  };
}

describe('Cloud Run executor against the emulator', () => {
  let emulator: CloudRunEmulator;
  let executor: Executor;
  const make = (options: Partial<CloudRunOptions> = {}) =>
    createCloudRunExecutor({ emulatorHost: emulator.host, apiTimeoutMs: 5000, ...options });

  beforeAll(async () => {
    emulator = await startCloudRunEmulator();
    executor = make();
  });
  afterAll(() => emulator.stop());

  it('starts an execution of the job with the contract env, args, taskCount and timeout', async () => {
    const req = request({ env: { LEVEL: 'debug' }, args: ['--day', 'today'], taskCount: 3, timeoutMs: 89_500 });
    const name = await executor.dispatch(req);

    expect(name).toMatch(/^projects\/p1\/locations\/europe-west1\/jobs\/nightly\/executions\/nightly-[0-9a-f]{5}$/);
    const seen = emulator.executions.find((e) => e.name === name)!;
    expect(seen.job).toBe(JOB);
    expect(seen.env).toEqual(executionEnv(req));
    expect(seen.env).toMatchObject({
      LEVEL: 'debug',
      TICKRUN_WORKFLOW: 'etl',
      TICKRUN_RUN_ID: '7',
      TICKRUN_TASK_ID: '42',
      TICKRUN_TASK_NAME: 'load',
      TICKRUN_TASK_INDEX: '3',
      TICKRUN_ATTEMPT: '1',
      TICKRUN_PARAMS: '{"day":"2024-05-01"}',
    });
    expect(seen.args).toEqual(['--day', 'today']);
    expect(seen.taskCount).toBe(3);
    expect(seen.timeoutSeconds).toBe(90);
  });

  it('sends no overrides the task does not ask for, and clears args for an empty list', async () => {
    const a = await executor.dispatch(request());
    const b = await executor.dispatch(request({ args: [] }));
    const [ea, eb] = [a, b].map((n) => emulator.executions.find((e) => e.name === n)!);
    expect(ea.args).toBeUndefined();
    expect(ea.taskCount).toBe(1);
    expect(ea.timeoutSeconds).toBeUndefined();
    expect(eb.args).toEqual([]);
  });

  it('finds the execution name in an operation already done with an error, where gax leaves metadata empty', async () => {
    const name = `${JOB}/executions/nightly-abcde`;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        name: 'projects/p1/locations/europe-west1/operations/op-1',
        done: true,
        error: { code: 2, message: 'boom' },
        metadata: { '@type': 'type.googleapis.com/google.cloud.run.v2.Execution', name },
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      expect(await make({ emulatorHost: `127.0.0.1:${port}` }).dispatch(request())).toBe(name);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('reports success once the execution has completed with every task succeeded', async () => {
    const name = await executor.dispatch(request());
    expect(await executor.status(name)).toEqual({ state: 'success' });
  });

  it('reports running until the execution ends, then its outcome', async () => {
    const name = await executor.dispatch(request({ env: { EMU_DURATION_MS: '400' } }));
    expect(await executor.status(name)).toEqual({ state: 'running' });
    await new Promise((r) => setTimeout(r, 450));
    expect(await executor.status(name)).toEqual({ state: 'success' });
  });

  it('reports a failed execution with the condition message and the task counts', async () => {
    const name = await executor.dispatch(request({ env: { EMU_FAIL: '1' }, taskCount: 2 }));
    const status = await executor.status(name);
    expect(status.state).toBe('failed');
    expect(status.state === 'failed' && status.error).toMatch(/failed with message: The container exited with an error \(exit code 1\)/);
    expect(status.state === 'failed' && status.error).toContain('1 of 2 tasks failed, 1 succeeded');
  });

  it("fails attempts below EMU_FAIL=attempts<N and lets attempt N succeed", async () => {
    const first = await executor.dispatch(request({ env: { EMU_FAIL: 'attempts<3' } }, 2));
    const third = await executor.dispatch(request({ env: { EMU_FAIL: 'attempts<3' } }, 3));
    expect((await executor.status(first)).state).toBe('failed');
    expect(await executor.status(third)).toEqual({ state: 'success' });
  });

  it('does not call a completed execution with failed tasks a success', async () => {
    emulator.setBehaviour(() => ({ outcome: 'success', durationMs: 0, failedCount: 1 }));
    try {
      const name = await executor.dispatch(request({ taskCount: 3 }));
      const status = await executor.status(name);
      expect(status).toEqual({ state: 'failed', error: expect.stringContaining('1 of 3 tasks failed, 2 succeeded') });
    } finally {
      emulator.setBehaviour(behaviourFromEnv);
    }
  });

  it('cancels a running execution: the emulator records it and status says cancelled', async () => {
    const name = await executor.dispatch(request({ env: { EMU_DURATION_MS: '60000' } }));
    expect(await executor.status(name)).toEqual({ state: 'running' });
    const before = Date.now();
    await executor.cancel(name);
    const seen = emulator.executions.find((e) => e.name === name)!;
    expect(seen.cancelled).toBe(true);
    expect(seen.finishedAt).toBeGreaterThanOrEqual(before - 5);
    expect(seen.finishedAt).toBeLessThanOrEqual(Date.now());
    expect(await executor.status(name)).toEqual({ state: 'cancelled' });
  });

  it('says an execution that does not exist no longer exists', async () => {
    const name = `${JOB}/executions/nightly-zzzzz`;
    expect(await executor.status(name)).toEqual({ state: 'failed', error: `execution ${name} no longer exists` });
  });

  it('treats cancelling an unknown or already finished execution as done', async () => {
    const finished = await executor.dispatch(request());
    expect(await executor.status(finished)).toEqual({ state: 'success' });
    const raw = await fetch(`http://${emulator.host}/v2/${finished}:cancel`, { method: 'POST', body: '{}' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as RpcError).error.status).toBe('FAILED_PRECONDITION');

    await expect(executor.cancel(finished)).resolves.toBeUndefined();
    await expect(executor.cancel(`${JOB}/executions/nightly-zzzzz`)).resolves.toBeUndefined();
    expect(emulator.executions.find((e) => e.name === finished)!.cancelled).toBe(false);
    expect(await executor.status(finished)).toEqual({ state: 'success' });
  });

  it('makes exactly one request per dispatch, status and cancel', async () => {
    const before = { ...emulator.calls };
    const name = await executor.dispatch(request({ env: { EMU_DURATION_MS: '60000' } }));
    await executor.status(name);
    await executor.status(name);
    await executor.cancel(name);
    const delta = Object.fromEntries(Object.entries(emulator.calls).map(([k, v]) => [k, v - (before[k] ?? 0)]));
    expect(delta).toEqual({ runJob: 1, getExecution: 2, cancelExecution: 1, getOperation: 0, other: 0 });
  });

  it('resolves a bare job id with the task project/region, else the defaults', async () => {
    const withDefaults = make({ defaultProject: 'dp', defaultRegion: 'us-east1' });
    const a = await withDefaults.dispatch(request({ job: 'report' }));
    const b = await withDefaults.dispatch(request({ job: 'report', project: 'tp', region: 'asia-south1' }));
    expect(a).toMatch(/^projects\/dp\/locations\/us-east1\/jobs\/report\/executions\/report-[0-9a-f]{5}$/);
    expect(b).toMatch(/^projects\/tp\/locations\/asia-south1\/jobs\/report\/executions\/report-/);
    expect(emulator.executions.find((e) => e.name === b)!.job).toBe('projects/tp/locations/asia-south1/jobs/report');
  });

  it('refuses a bare job id with no project or region known, before calling the API', async () => {
    const runs = emulator.calls.runJob;
    await expect(executor.dispatch(request({ job: 'report' }))).rejects.toThrow('task "load": job "report" needs a project');
    await expect(make({ defaultProject: 'dp' }).dispatch(request({ job: 'report' }))).rejects.toThrow('needs a region');
    expect(emulator.calls.runJob).toBe(runs);
  });

  it('lets other errors through, saying which call failed and why', async () => {
    const closed = await startCloudRunEmulator();
    await closed.stop();
    const unreachable = make({ emulatorHost: closed.host });
    // The first words are fetch's or gaxios's ("fetch failed", "Unexpected Gaxios Error"); the cause is what matters.
    const refused = await unreachable.status(`${JOB}/executions/nightly-abcde`).catch((err: Error) => err);
    expect((refused as Error).message).toMatch(`Cloud Run getExecution ${JOB}/executions/nightly-abcde: `);
    expect((refused as Error).message).toContain(`(connect ECONNREFUSED ${closed.host})`);
    await expect(unreachable.cancel(`${JOB}/executions/nightly-abcde`)).rejects.toThrow(/^Cloud Run cancelExecution .*ECONNREFUSED/);
    await expect(unreachable.dispatch(request())).rejects.toThrow(/^Cloud Run runJob .*ECONNREFUSED/);
  });

  it('gives up on a call after apiTimeoutMs, not the client default of 60 s', async () => {
    const slow = await startCloudRunEmulator({ latencyMs: 5000 });
    try {
      const hurried = createCloudRunExecutor({ emulatorHost: slow.host, apiTimeoutMs: 300 });
      const started = Date.now();
      await expect(hurried.dispatch(request())).rejects.toThrow(`Cloud Run runJob ${JOB}: no answer within 300 ms`);
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(250);
      expect(took).toBeLessThan(2000);
      await expect(hurried.status(`${JOB}/executions/nightly-abcde`)).rejects.toThrow('no answer within 300 ms');
      expect(slow.calls.runJob).toBe(1);
      expect(slow.calls.getExecution).toBe(1);
    } finally {
      await slow.stop();
    }
  });
});

describe('Cloud Run emulator, as the real client reads it', () => {
  let emulator: CloudRunEmulator;
  let jobs: JobsClient;

  beforeAll(async () => {
    emulator = await startCloudRunEmulator();
    const [hostname, port] = emulator.host.split(':');
    jobs = new JobsClient({
      fallback: true,
      protocol: 'http',
      apiEndpoint: hostname,
      port: Number(port),
      // google-gax types authClient with its own nested google-auth-library.
      authClient: new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } }) as never,
    });
  });
  afterAll(async () => {
    await jobs.close();
    await emulator.stop();
  });

  it('answers runJob at once with the new Execution as metadata, and getOperation done when it ends', async () => {
    const [operation] = await jobs.runJob({ name: JOB, overrides: { containerOverrides: [{ env: [{ name: 'EMU_DURATION_MS', value: '300' }] }] } });
    // Decoded from the Any by protobufjs: enums are numbers here, unlike getExecution's names.
    const metadata = operation.metadata as unknown as ExecutionJson;
    expect(metadata.name).toMatch(/^projects\/p1\/locations\/europe-west1\/jobs\/nightly\/executions\/nightly-/);
    expect(completed(metadata)!.state).toBe(2);
    expect(operation.done).toBe(false);
    expect(operation.name).toMatch(/^projects\/p1\/locations\/europe-west1\/operations\/[0-9a-f-]{36}$/);

    const pending = await jobs.checkRunJobProgress(operation.name!);
    expect(pending.done).toBe(false);
    await new Promise((r) => setTimeout(r, 350));
    const ended = await jobs.checkRunJobProgress(operation.name!);
    expect(ended.done).toBe(true);
    expect(ended.result).toMatchObject({ name: metadata.name, succeededCount: 1 });
    expect(emulator.calls.getOperation).toBe(2);
  });

  it('answers runJob not done even for an execution that fails at once', async () => {
    emulator.setBehaviour(() => ({ outcome: 'failed', durationMs: 0 }));
    try {
      const [operation] = await jobs.runJob({ name: JOB });
      expect(operation.done).toBe(false);
      const ended = await jobs.checkRunJobProgress(operation.name!);
      expect(ended.done).toBe(true);
      expect(ended.error).toMatchObject({ message: expect.stringContaining('failed with message') });
    } finally {
      emulator.setBehaviour(behaviourFromEnv);
    }
  });

  it('answers enums as names by default and as numbers when asked enum-encoding=int', async () => {
    const [operation] = await jobs.runJob({ name: JOB });
    const name = (operation.metadata as unknown as ExecutionJson).name;
    const asNames = (await (await fetch(`http://${emulator.host}/v2/${name}`)).json()) as ExecutionJson;
    const asInts = (await (await fetch(`http://${emulator.host}/v2/${name}?$alt=json%3Benum-encoding=int`)).json()) as ExecutionJson;
    expect(completed(asNames)).toMatchObject({ state: 'CONDITION_SUCCEEDED' });
    expect(completed(asInts)).toMatchObject({ state: 4 });
    expect(asNames.succeededCount).toBe(1);
    expect(asNames.createTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('answers unknown routes and names with a google.rpc.Status 404', async () => {
    const before = emulator.calls.other;
    const res = await fetch(`http://${emulator.host}/v2/projects/p/locations/l/services/s`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as RpcError).error).toMatchObject({ code: 404, status: 'NOT_FOUND' });
    expect(emulator.calls.other).toBe(before + 1);
    const gone = await fetch(`http://${emulator.host}/v2/${JOB}/executions/nightly-zzzzz`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as RpcError).error.status).toBe('NOT_FOUND');
  });
});

describe('executionStatus', () => {
  const end = (state: unknown, executionReason?: unknown, counts: Record<string, number> = {}) =>
    executionStatus({ taskCount: 2, ...counts, conditions: [{ type: 'Started', state: 4 }, { type: 'Completed', state, executionReason, message: 'm' } as never] });

  it('reads the Completed condition whether its enums are names (getExecution) or numbers (operation metadata)', () => {
    expect(end('CONDITION_SUCCEEDED', undefined, { succeededCount: 2 })).toEqual({ state: 'success' });
    expect(end(4, 0, { succeededCount: 2 })).toEqual({ state: 'success' });
    expect(end('CONDITION_FAILED', 'NON_ZERO_EXIT_CODE', { failedCount: 1 })).toEqual({ state: 'failed', error: 'm (1 of 2 tasks failed, 0 succeeded)' });
    expect(end(3, 2, { failedCount: 1 })).toEqual({ state: 'failed', error: 'm (1 of 2 tasks failed, 0 succeeded)' });
    expect(end('CONDITION_RECONCILING')).toEqual({ state: 'running' });
    expect(end(1)).toEqual({ state: 'running' });
    expect(executionStatus({ conditions: [] })).toEqual({ state: 'running' });
  });

  it('calls an execution cancelled by its CANCELLED reason even with failed tasks, and running while CANCELLING', () => {
    expect(end('CONDITION_FAILED', 'CANCELLED', { failedCount: 1, cancelledCount: 1 })).toEqual({ state: 'cancelled' });
    expect(end(3, 3, { failedCount: 1 })).toEqual({ state: 'cancelled' });
    expect(end('CONDITION_RECONCILING', 'CANCELLING', { cancelledCount: 1 })).toEqual({ state: 'running' });
    expect(end('CONDITION_FAILED', undefined, { cancelledCount: 2 })).toEqual({ state: 'cancelled' });
  });
});
