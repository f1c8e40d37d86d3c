import { everyCall } from '../../shared/config';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCloudRunExecutor } from '../../shared/executors/cloudRun';
import { vanishedStatus } from '../../shared/executors/cloudRunStatus';
import { ExecutorFault, type DispatchRequest, type Executor } from '../../shared/executors/executor';
import { setLogSink } from '../../shared/log';
import { tick } from '../../shared/tick';
import type { TaskSpec } from '../../shared/workflows/definition';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createHarness, emulatorHarness, type Harness } from '../helpers/harness';

const JOBS = 'projects/demo/locations/us-central1/jobs';

/** Status reads of one call: listExecutions and getExecution requests made while `fn` ran. */
async function statusCalls<T>(emu: CloudRunEmulator, fn: () => Promise<T>): Promise<{ result: T; list: number; get: number }> {
  const [list, get] = [emu.calls.listExecutions, emu.calls.getExecution];
  const result = await fn();
  return { result, list: emu.calls.listExecutions - list, get: emu.calls.getExecution - get };
}

describe('status checks of many executions of one job cost calls per job, not per execution', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  // A deadline no busy test machine reaches: a runJob timed out would leave its claim for reconciliation.
  emulatorHarness((started) => ({ emu, h } = started), { TICKRUN_BATCH_SIZE: '1000', TICKRUN_DISPATCH_CONCURRENCY: '100', TICKRUN_API_TIMEOUT: '30s', TICKRUN_CLAIM_LEASE: '1m' });

  it('checks 1,000 executions in flight with at most 50 calls, and records their mixed outcomes', async () => {
    await h.apply(`name: wide\ntasks:\n  t: { job: ${JOBS}/wide, count: 1000, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('wide');
    const first = await tick(h.deps, { budgetMs: 0 });
    // Nothing was in flight when that cycle began: what it sent is checked from the next one on.
    expect(first).toMatchObject({ claimed: 1000, dispatched: 1000, checked: 0, statusErrors: 0 });

    const inFlight = await statusCalls(emu, () => tick(h.deps, { budgetMs: 0 }));
    expect(inFlight.result).toMatchObject({ claimed: 0, checked: 1000, statusErrors: 0, succeeded: 0, failed: 0 });
    expect(inFlight.list + inFlight.get).toBeLessThanOrEqual(50);
    // The job's 1,000 executions in one page (a page asks for as many as are wanted, up to 1,000), no getExecution.
    expect({ list: inFlight.list, get: inFlight.get }).toEqual({ list: 1, get: 0 });
    expect((await h.tasks(runId)).every((t) => t.status === 'running')).toBe(true);

    // They end now: a third succeed, a third fail, a third are cancelled outside tickrun.
    const now = Date.now();
    for (const e of emu.executions.filter((x) => x.env.TICKRUN_RUN_ID === runId)) {
      const kind = Number(e.env.TICKRUN_TASK_INDEX) % 3;
      Object.assign(e, { finishedAt: now - 1, outcome: kind === 1 ? 'failed' : 'success', failedCount: kind === 1 ? 1 : 0, cancelled: kind === 2 });
    }
    const ended = await statusCalls(emu, () => tick(h.deps, { budgetMs: 0 }));
    expect(ended.result).toMatchObject({ checked: 1000, statusErrors: 0, succeeded: 334, failed: 666, runsCompleted: 1 });
    expect(ended.list + ended.get).toBeLessThanOrEqual(50);
    expect({ list: ended.list, get: ended.get }).toEqual({ list: 1, get: 0 });
    // The listing asked only for what a status is read from (and the page token), not whole executions.
    expect(emu.fieldMasks.listExecutions.split(',').sort()).toEqual([
      'executions.cancelledCount', 'executions.conditions.executionReason', 'executions.conditions.message', 'executions.conditions.state',
      'executions.conditions.type', 'executions.failedCount', 'executions.name', 'executions.succeededCount', 'executions.taskCount', 'nextPageToken',
    ]);

    const tasks = await h.tasks(runId);
    for (const t of tasks) {
      const kind = t.index % 3;
      if (kind === 0) expect(t).toMatchObject({ status: 'success', error: null });
      if (kind === 1) expect(t).toMatchObject({ status: 'failed', error: expect.stringMatching(/exit code 1.*1 of 1 tasks failed/) });
      if (kind === 2) expect(t).toMatchObject({ status: 'failed', error: `execution ${t.executionName} was cancelled outside tickrun: The execution was cancelled.` });
    }
  });
});

describe('a listing that fails', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  // A deadline no busy test machine reaches, so every runJob is answered and all 600 are in flight.
  emulatorHarness((started) => ({ emu, h } = started), { TICKRUN_BATCH_SIZE: '1000', TICKRUN_DISPATCH_CONCURRENCY: '100', TICKRUN_API_TIMEOUT: '30s', TICKRUN_CLAIM_LEASE: '1m' });

  it('answers a failed listing of 600 executions with no more calls than that listing, and ends them once the API recovers', async () => {
    await h.apply(`name: outage\ntasks:\n  t: { job: ${JOBS}/outage, count: 600, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('outage');
    expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ dispatched: 600 });

    // The listing answers 503 for two cycles: the 600 are read one page at a time, so each failed
    // listing may be answered by at most that one page's call, never by one getExecution each.
    emu.setFaults({ rate: 1, kinds: ['503'], rpcs: ['listExecutions'] });
    for (let cycle = 0; cycle < 2; cycle++) {
      const down = await statusCalls(emu, () => tick(h.deps, { budgetMs: 0 }));
      expect(down.result).toMatchObject({ checked: 600, statusErrors: 600, succeeded: 0, failed: 0 });
      expect(down.list + down.get).toBeLessThanOrEqual(1);
    }
    expect((await h.tasks(runId)).every((t) => t.status === 'dispatched')).toBe(true);

    // The API recovers and the executions end: the next cycle reads and records every one.
    emu.setFaults(null);
    const now = Date.now();
    for (const e of emu.executions.filter((x) => x.env.TICKRUN_RUN_ID === runId)) Object.assign(e, { finishedAt: now - 1 });
    const up = await statusCalls(emu, () => tick(h.deps, { budgetMs: 0 }));
    expect(up.result).toMatchObject({ checked: 600, statusErrors: 0, succeeded: 600, runsCompleted: 1 });
    expect({ list: up.list, get: up.get }).toEqual({ list: 1, get: 0 });
    expect((await h.tasks(runId)).every((t) => t.status === 'success')).toBe(true);
  });
});

describe('TICKRUN_STATUS_BATCH_SIZE', () => {
  it('checks at most that many in-flight executions per cycle, least recently checked first', async () => {
    const emu = await startCloudRunEmulator();
    const h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_BATCH_SIZE: '500', TICKRUN_STATUS_BATCH_SIZE: '300' });
    try {
      await h.apply(`name: capped\ntasks:\n  t: { job: ${JOBS}/capped, count: 500, env: { EMU_DURATION_MS: "600000" } }\n`);
      await h.trigger('capped');
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ dispatched: 500, checked: 0 });
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ dispatched: 0, checked: 300 });
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ dispatched: 0, checked: 300 });
      // The 200 not checked by the first check were checked by the second: none is still unchecked.
      const { rows } = await h.db.pool.query("select count(*)::int as n from tasks where checked_at is null and status in ('dispatched', 'running')");
      expect(rows[0].n).toBe(0);
    } finally {
      await h.close();
      await emu.stop();
    }
  });
});

describe('statusMany', () => {
  let emu: CloudRunEmulator;
  let executor: Executor;
  const request = (job: string, env: Record<string, string> = {}): DispatchRequest => ({
    taskId: '1', runId: '1', workflow: 'w', taskName: 't', index: 0, attempt: 1, params: {}, workflowDir: '/',
    spec: { executor: 'cloudrun', job: `${JOBS}/${job}`, count: 1, env, dependsOn: [], ancestors: [], retries: 0, backoffMs: 0 } as TaskSpec,
  });
  const start = (job: string, n: number, env: Record<string, string> = {}) => Promise.all(Array.from({ length: n }, () => executor.dispatch(request(job, env))));

  beforeAll(async () => {
    setLogSink(null);
    emu = await startCloudRunEmulator();
    executor = createCloudRunExecutor({ emulatorHost: emu.host, timeouts: everyCall(500) });
  });
  afterEach(() => emu.setFaults(null));
  afterAll(() => emu.stop());

  it('reads a job with few executions one by one, lists a job with several, and fails the missing ones', async () => {
    const [alone] = await start('alone', 1);
    const pair = await start('pair', 2, { EMU_FAIL: '1' });
    const several = await start('several', 4, { EMU_DURATION_MS: '600000' });
    const gone = `${JOBS}/several/executions/several-gone`;
    const nowhere = `${JOBS}/nowhere/executions/nowhere-x`;
    const { result, list, get } = await statusCalls(emu, () => executor.statusMany([alone, ...pair, ...several, gone, nowhere], 10));
    expect(result.get(alone)).toEqual({ state: 'success' });
    for (const name of pair) expect(result.get(name)).toMatchObject({ state: 'failed', error: expect.stringMatching(/exit code 1/) });
    for (const name of several) expect(result.get(name)).toEqual({ state: 'running' });
    // Their jobs exist: ended, their outcome unknown (docs/guarantees.md).
    expect(result.get(gone)).toEqual(vanishedStatus(gone, `${JOBS}/several`, true));
    expect(result.get(nowhere)).toEqual(vanishedStatus(nowhere, `${JOBS}/nowhere`, true));
    expect(result.size).toBe(9);
    // One listing for `several`; getExecution for `alone`, the pair, and the two the listing did not settle.
    expect({ list, get }).toEqual({ list: 1, get: 5 });
  });

  it('lists 2,500 executions of a job in 3 pages: a page asks for as many as are wanted, up to 1,000', async () => {
    const names: string[] = [];
    for (let i = 0; i < 50; i++) names.push(...(await start('deep', 50)));
    const { result, list, get } = await statusCalls(emu, () => executor.statusMany(names, 10));
    expect(names.every((name) => (result.get(name) as { state?: string } | undefined)?.state === 'success')).toBe(true);
    expect({ list, get }).toEqual({ list: 3, get: 0 });
  });

  it('pages no further than the names it still misses are worth', async () => {
    const old = await start('paged', 3);
    for (let i = 0; i < 10; i++) await start('paged', 50);
    // The three wanted are the oldest of 503: listing to them would take 6 pages; it stops at 3.
    const { result, list, get } = await statusCalls(emu, () => executor.statusMany(old, 10));
    expect(old.map((name) => result.get(name))).toEqual([{ state: 'success' }, { state: 'success' }, { state: 'success' }]);
    expect({ list, get }).toEqual({ list: 3, get: 3 });
  });

  it.each(['503', '500', 'reset'] as const)('leaves every execution of a job unread when its listing fails with %s, and reads them once it answers', async (kind) => {
    const names = await start(`faulty-${kind}`, 4);
    emu.setFaults({ rate: 1, kinds: [kind], rpcs: ['listExecutions'] });
    const failed = await statusCalls(emu, () => executor.statusMany(names, 10));
    for (const name of names) expect(failed.result.get(name)).toBeInstanceOf(ExecutorFault);
    // The one listing that failed, and no getExecution in its place.
    expect({ list: failed.list, get: failed.get }).toEqual({ list: 1, get: 0 });
    emu.setFaults(null);
    const { result, list, get } = await statusCalls(emu, () => executor.statusMany(names, 10));
    expect(names.map((name) => result.get(name))).toEqual(names.map(() => ({ state: 'success' })));
    expect({ list, get }).toEqual({ list: 1, get: 0 });
  });

  it('fails every execution of a job that no longer exists without reading them one by one', async () => {
    // Cloud Run answers NOT_FOUND for the listing of a deleted job (the emulator knows every job).
    const calls: string[] = [];
    const server = http.createServer((req, res) => {
      calls.push(`${req.method} ${req.url?.split('?')[0]}`);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 404, message: "Resource 'namespaces/demo/jobs/deleted' could not be found.", status: 'NOT_FOUND' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const gone = createCloudRunExecutor({ emulatorHost: `127.0.0.1:${(server.address() as AddressInfo).port}`, timeouts: everyCall(500) });
      const names = ['a', 'b', 'c'].map((x) => `${JOBS}/deleted/executions/deleted-${x}`);
      const result = await gone.statusMany(names, 10);
      for (const name of names) expect(result.get(name)).toEqual({ state: 'failed', outcomeUnknown: true, error: expect.stringContaining(`execution ${name} is gone with its job`) });
      expect(calls).toEqual([`GET /v2/${JOBS}/deleted/executions`]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('stops reading executions one by one at the first answer out of quota, and reads them once quota is back', async () => {
    // 20 jobs of one execution each: below the listing's threshold, so each is a getExecution.
    const names = (await Promise.all(Array.from({ length: 20 }, (_, i) => start(`single-${i}`, 1)))).flat();
    emu.setFaults({ rate: 1, kinds: ['429'], rpcs: ['getExecution'] });
    const refused = await statusCalls(emu, () => executor.statusMany(names, 2));
    for (const name of names) expect(refused.result.get(name)).toMatchObject({ kind: 'quota' });
    // Only the calls already under way when the first 429 came back: at most `concurrency` of them.
    expect(refused.get).toBeLessThanOrEqual(2);
    emu.setFaults(null);
    const { result, get } = await statusCalls(emu, () => executor.statusMany(names, 2));
    expect(names.map((name) => result.get(name))).toEqual(names.map(() => ({ state: 'success' })));
    expect(get).toBe(20);
  });

  it('leaves every execution of a job unread when its listing is refused for quota, without reading them one by one', async () => {
    const names = await start('quota', 4);
    emu.setFaults({ rate: 1, kinds: ['429'], rpcs: ['listExecutions'] });
    const { result, get } = await statusCalls(emu, () => executor.statusMany(names, 10));
    for (const name of names) expect(result.get(name)).toMatchObject({ kind: 'quota' });
    expect(result.get(names[0])).toBeInstanceOf(ExecutorFault);
    expect(get).toBe(0);
  });
});
