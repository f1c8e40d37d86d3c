import { cancelRun } from '../../shared/operator/cancel';
import { checkInFlight, readInFlight } from '../../shared/steps/poll';
import { tick } from '../../shared/tick';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stopping an attempt: past its timeout, or with its run cancelled', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  emulatorHarness((started) => ({ emu, h } = started));
  const executionsOf = (runId: string) => emu.executions.filter((e) => e.env.TICKRUN_RUN_ID === runId);
  const cancels = () => emu.calls.cancelExecution ?? 0;

  /** Ticks until none of the run's tasks is in flight (a cancelled run has ended before its tasks have). */
  async function tickUntilSettled(runId: string, maxTicks = 100): Promise<void> {
    for (let i = 0; i < maxTicks; i++) {
      await tick(h.deps, { budgetMs: 0 });
      const { rows } = await h.db.pool.query("select count(*)::int as n from tasks where run_id = $1 and status in ('claimed', 'dispatched', 'running')", [runId]);
      if (rows[0].n === 0) return;
      await sleep(20);
    }
    throw new Error(`run ${runId} still has tasks in flight after ${maxTicks} ticks: ${JSON.stringify(await h.tasks(runId))}`);
  }

  it('records an execution that succeeded before a late tick saw its deadline pass as a success, neither cancelled nor run again', async () => {
    await h.apply(`name: on-time\ntasks:\n  t: { job: ${JOB}/on-time, timeout: 1s, retries: 1, backoff: 0s, env: { EMU_DURATION_MS: "300" } }\n`);
    const runId = await h.trigger('on-time');
    await tick(h.deps, { budgetMs: 0 }); // sent
    // No tick comes until the deadline has passed (an outage); the execution succeeded meanwhile.
    await sleep(1500);
    const cancelsBefore = cancels();
    const run = await h.runToEnd(runId);
    expect(run.status).toBe('success');
    expect((await h.tasks(runId))[0]).toMatchObject({ status: 'success', attempt: 1, error: null });
    expect(executionsOf(runId)).toHaveLength(1);
    expect(cancels() - cancelsBefore).toBe(0);
  });

  it('records an execution that succeeded before its run was cancelled as a success', async () => {
    await h.apply(`name: done-first\ntasks:\n  t: { job: ${JOB}/done-first, env: { EMU_DURATION_MS: "100" } }\n`);
    const runId = await h.trigger('done-first');
    await tick(h.deps, { budgetMs: 0 }); // sent
    await sleep(300); // it has succeeded; no tick has seen it yet
    expect(await cancelRun(h.db.pool, h.config, h.deps.executors, runId)).toMatchObject({ cancelled: true, status: 'cancelled', errors: [] });
    await tickUntilSettled(runId);
    expect((await h.tasks(runId))[0]).toMatchObject({ status: 'success', attempt: 1, error: null });
    expect(executionsOf(runId)[0].cancelled).toBe(false);
  });

  it("a poll that read its tasks before the run was cancelled, and finds the execution cancelled by that cancel, records the task cancelled, not failed", async () => {
    await h.apply(`name: raced\ntasks:\n  t: { job: ${JOB}/raced, retries: 2, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('raced');
    await tick(h.deps, { budgetMs: 0 }); // sent
    // A tick's poll reads the task in flight while its run still runs (the chaos suite's seed 742045664)…
    const ctx = h.context();
    const rows = await readInFlight(ctx);
    expect(rows.find((t) => t.run_id === runId)).toMatchObject({ run_status: 'running' });
    // …the operator's cancel ends the run and stops the execution, which Cloud Run stops at once…
    expect(await cancelRun(h.db.pool, h.config, h.deps.executors, runId)).toMatchObject({ cancelled: true, executionsCancelled: 1 });
    // …then the poll reads the execution, cancelled, and records what it read.
    await checkInFlight(ctx, rows.filter((t) => t.run_id === runId));
    expect((await h.tasks(runId))[0]).toMatchObject({ status: 'cancelled', attempt: 1, error: 'run cancelled' });
  });

  describe('while Cloud Run takes a second to stop a cancelled execution', () => {
    beforeEach(() => (emu.cancelDelayMs = 1000));
    afterEach(() => (emu.cancelDelayMs = 0));

    it('keeps a timed-out attempt in flight until its execution has stopped: the retry never overlaps it, and the cancel is sent once', async () => {
      await h.apply(`name: slow-stop\ntasks:\n  t: { job: ${JOB}/slow-stop, timeout: 300ms, retries: 1, backoff: 0s, env: { EMU_DURATION_MS: "60000" } }\n`);
      const cancelsBefore = cancels();
      const runId = await h.trigger('slow-stop');
      const run = await h.runToEnd(runId, { pauseMs: 50 });
      expect(run.status).toBe('failed');
      expect((await h.tasks(runId))[0]).toMatchObject({ status: 'failed', attempt: 2, error: 'timed out after 300ms' });
      const [first, second] = executionsOf(runId);
      expect([first.cancelled, second.cancelled]).toEqual([true, true]);
      // The second attempt started only once the first had stopped.
      expect(second.createdAt).toBeGreaterThanOrEqual(first.finishedAt!);
      // Many ticks came while each execution stopped; each was asked to stop once.
      expect(cancels() - cancelsBefore).toBe(2);
    });

    it("keeps a cancelled run's execution in flight, holding its concurrency slot, until it has stopped; then it ends cancelled", async () => {
      await h.apply(`name: held\nconcurrency: 1\ntasks:\n  t: { job: ${JOB}/held, env: { EMU_DURATION_MS: "60000" } }\n`);
      const runId = await h.trigger('held');
      await tick(h.deps, { budgetMs: 0 });
      await tick(h.deps, { budgetMs: 0 });
      expect((await h.tasks(runId))[0].status).toBe('running');
      const cancelsBefore = cancels();
      expect(await cancelRun(h.db.pool, h.config, h.deps.executors, runId)).toMatchObject({ cancelled: true, status: 'cancelled', executionsCancelled: 1, errors: [] });
      const slotHeld = async () => (await h.db.pool.query("select count(*)::int as n from concurrency_slots where workflow = 'held' and task_id is not null")).rows[0].n;
      // Cloud Run has not stopped it yet: the task is still in flight, with its slot, through a tick.
      await tick(h.deps, { budgetMs: 0 });
      expect((await h.tasks(runId))[0]).toMatchObject({ status: 'running' });
      expect(await slotHeld()).toBe(1);
      await sleep(1100);
      await tickUntilSettled(runId);
      expect((await h.tasks(runId))[0]).toMatchObject({ status: 'cancelled', attempt: 1, error: 'run cancelled' });
      expect(await slotHeld()).toBe(0);
      expect(executionsOf(runId)[0].cancelled).toBe(true);
      expect(cancels() - cancelsBefore).toBe(1);
    });
  });
});

describe('a stop that cannot be made ends anyway, with the reason recorded', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  // Stopping may take 2 s, from the first time it is asked, before the attempt ends regardless.
  emulatorHarness((started) => ({ emu, h } = started), { TICKRUN_STOP_TIMEOUT: '2s' });
  afterEach(() => {
    emu.setFaults(null);
    emu.cancelDelayMs = 0;
  });
  const cancels = () => emu.calls.cancelExecution ?? 0;
  const executionsOf = (runId: string) => emu.executions.filter((e) => e.env.TICKRUN_RUN_ID === runId);

  it('a cancel refused for want of permission ends a timed-out attempt at once, failed, with the API message and the permission to grant', async () => {
    emu.setFaults({ rate: 1, kinds: ['403'], rpcs: ['cancelExecution'] });
    await h.apply(`name: no-cancel\ntasks:\n  t: { job: ${JOB}/no-cancel, timeout: 300ms, env: { EMU_DURATION_MS: "60000" } }\n`);
    const cancelsBefore = cancels();
    const runId = await h.trigger('no-cancel');
    const run = await h.runToEnd(runId, { maxTicks: 30, pauseMs: 50 });
    expect(run.status).toBe('failed');
    const [task] = await h.tasks(runId);
    expect(task).toMatchObject({ status: 'failed', attempt: 1 });
    expect(task.error).toMatch(/^timed out after 300ms; its execution could not be stopped and may still run: Cloud Run cancelExecution .*PERMISSION_DENIED: Permission 'run\.executions\.cancel' denied/);
    expect(task.error).toMatch(/grant run\.executions\.cancel .*roles\/run\.developer/);
    // No retry cures a refusal: it was asked once.
    expect(cancels() - cancelsBefore).toBe(1);
  });

  it("a cancel refused for want of permission ends a cancelled run's attempt at once, cancelled, freeing its concurrency slot", async () => {
    await h.apply(`name: no-cancel-run\nconcurrency: 1\ntasks:\n  t: { job: ${JOB}/no-cancel-run, env: { EMU_DURATION_MS: "60000" } }\n`);
    const runId = await h.trigger('no-cancel-run');
    await tick(h.deps, { budgetMs: 0 });
    emu.setFaults({ rate: 1, kinds: ['403'], rpcs: ['cancelExecution'] });
    const result = await cancelRun(h.db.pool, h.config, h.deps.executors, runId);
    expect(result).toMatchObject({ cancelled: true, status: 'cancelled', executionsCancelled: 0 });
    expect(result.errors).toEqual([expect.stringMatching(/PERMISSION_DENIED.*grant run\.executions\.cancel/)]);
    const [task] = await h.tasks(runId);
    expect(task).toMatchObject({ status: 'cancelled', attempt: 1 });
    expect(task.error).toMatch(/^run cancelled; its execution could not be stopped and may still run: .*PERMISSION_DENIED/);
    const { rows } = await h.db.pool.query("select count(*)::int as n from concurrency_slots where workflow = 'no-cancel-run' and task_id is not null");
    expect(rows[0].n).toBe(0);
  });

  it('a cancel that keeps failing for a transient fault is asked again each cycle, then ends the attempt with the fault once the stop timeout has passed', async () => {
    emu.setFaults({ rate: 1, kinds: ['503'], rpcs: ['cancelExecution'] });
    await h.apply(`name: flaky-cancel\ntasks:\n  t: { job: ${JOB}/flaky-cancel, timeout: 300ms, env: { EMU_DURATION_MS: "60000" } }\n`);
    const cancelsBefore = cancels();
    const runId = await h.trigger('flaky-cancel');
    const started = Date.now();
    const run = await h.runToEnd(runId, { maxTicks: 80, pauseMs: 100 });
    expect(run.status).toBe('failed');
    // The deadline (300 ms), then 2 s of asking.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2300);
    const [task] = await h.tasks(runId);
    expect(task.error).toMatch(/^timed out after 300ms; its execution could not be stopped and may still run: Cloud Run cancelExecution .*UNAVAILABLE/);
    expect(cancels() - cancelsBefore).toBeGreaterThan(2);
  });

  it('an execution that has not stopped by the stop timeout after its cancel was accepted ends the attempt anyway, saying so', async () => {
    emu.cancelDelayMs = 60_000;
    await h.apply(`name: stuck\ntasks:\n  t: { job: ${JOB}/stuck, timeout: 300ms, env: { EMU_DURATION_MS: "120000" } }\n`);
    const cancelsBefore = cancels();
    const runId = await h.trigger('stuck');
    const run = await h.runToEnd(runId, { maxTicks: 80, pauseMs: 100 });
    expect(run.status).toBe('failed');
    const [task] = await h.tasks(runId);
    expect(task.error).toBe(`timed out after 300ms; its execution ${executionsOf(runId)[0].name} was asked to stop but still ran 2s later`);
    // Accepted once, never sent again.
    expect(cancels() - cancelsBefore).toBe(1);
  });
});
