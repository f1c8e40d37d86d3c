import { everyCall } from '../../shared/config';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExecutionsClient, JobsClient } from '@google-cloud/run';
import { PassThroughClient } from 'google-auth-library';
import { createCloudRunExecutor, type CloudRunOptions } from '../../shared/executors/cloudRun';
import { ExecutorFault, ExecutorRefusal, executionEnv, type DispatchRequest, type Executor, type LostAttempt } from '../../shared/executors/executor';
import { setLogSink } from '../../shared/log';
import type { TaskSpec } from '../../shared/workflows/definition';
import { behaviourFromEnv, startCloudRunEmulator, type CloudRunEmulator, type FaultKind } from '../helpers/cloudRunEmulator';
import { faultPicker } from '../helpers/emulatorFaults';

const JOB = 'projects/p1/locations/europe-west1/jobs/nightly';

type RpcError = { error: { code: number; message: string; status: string } };
type ExecutionJson = { name: string; succeededCount?: number; createTime: string; conditions: { type: string; state: unknown }[] };
const completed = (e: ExecutionJson) => e.conditions.find((c) => c.type === 'Completed');

function request(spec: Partial<TaskSpec> = {}, attempt = 1, taskId = '42'): DispatchRequest {
  return {
    taskId,
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

/** An attempt claimed a second ago and lost, of the test job unless `spec` says otherwise. */
function lostAttempt(taskId: string, attempt: number, spec: Partial<TaskSpec> = {}, claimedAt = new Date(Date.now() - 1000)): LostAttempt {
  return { taskId, attempt, spec: request(spec).spec, claimedAt };
}

/** How a call ended: 'ok', the ExecutorFault's kind, or 'error' for any other error. */
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(() => 'ok', (err: unknown) => (err instanceof ExecutorFault ? err.kind : err instanceof ExecutorRefusal ? 'refused' : 'error'));

/** Runs `fn` with log lines kept instead of written to stderr. */
async function capturingLogs<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  setLogSink((line) => lines.push(line));
  try {
    return { result: await fn(), lines: lines.map((l) => (JSON.parse(l) as { message: string }).message) };
  } finally {
    setLogSink((line) => process.stderr.write(line + '\n'));
  }
}

/** Serves `handler` on loopback while `run` runs with its host. */
async function withServer(handler: http.RequestListener, run: (host: string) => Promise<void>): Promise<void> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await run(`127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('Cloud Run executor against the emulator', () => {
  let emulator: CloudRunEmulator;
  let executor: Executor;
  const make = (options: Partial<CloudRunOptions> = {}) =>
    createCloudRunExecutor({ emulatorHost: emulator.host, timeouts: everyCall(5000), ...options });

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
    const answer: http.RequestListener = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        name: 'projects/p1/locations/europe-west1/operations/op-1',
        done: true,
        error: { code: 2, message: 'boom' },
        metadata: { '@type': 'type.googleapis.com/google.cloud.run.v2.Execution', name },
      }));
    };
    await withServer(answer, async (host) => {
      expect(await make({ emulatorHost: host }).dispatch(request())).toBe(name);
    });
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
    expect(await executor.status(name)).toEqual({ state: 'cancelled', message: 'The execution was cancelled.' });
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
    expect(delta).toEqual({ runJob: 1, getExecution: 2, cancelExecution: 1, listExecutions: 0, getOperation: 0, listTasks: 0, getTask: 0, other: 0 });
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

  it('calls a refused connection retryable (nothing was sent), saying which call failed and why', async () => {
    const closed = await startCloudRunEmulator();
    await closed.stop();
    const unreachable = make({ emulatorHost: closed.host });
    // The first words are fetch's or gaxios's ("fetch failed", "Unexpected Gaxios Error" under jest); the cause is what matters.
    const refused = await unreachable.status(`${JOB}/executions/nightly-abcde`).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(ExecutorFault);
    expect((refused as ExecutorFault).kind).toBe('retryable');
    expect((refused as Error).message).toMatch(`Cloud Run getExecution ${JOB}/executions/nightly-abcde: `);
    expect((refused as Error).message).toContain(`(connect ECONNREFUSED ${closed.host})`);
    await expect(unreachable.cancel(`${JOB}/executions/nightly-abcde`)).rejects.toMatchObject({ kind: 'retryable', message: expect.stringMatching(/^Cloud Run cancelExecution .*ECONNREFUSED/) });
    await expect(unreachable.dispatch(request())).rejects.toMatchObject({ kind: 'retryable', message: expect.stringMatching(/^Cloud Run runJob .*ECONNREFUSED/) });
    const { result, lines } = await capturingLogs(() => unreachable.findStarted([lostAttempt('42', 1)]));
    expect(result).toEqual(new Map());
    expect(lines).toEqual([expect.stringContaining(`could not tell whether 1 lost attempt(s) of ${JOB} started: Cloud Run listExecutions ${JOB}: `)]);
    expect(lines[0]).toContain('(connect ECONNREFUSED');
  });

  it('holds each kind of call to its own deadline: a runJob gives up at its short one while a read waits out its longer one', async () => {
    const slow = await startCloudRunEmulator({ latencyMs: 1000 });
    try {
      const executor = createCloudRunExecutor({ emulatorHost: slow.host, timeouts: { dispatch: 300, read: 4000, list: 4000 } });
      let started = Date.now();
      await expect(executor.dispatch(request())).rejects.toMatchObject({ kind: 'ambiguous', message: `Cloud Run runJob ${JOB}: no answer within 300 ms` });
      expect(Date.now() - started).toBeLessThan(900);
      // The runJob is carried out after its caller gave up: a read that waits long enough sees it.
      while (slow.executions.length === 0) await new Promise((r) => setTimeout(r, 20));
      started = Date.now();
      const [execution] = slow.executions;
      expect(await executor.status(execution.name)).toEqual({ state: expect.any(String) });
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    } finally {
      await slow.stop();
    }
  });

  it('gives up on a call after its deadline, not the client default of 60 s', async () => {
    const slow = await startCloudRunEmulator({ latencyMs: 5000 });
    try {
      const hurried = createCloudRunExecutor({ emulatorHost: slow.host, timeouts: everyCall(300) });
      const started = Date.now();
      // The execution may have been created: ambiguous, never sent again blindly.
      await expect(hurried.dispatch(request())).rejects.toMatchObject({ kind: 'ambiguous', message: `Cloud Run runJob ${JOB}: no answer within 300 ms` });
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

describe('Cloud Run executor when calls fail', () => {
  let emulator: CloudRunEmulator;
  let executor: Executor;
  let nextTask = 1000;
  /** A request of a task no other test uses, so its starts can be counted. */
  const fresh = (spec: Partial<TaskSpec> = {}) => request(spec, 1, String(nextTask++));
  const starts = (req: DispatchRequest) => emulator.startsByAttempt().get(`${req.taskId}/${req.attempt}`) ?? 0;

  beforeAll(async () => {
    emulator = await startCloudRunEmulator();
    executor = createCloudRunExecutor({ emulatorHost: emulator.host, timeouts: everyCall(300) });
  });
  afterEach(() => emulator.setFaults(null));
  afterAll(() => emulator.stop());

  it.each<[FaultKind, ExecutorFault['kind'], string]>([
    ['429', 'quota', 'RESOURCE_EXHAUSTED: Quota exceeded for quota metric'],
    ['503', 'retryable', 'UNAVAILABLE: The service is currently unavailable'],
    ['500', 'ambiguous', 'INTERNAL: Internal error encountered'],
    ['reset', 'ambiguous', '(other side closed)'],
  ])('runJob refused with %s: an ExecutorFault %s, and no execution was started', async (kind, fault, message) => {
    emulator.setFaults({ rate: 1, kinds: [kind], rpcs: ['runJob'] });
    const req = fresh();
    const err = await executor.dispatch(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecutorFault);
    expect(err).toMatchObject({ kind: fault, message: expect.stringMatching(`^Cloud Run runJob ${JOB}: `) });
    expect((err as Error).message).toContain(message);
    expect(starts(req)).toBe(0);
    expect(emulator.injected[kind]).toBeGreaterThan(0);
  });

  it('runJob whose answer came too late or was lost: ambiguous, and the execution exists', async () => {
    emulator.setFaults({ rate: 1, kinds: ['delay'], rpcs: ['runJob'], delayMs: 600 });
    const late = fresh();
    await expect(executor.dispatch(late)).rejects.toMatchObject({ kind: 'ambiguous', message: `Cloud Run runJob ${JOB}: no answer within 300 ms` });
    expect(starts(late)).toBe(1);

    // 'lost' answers INTERNAL, then drops the connection, in turn.
    emulator.setFaults({ rate: 1, kinds: ['lost'], rpcs: ['runJob'] });
    const [first, second] = [fresh(), fresh()];
    await expect(executor.dispatch(first)).rejects.toMatchObject({ kind: 'ambiguous', message: expect.stringContaining('INTERNAL: Internal error encountered') });
    await expect(executor.dispatch(second)).rejects.toMatchObject({ kind: 'ambiguous', message: expect.stringContaining('(other side closed)') });
    expect([starts(first), starts(second)]).toEqual([1, 1]);
    expect(emulator.injected).toMatchObject({ delay: 1, lost: 2 });
  });

  it.each<[string, number, string, string, 'refused' | ExecutorFault['kind'], string]>([
    ['a job that does not exist', 404, 'NOT_FOUND', "Resource 'namespaces/p1/jobs/nightly' could not be found.", 'refused', `; create the job ${JOB}, or correct the task's job, project or region`],
    ['a bad request', 400, 'INVALID_ARGUMENT', 'Invalid value at overrides.task_count', 'refused', "; correct the task's args, env, task_count or timeout: Cloud Run refuses its overrides"],
    ['a missing permission', 403, 'PERMISSION_DENIED', "Permission 'run.jobs.runWithOverrides' denied", 'refused', "; grant tickrun's service account run.jobs.runWithOverrides on the job (roles/run.developer has it) and iam.serviceAccounts.actAs on its service account (roles/iam.serviceAccountUser)"],
    ['a deadline passed at the server', 504, 'DEADLINE_EXCEEDED', 'Deadline exceeded', 'ambiguous', ''],
    ['an unknown error', 500, 'UNKNOWN', 'Unknown error', 'ambiguous', ''],
  ])('runJob answered with %s (%d %s): %s', async (_what, code, status, message, expected, fix) => {
    const answer: http.RequestListener = (_req, res) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code, message, status } }));
    };
    await withServer(answer, async (host) => {
      const err = await make(host).dispatch(request()).catch((e: unknown) => e);
      expect(await outcome(Promise.reject(err))).toBe(expected);
      expect((err as Error).message).toBe(`Cloud Run runJob ${JOB}: ${status}: ${message}${fix}`);
    });
  });

  it.each<[string, http.RequestListener, string]>([
    ['a proxy\'s 502 page', (_req, res) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<html>Bad Gateway</html>'); }, 'HTTP 502: <html>Bad Gateway</html>'],
    ['an unreadable body', (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"name": '); }, 'unreadable answer: '],
    ['a body cut short', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"name": "projects/p1/locations/europe-west1/operations/op-1"');
      setTimeout(() => req.socket.destroy(), 20);
    }, 'terminated (other side closed)'],
    ['an operation naming no execution', (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"name": "op-1"}'); }, 'operation op-1 names no execution'],
  ])('runJob answered with %s: ambiguous', async (_what, answer, message) => {
    await withServer(answer, async (host) => {
      await expect(make(host).dispatch(request())).rejects.toMatchObject({ kind: 'ambiguous', message: expect.stringContaining(`Cloud Run runJob ${JOB}: ${message}`) });
    });
  });

  it('status and cancel: the same faults, and a cancel whose answer was lost was still carried out', async () => {
    const name = await executor.dispatch(fresh({ env: { EMU_DURATION_MS: '60000' } }));
    const kinds: [FaultKind, string][] = [['429', 'quota'], ['503', 'retryable'], ['500', 'ambiguous'], ['reset', 'ambiguous'], ['delay', 'ambiguous'], ['lost', 'ambiguous']];
    for (const [kind, fault] of kinds) {
      emulator.setFaults({ rate: 1, kinds: [kind], rpcs: ['getExecution'], delayMs: 600 });
      await expect(executor.status(name)).rejects.toMatchObject({ kind: fault, message: expect.stringMatching(`^Cloud Run getExecution ${name}: `) });
    }
    emulator.setFaults({ rate: 1, kinds: ['503'], rpcs: ['cancelExecution'] });
    await expect(executor.cancel(name)).rejects.toMatchObject({ kind: 'retryable', message: expect.stringContaining('UNAVAILABLE') });
    expect(emulator.executions.find((e) => e.name === name)!.cancelled).toBe(false);
    emulator.setFaults({ rate: 1, kinds: ['lost'], rpcs: ['cancelExecution'] });
    await expect(executor.cancel(name)).rejects.toMatchObject({ kind: 'ambiguous' });
    expect(emulator.executions.find((e) => e.name === name)!.cancelled).toBe(true);
    emulator.setFaults(null);
    // Asked again, the cancel finds the execution already ended: done.
    await expect(executor.cancel(name)).resolves.toBeUndefined();
    expect(await executor.status(name)).toEqual({ state: 'cancelled', message: 'The execution was cancelled.' });
  });

  const make = (host: string) => createCloudRunExecutor({ emulatorHost: host, timeouts: everyCall(300) });
});

describe('findStarted', () => {
  let emulator: CloudRunEmulator;
  let executor: Executor;
  const jobOf = (id: string) => `projects/p1/locations/europe-west1/jobs/${id}`;
  const startedName = (taskId: string, attempt: number) =>
    emulator.executions.find((e) => e.env.TICKRUN_TASK_ID === taskId && e.env.TICKRUN_ATTEMPT === String(attempt))?.name;
  const listings = async <T>(fn: () => Promise<T>) => {
    const before = emulator.calls.listExecutions;
    const result = await fn();
    return { result, listings: emulator.calls.listExecutions - before };
  };
  /** Starts `count` executions of other tasks on `job`, some at a time. */
  const startMany = async (job: string, count: number) => {
    for (let i = 0; i < count; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) => patient.dispatch(request({ job }, 1, `other-${i + j}`))));
    }
  };
  // For thousands of executions: seeding them, and listing pages of 1,000 on a busy machine.
  let patient: Executor;

  beforeAll(async () => {
    emulator = await startCloudRunEmulator();
    executor = createCloudRunExecutor({ emulatorHost: emulator.host, timeouts: everyCall(300), defaultProject: 'p1', defaultRegion: 'europe-west1' });
    patient = createCloudRunExecutor({ emulatorHost: emulator.host, timeouts: everyCall(30_000) });
  });
  afterEach(() => emulator.setFaults(null));
  afterAll(() => emulator.stop());

  it('names the executions whose runJob answer was lost or late, and null for attempts never started', async () => {
    const job = jobOf('find-lost');
    emulator.setFaults({ rate: 1, kinds: ['lost'], rpcs: ['runJob'] });
    await expect(executor.dispatch(request({ job }, 1, 'lost'))).rejects.toMatchObject({ kind: 'ambiguous' });
    emulator.setFaults({ rate: 1, kinds: ['delay'], rpcs: ['runJob'], delayMs: 600 });
    await expect(executor.dispatch(request({ job }, 1, 'late'))).rejects.toMatchObject({ kind: 'ambiguous' });
    emulator.setFaults({ rate: 1, kinds: ['503'], rpcs: ['runJob'] });
    await expect(executor.dispatch(request({ job }, 1, 'refused'))).rejects.toMatchObject({ kind: 'retryable' });
    emulator.setFaults(null);
    await executor.dispatch(request({ job }, 1, 'earlier'));

    const lost = lostAttempt('lost', 1, { job });
    const late = lostAttempt('late', 1, { job });
    const refused = lostAttempt('refused', 1, { job });
    // Attempt 1 of this task started, attempt 2 did not: the attempt number counts.
    const secondTry = lostAttempt('earlier', 2, { job });
    // The same attempt twice (two claims of it lost) gets the same answer twice.
    const lostAgain = { ...lost };
    const { result, listings: n } = await listings(() => executor.findStarted([lost, late, refused, secondTry, lostAgain]));
    expect(result).toEqual(new Map([[lost, startedName('lost', 1)], [late, startedName('late', 1)], [refused, null], [secondTry, null], [lostAgain, startedName('lost', 1)]]));
    expect(startedName('lost', 1)).toBeDefined();
    expect(n).toBe(1);
  });

  it('resolves bare job ids as dispatch does, lists each job once, and calls an attempt with no job known unstarted', async () => {
    await executor.dispatch(request({ job: 'find-bare' }, 1, 'bare'));
    await executor.dispatch(request({ job: jobOf('find-full') }, 3, 'full'));
    const bare = lostAttempt('bare', 1, { job: 'find-bare' });
    const full = lostAttempt('full', 3, { job: jobOf('find-full') });
    const fullOther = lostAttempt('full', 2, { job: jobOf('find-full') });
    const nowhere = lostAttempt('nowhere', 1, { job: 'find-bare', region: undefined, project: undefined });
    const noRegion = createCloudRunExecutor({ emulatorHost: emulator.host, timeouts: everyCall(300), defaultProject: 'p1' });
    const { result, listings: n } = await listings(async () => [await executor.findStarted([bare, full, fullOther]), await noRegion.findStarted([nowhere])]);
    expect(result[0]).toEqual(new Map([[bare, startedName('bare', 1)], [full, startedName('full', 3)], [fullOther, null]]));
    expect(result[1]).toEqual(new Map([[nowhere, null]]));
    expect(n).toBe(2);
  });

  it('pages back to an attempt started before 1,000 others, and stops at a page reaching back before the oldest claim', async () => {
    const job = jobOf('find-paged');
    await patient.dispatch(request({ job }, 1, 'first'));
    await startMany(job, 1050);
    const first = lostAttempt('first', 1, { job });
    const found = await listings(() => patient.findStarted([first]));
    expect(found.result.get(first)).toBe(startedName('first', 1));
    expect(found.listings).toBe(2);
    // Pages of 1,000 with only what the search reads (the env, the creation time, the name).
    expect(emulator.fieldMasks.listExecutions).toBe('nextPageToken,executions.name,executions.createTime,executions.template.containers.env');

    // The 1,020 oldest were created 10 minutes ago: the first page (30 new, 970 old) reaches back far enough.
    const ofJob = emulator.executions.filter((e) => e.job === job);
    for (const e of ofJob.slice(0, 1021)) Object.assign(e, { createdAt: e.createdAt - 600_000, finishedAt: e.finishedAt! - 600_000 });
    const recent = lostAttempt('never', 1, { job });
    const cutShort = await listings(() => patient.findStarted([recent]));
    expect(cutShort).toEqual({ result: new Map([[recent, null]]), listings: 1 });
    // A claim older than those executions (beyond the 5 minutes allowed for clock skew) looks at them all.
    const old = lostAttempt('never', 1, { job }, new Date(Date.now() - 20 * 60_000));
    const whole = await listings(() => patient.findStarted([recent, old]));
    expect(whole).toEqual({ result: new Map([[recent, null], [old, null]]), listings: 2 });
    const skewed = lostAttempt('never', 1, { job }, new Date(Date.now() - 6 * 60_000));
    expect((await listings(() => patient.findStarted([skewed]))).listings).toBe(2);
  });

  it('reads at most 3 pages of 1,000 for a lost claim, however many executions were started after it, and none past its deadline', async () => {
    const job = jobOf('find-busy');
    await patient.dispatch(request({ job }, 1, 'behind'));
    await startMany(job, 2500);
    const behind = lostAttempt('behind', 1, { job });
    const found = await listings(() => patient.findStarted([behind]));
    expect(found).toEqual({ result: new Map([[behind, startedName('behind', 1)]]), listings: 3 });

    // 600 more after it: its execution is now on a fourth page. Cloud Run keeps no job's listing that long
    // (1,000 completed executions, 1,000 running at once): the claim is left undecided, not called unstarted.
    await startMany(job, 600);
    const never = lostAttempt('never', 1, { job });
    const capped = await listings(() => patient.findStarted([behind, never]));
    expect(capped).toEqual({ result: new Map(), listings: 3 });

    // Past its deadline a reconciliation asks for no page at all, and settles nothing.
    const late = await listings(() => patient.findStarted([lostAttempt('late', 1, { job: jobOf('find-late') })], performance.now() - 1));
    expect(late).toEqual({ result: new Map(), listings: 0 });
  }, 120_000);

  it.each<FaultKind>(['429', '503', '500', 'reset', 'delay', 'lost'])('leaves out the attempts of a job whose listing failed with %s', async (kind) => {
    await executor.dispatch(request({ job: jobOf('find-faulty') }, 1, 'faulty'));
    emulator.setFaults({ rate: 1, kinds: [kind], rpcs: ['listExecutions'], delayMs: 600 });
    const attempt = lostAttempt('faulty', 1, { job: jobOf('find-faulty') });
    const nowhere = lostAttempt('nowhere', 1, { job: 'bare' });
    const noProject = createCloudRunExecutor({ emulatorHost: emulator.host, timeouts: everyCall(300) });
    const { result, lines } = await capturingLogs(async () => [await executor.findStarted([attempt]), await noProject.findStarted([nowhere])]);
    expect(result).toEqual([new Map(), new Map([[nowhere, null]])]);
    expect(lines).toEqual([expect.stringMatching(`^could not tell whether 1 lost attempt\\(s\\) of ${jobOf('find-faulty')} started: Cloud Run listExecutions `)]);
    expect(emulator.injected[kind]).toBeGreaterThan(0);
  });

  it('leaves out a job whose second page failed, and calls every attempt of a job that does not exist unstarted', async () => {
    const job = jobOf('find-second-page');
    await startMany(job, 1020);
    // Seed 3 lets the first listing through and fails the second (faultPicker is deterministic).
    const plan = { rate: 0.5, kinds: ['503'] as FaultKind[], rpcs: ['listExecutions'], seed: 3 };
    const pick = faultPicker(plan);
    expect([pick('listExecutions'), pick('listExecutions')]).toEqual([undefined, '503']);
    emulator.setFaults(plan);
    const never = lostAttempt('never', 1, { job });
    expect((await capturingLogs(() => patient.findStarted([never]))).result).toEqual(new Map());

    const gone: http.RequestListener = (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 404, message: "Resource 'namespaces/p1/jobs/deleted' could not be found.", status: 'NOT_FOUND' } }));
    };
    await withServer(gone, async (host) => {
      const deleted = lostAttempt('42', 1, { job: jobOf('deleted') });
      expect(await createCloudRunExecutor({ emulatorHost: host, timeouts: everyCall(300) }).findStarted([deleted])).toEqual(new Map([[deleted, null]]));
    });
  });
});

describe('emulator faults', () => {
  it('draws the same faults from the same seed, and only for the RPCs named', () => {
    const plan = { rate: 0.3, kinds: ['429', '500', '503', 'delay', 'reset', 'lost'] as FaultKind[], seed: 42 };
    const rpcs = Array.from({ length: 300 }, (_, i) => ['runJob', 'getExecution', 'getOperation'][i % 3]);
    const draw = (p: typeof plan) => { const pick = faultPicker(p); return rpcs.map((rpc) => pick(rpc)); };
    const a = draw(plan);
    expect(draw(plan)).toEqual(a);
    expect(draw({ ...plan, seed: 43 })).not.toEqual(a);
    expect(a.filter((_, i) => rpcs[i] === 'getOperation').every((k) => k === undefined)).toBe(true);
    const faulted = a.filter(Boolean).length;
    expect(faulted).toBeGreaterThan(30);
    expect(faulted).toBeLessThan(90);
    expect(new Set(a.filter(Boolean))).toEqual(new Set(plan.kinds));
  });

  it('gives a run of calls the same outcomes under the same seed', async () => {
    const emulator = await startCloudRunEmulator();
    try {
      const executor = createCloudRunExecutor({ emulatorHost: emulator.host, timeouts: everyCall(300) });
      const run = async (seed: number) => {
        emulator.setFaults({ rate: 0.5, kinds: ['429', '500', '503', 'reset', 'lost'], rpcs: ['runJob'], seed });
        const before = { ...emulator.injected };
        const outcomes: string[] = [];
        for (let i = 0; i < 24; i++) outcomes.push(await outcome(executor.dispatch(request({}, 1, `seeded-${i}`))));
        const injected = Object.fromEntries(Object.entries(emulator.injected).map(([k, v]) => [k, v - before[k as FaultKind]]));
        return { outcomes, injected };
      };
      const first = await run(7);
      expect(await run(7)).toEqual(first);
      expect(await run(8)).not.toEqual(first);
      expect(first.outcomes).toContain('ok');
      expect(first.outcomes).toContain('ambiguous');
    } finally {
      await emulator.stop();
    }
  });
});

describe('Cloud Run emulator, as the real client reads it', () => {
  let emulator: CloudRunEmulator;
  let jobs: JobsClient;

  beforeAll(async () => {
    emulator = await startCloudRunEmulator();
    jobs = new JobsClient(clientOptions());
  });
  const clientOptions = () => {
    const [hostname, port] = emulator.host.split(':');
    return {
      fallback: true,
      protocol: 'http',
      apiEndpoint: hostname,
      port: Number(port),
      // google-gax types authClient with its own nested google-auth-library.
      authClient: new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } }) as never,
    };
  };
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

  it('lists a job\'s executions newest first, page by page, with the overridden env in their template', async () => {
    const job = 'projects/p1/locations/europe-west1/jobs/listed';
    const started: string[] = [];
    for (const id of ['a', 'b', 'c']) {
      const [operation] = await jobs.runJob({ name: job, overrides: { containerOverrides: [{ env: [{ name: 'TICKRUN_TASK_ID', value: id }], args: ['--x'] }] } });
      started.push((operation.metadata as unknown as ExecutionJson).name);
    }
    type Listed = { executions: (ExecutionJson & { template: { containers: { env: { name: string; value: string }[]; args: string[] }[] } })[]; nextPageToken?: string };
    const page1 = (await (await fetch(`http://${emulator.host}/v2/${job}/executions?pageSize=2`)).json()) as Listed;
    expect(page1.executions.map((e) => e.name)).toEqual([started[2], started[1]]);
    expect(page1.executions[0].template.containers[0]).toMatchObject({ env: [{ name: 'TICKRUN_TASK_ID', value: 'c' }], args: ['--x'] });
    expect(page1.executions[0].createTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(page1.nextPageToken).toEqual(expect.any(String));
    const page2 = (await (await fetch(`http://${emulator.host}/v2/${job}/executions?pageSize=2&pageToken=${page1.nextPageToken}`)).json()) as Listed;
    expect(page2.executions.map((e) => e.name)).toEqual([started[0]]);
    expect(page2.nextPageToken).toBeUndefined();
    expect((await fetch(`http://${emulator.host}/v2/${job}/executions?pageToken=nonsense`)).status).toBe(400);

    // As the real client reads it: one page, the request for the next, numeric enums decoded.
    const executions = new ExecutionsClient(clientOptions());
    try {
      const before = emulator.calls.listExecutions;
      const [items, next] = await executions.listExecutions({ parent: job, pageSize: 2 }, { autoPaginate: false });
      expect(items.map((e) => e.name)).toEqual([started[2], started[1]]);
      expect(items[1].template?.containers?.[0].env).toEqual([expect.objectContaining({ name: 'TICKRUN_TASK_ID', value: 'b' })]);
      expect(next).toMatchObject({ parent: job, pageSize: 2, pageToken: page1.nextPageToken });
      const [rest, none] = await executions.listExecutions(next!, { autoPaginate: false });
      expect(rest.map((e) => e.name)).toEqual([started[0]]);
      expect(none).toBeNull();
      expect(emulator.calls.listExecutions - before).toBe(2);
    } finally {
      await executions.close();
    }
  });

  it('answers only the fields a response field mask names, through lists, and refuses a mask it cannot read', async () => {
    const job = 'projects/p1/locations/europe-west1/jobs/masked';
    const [operation] = await jobs.runJob({ name: job, overrides: { containerOverrides: [{ env: [{ name: 'TICKRUN_TASK_ID', value: 'm' }] }] } });
    const name = (operation.metadata as unknown as ExecutionJson).name;
    const list = (mask: string, how: 'header' | 'query') => fetch(
      `http://${emulator.host}/v2/${job}/executions?pageSize=1${how === 'query' ? `&$fields=${encodeURIComponent(mask)}` : ''}`,
      how === 'header' ? { headers: { 'X-Goog-FieldMask': mask } } : {},
    );
    const masked = await (await list('executions.name,executions.conditions.state,executions.template.containers.env', 'header')).json();
    expect(masked).toEqual({
      executions: [{ name, conditions: [{ state: 'CONDITION_SUCCEEDED' }, { state: 'CONDITION_SUCCEEDED' }], template: { containers: [{ env: [{ name: 'TICKRUN_TASK_ID', value: 'm' }] }] } }],
    });
    expect(emulator.fieldMasks.listExecutions).toBe('executions.name,executions.conditions.state,executions.template.containers.env');
    // A shorter path keeps the whole field; `*` keeps everything; the query parameter works as the header does.
    expect(await (await list('executions.conditions.state, executions.conditions', 'query')).json()).toEqual({ executions: [{ conditions: [expect.objectContaining({ type: 'Started', lastTransitionTime: expect.any(String) }), expect.objectContaining({ type: 'Completed' })] }] });
    expect(Object.keys(((await (await list('*', 'header')).json()) as { executions: object[] }).executions[0])).toContain('template');
    const refused = await list('executions(name,uid)', 'header');
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as RpcError).error).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringContaining('path "executions(name"') });
  });

  it('shows its state and takes a fault plan over HTTP, without counting those as calls', async () => {
    const calls = { ...emulator.calls };
    const plan = await fetch(`http://${emulator.host}/_emulator/faults`, { method: 'POST', body: JSON.stringify({ rate: 1, kinds: ['503'], rpcs: ['runJob'] }) });
    expect(plan.status).toBe(200);
    await expect(jobs.runJob({ name: JOB })).rejects.toMatchObject({ code: 503 });
    await fetch(`http://${emulator.host}/_emulator/faults`, { method: 'POST', body: 'null' });
    const [operation] = await jobs.runJob({ name: JOB, overrides: { containerOverrides: [{ env: [{ name: 'TICKRUN_TASK_ID', value: 's' }] }] } });
    const state = (await (await fetch(`http://${emulator.host}/_emulator/state`)).json()) as { calls: Record<string, number>; injected: Record<string, number>; executions: Record<string, unknown>[] };
    expect(state.calls).toEqual({ ...calls, runJob: calls.runJob + 2 });
    expect(state.injected).toEqual({ '403': 0, '429': 0, '500': 0, '503': 1, delay: 0, reset: 0, lost: 0 });
    expect(state.executions.at(-1)).toEqual({
      name: (operation.metadata as unknown as ExecutionJson).name, job: JOB, env: { TICKRUN_TASK_ID: 's' },
      createdAt: expect.any(Number), finishedAt: expect.any(Number), outcome: 'success', cancelled: false,
    });
    expect(emulator.startsByAttempt().get('s/undefined')).toBe(1);
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
