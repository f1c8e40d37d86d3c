import { cancelRun } from '../../shared/operator/cancel';
import { tick } from '../../shared/tick';
import type { TickSummary } from '../../shared/cycle';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { peakRunning } from '../helpers/executionStats';
import { emulatorHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs';
const READS = ['getExecution', 'listExecutions', 'getJob', 'getOperation'];

describe('array tasks: many logical tasks sent as one Cloud Run execution', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  emulatorHarness((started) => ({ emu, h } = started));
  const calls = (rpc: string) => emu.calls[rpc] ?? 0;
  const executionsOf = (runId: string) => emu.executions.filter((e) => e.env.TICKRUN_RUN_ID === runId);
  const rowsOf = async (runId: string) =>
    (await h.db.pool.query<{ task_index: number; status: string; attempt: number; error: string | null }>(
      'select task_index, status, attempt, error from tasks where run_id = $1 order by task_index', [runId])).rows;
  const running = async () => (await h.db.pool.query<{ n: number }>(`select coalesce(sum(running), 0)::int as n from regions`)).rows[0].n;

  it('a 10,000-index array whose indexes 17, 4242 and 9999 fail once: 2 runJob calls, one status read per cycle, the Tasks API pages at the end', async () => {
    await h.apply(`name: wide
tasks:
  fan:
    job: ${JOB}/wide
    array: true
    count: 10000
    retries: 1
    backoff: 1s
    env: { EMU_FAIL_INDEXES: "17,4242,9999", EMU_FAIL: "attempts<2", EMU_DURATION_MS: "1500" }
`);
    const before = Object.fromEntries([...READS, 'runJob', 'listTasks', 'getTask'].map((rpc) => [rpc, calls(rpc)]));
    const runId = await h.trigger('wide');
    const run = await h.runToEnd(runId, { pauseMs: 100, maxTicks: 400 });
    expect(run.status).toBe('success');

    // One execution for all 10,000, one for the three that failed.
    expect(calls('runJob') - before.runJob).toBe(2);
    const [all, retry] = executionsOf(runId);
    expect(all).toMatchObject({ taskCount: 10000, env: expect.objectContaining({ TICKRUN_TASK_INDEXES: '0-9999', TICKRUN_ATTEMPT: '1' }) });
    expect(retry).toMatchObject({ taskCount: 3, env: expect.objectContaining({ TICKRUN_TASK_INDEXES: '17,4242,9999', TICKRUN_ATTEMPT: '2' }) });
    expect(all.env.TICKRUN_TASK_ID).toBeUndefined();

    // Every logical task: its own row, its own attempts and history.
    const rows = await rowsOf(runId);
    expect(rows).toHaveLength(10000);
    expect(rows.every((r) => r.status === 'success')).toBe(true);
    const twice = rows.filter((r) => r.attempt === 2).map((r) => r.task_index);
    expect(twice).toEqual([17, 4242, 9999]);
    expect(rows.filter((r) => r.attempt === 1)).toHaveLength(9997);
    const { rows: history } = await h.db.pool.query<{ attempt: number; status: string; n: number }>(
      `select a.attempt, a.status, count(*)::int as n from task_attempts a where a.run_id = $1 group by 1, 2 order by 1, 2`, [runId]);
    expect(history).toEqual([{ attempt: 1, status: 'failed', n: 3 }, { attempt: 1, status: 'success', n: 9997 }, { attempt: 2, status: 'success', n: 3 }]);
    const { rows: failedOnce } = await h.db.pool.query<{ error: string }>(
      `select a.error from task_attempts a join tasks t on t.id = a.task_id where a.run_id = $1 and a.status = 'failed' order by t.task_index`, [runId]);
    // Cloud Run task 4242 of the first execution ran logical index 4242.
    expect(failedOnce[1].error).toMatch(/Cloud Run task 4242 failed/);

    // Status: at most one read per execution in flight per cycle (one execution at a time here), and the
    // Tasks API only at the end of the execution that failed: 10 pages of 1,000.
    const cycles = run.ticks.reduce((n: number, t: TickSummary) => n + t.cycles, 0);
    const reads = READS.reduce((n, rpc) => n + calls(rpc) - before[rpc], 0);
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThanOrEqual(cycles);
    expect(calls('listTasks') - before.listTasks).toBe(10);
    expect(calls('getTask') - before.getTask).toBe(0);
    expect(emu.fieldMasks.listTasks).toMatch(/tasks\.index/);
    // Each execution was one place under the region's cap, given back when it ended.
    expect(await running()).toBe(0);
    for (const n of emu.startsByIndex().values()) expect(n).toBe(1);
  }, 120_000);

  it('an array execution is one run request and one place under the cap, however many indexes it runs', async () => {
    await h.apply(`name: capped\ntasks:\n  wide: { job: projects/cap/locations/r1/jobs/wide, array: true, count: 3000, env: { EMU_DURATION_MS: "400" } }\n  plain: { job: projects/cap/locations/r1/jobs/plain, count: 3, env: { EMU_DURATION_MS: "400" } }\n`);
    await h.db.pool.query(`insert into regions (region, max_running) values ('cap/r1', 2) on conflict (region) do update set max_running = 2`);
    const runId = await h.trigger('capped');
    const run = await h.runToEnd(runId, { pauseMs: 100 });
    expect(run.status).toBe('success');
    const executions = executionsOf(runId);
    expect(executions.map((e) => e.taskCount).sort((a, b) => a - b)).toEqual([1, 1, 1, 3000]);
    expect(peakRunning(executions)).toBeLessThanOrEqual(2);
    // The run budget paid one request per execution.
    const { rows: [usage] } = await h.db.pool.query(`select sum(run_calls)::int as n from region_usage where region = 'cap/r1'`);
    expect(usage.n).toBe(4);
    expect(await running()).toBe(0);
  }, 60_000);

  it('holds a concurrency limit: a 120-index array under concurrency 50 is sent as executions of at most 50', async () => {
    await h.apply(`name: narrow\nconcurrency: 50\ntasks:\n  fan: { job: ${JOB}/narrow, array: true, count: 120, env: { EMU_DURATION_MS: "300" } }\n`);
    const runId = await h.trigger('narrow');
    const run = await h.runToEnd(runId, { pauseMs: 100 });
    expect(run.status).toBe('success');
    const sizes = executionsOf(runId).map((e) => e.taskCount);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(50);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(120);
    expect(sizes.length).toBe(3);
    expect((await rowsOf(runId)).every((r) => r.status === 'success' && r.attempt === 1)).toBe(true);
  }, 60_000);

  it('a timeout stops the one execution and ends every index of it as failed', async () => {
    await h.apply(`name: slow\ntasks:\n  fan: { job: ${JOB}/slow, array: true, count: 5, timeout: 1s, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('slow');
    const run = await h.runToEnd(runId, { pauseMs: 200 });
    expect(run.status).toBe('failed');
    const rows = await rowsOf(runId);
    expect(rows.map((r) => r.status)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed']);
    expect(rows.every((r) => /timed out after 1s/.test(r.error ?? ''))).toBe(true);
    expect(executionsOf(runId)).toHaveLength(1);
    expect(executionsOf(runId)[0].cancelled).toBe(true);
    expect(await running()).toBe(0);
  }, 60_000);

  it('a lost runJob answer is reconciled by the head: the execution is found by TICKRUN_ARRAY_ID and adopted by every row, never sent twice', async () => {
    await h.apply(`name: lost\ntasks:\n  fan: { job: ${JOB}/lost, array: true, count: 500, env: { EMU_DURATION_MS: "300" } }\n`);
    // The run request is carried out, and its answer lost (a 500 or a dropped connection).
    emu.setFaults({ rate: 1, kinds: ['lost'], rpcs: ['runJob'], jobs: [`${JOB}/lost`] });
    const runId = await h.trigger('lost');
    try {
      const first = await tick(h.deps, { budgetMs: 0 });
      expect(first).toMatchObject({ claimed: 500, ambiguous: 500 });
    } finally {
      emu.setFaults(null);
    }
    const run = await h.runToEnd(runId, { pauseMs: 200 });
    expect(run.status).toBe('success');
    expect(run.ticks.reduce((n, t) => n + t.adopted, 0)).toBe(500);
    const executions = executionsOf(runId);
    expect(executions).toHaveLength(1);
    expect(executions[0]).toMatchObject({ taskCount: 500, env: expect.objectContaining({ TICKRUN_TASK_INDEXES: '0-499', TICKRUN_ATTEMPT: '1' }) });
    const rows = await rowsOf(runId);
    expect(rows.every((r) => r.status === 'success' && r.attempt === 1)).toBe(true);
    const { rows: names } = await h.db.pool.query('select distinct execution_name from tasks where run_id = $1', [runId]);
    expect(names.map((r) => r.execution_name)).toEqual([executions[0].name]);
    expect(await running()).toBe(0);
  }, 60_000);

  it('cancel stops the one execution and ends every row of it', async () => {
    await h.apply(`name: stopme\ntasks:\n  fan: { job: ${JOB}/stopme, array: true, count: 300, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('stopme');
    await tick(h.deps, { budgetMs: 0 });
    expect(executionsOf(runId)).toHaveLength(1);
    const cancelsBefore = calls('cancelExecution');
    const result = await cancelRun(h.db.pool, h.config, h.deps.executors, runId);
    expect(result).toMatchObject({ cancelled: true, executionsCancelled: 1 });
    expect(calls('cancelExecution') - cancelsBefore).toBe(1);
    // The run is cancelled at once; its rows end when a tick's poll sees the execution stopped.
    let rows = await rowsOf(runId);
    for (let i = 0; i < 20 && rows.some((r) => r.status !== 'cancelled'); i++) {
      await tick(h.deps, { budgetMs: 0 });
      rows = await rowsOf(runId);
    }
    expect(rows.every((r) => r.status === 'cancelled')).toBe(true);
    expect(await running()).toBe(0);
  }, 60_000);
});
