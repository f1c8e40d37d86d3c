import { tick } from '../../shared/tick';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs/slow';

describe('a tick with a budget', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    // 40 tasks sent 2 at a time, each runJob held past its 500 ms deadline: 10 s of calls in one cycle,
    // of which a 10 s lease allows 8.5 s.
    h = await createHarness({
      CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_API_TIMEOUT: '500ms', TICKRUN_CLAIM_LEASE: '10s',
      TICKRUN_BATCH_SIZE: '40', TICKRUN_DISPATCH_CONCURRENCY: '2', TICKRUN_POLL_INTERVAL: '200ms',
    });
  });
  afterAll(async () => {
    await h.close();
    await emu.stop();
  });

  it('starts no call that could end past its budget, so it ends within the budget, and spends no attempt on what it did not send', async () => {
    await h.apply(`name: slow\ntasks:\n  t: { job: ${JOB}, count: 40 }\n`);
    const runId = await h.trigger('slow');
    emu.setFaults({ rate: 1, kinds: ['delay'], rpcs: ['runJob'], delayMs: 2000 });
    const budgetMs = 2000;
    const sent = emu.calls.runJob ?? 0;
    const summary = await tick(h.deps, { budgetMs }).finally(() => emu.setFaults(null));
    // A call starts only if its deadline ends by the budget less 1 s to record: each of the 2 slots
    // starts one at most every deadline until then. Counted, not timed; the duration bound is checked
    // with half a second of slack for a loaded machine.
    const timeoutMs = h.config.timeouts.dispatch;
    const startBy = budgetMs - 1000 - timeoutMs;
    expect((emu.calls.runJob ?? 0) - sent).toBeLessThanOrEqual(2 * (Math.floor(startBy / timeoutMs) + 1));
    expect(summary.durationMs).toBeLessThanOrEqual(budgetMs + 500);
    expect(summary.claimed).toBe(40);
    // Those sent are left for reconciliation (their answer was lost); the others went back unsent.
    expect(summary.ambiguous).toBeGreaterThan(0);
    expect(summary.requeued).toBeGreaterThan(0);
    expect(summary.ambiguous + summary.requeued).toBe(40);
    const queued = (await h.tasks(runId)).filter((t) => t.status === 'queued');
    expect(queued).toHaveLength(summary.requeued);
    for (const t of queued) expect(t.attempt).toBe(0);

    // With the API back, every task ends once: the sent ones adopted, the others sent now.
    expect((await h.runToEnd(runId)).status).toBe('success');
    const starts = emu.startsByAttempt();
    expect([...starts.values()].every((n) => n === 1)).toBe(true);
    expect(starts.size).toBe(40);
  });

  it('starts no status check that could end past its budget either, so a slow API cannot hold a tick of checks past its budget', async () => {
    // 30 executions of 30 jobs are read one getExecution each, 2 at a time, each answered after 400 ms:
    // 6 s of checks, for a tick whose budget is 2 s.
    const jobs = [...Array(30).keys()].map((i) => `  t${i}: { job: projects/demo/locations/us-central1/jobs/check-${i}, env: { EMU_DURATION_MS: "600000" } }`);
    const checks = await createHarness({
      CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_API_TIMEOUT: '500ms', TICKRUN_CLAIM_LEASE: '10s', TICKRUN_STATUS_CONCURRENCY: '2',
      TICKRUN_POLL_INTERVAL: '200ms',
    });
    emu.setFaults(null);
    try {
      await checks.apply(`name: checks\ntasks:\n${jobs.join('\n')}\n`);
      const runId = await checks.trigger('checks');
      expect((await tick(checks.deps, { budgetMs: 0 })).dispatched).toBe(30);
      emu.setFaults({ rate: 1, kinds: ['delay'], rpcs: ['getExecution'], delayMs: 400 });
      const budgetMs = 2000;
      const read = emu.calls.getExecution ?? 0;
      const summary = await tick(checks.deps, { budgetMs });
      // 2 at a time, each at least 400 ms, none started unless its deadline ends by the budget less 1 s.
      const { read: readMs, list } = checks.config.timeouts;
      expect((emu.calls.getExecution ?? 0) - read).toBeLessThanOrEqual(2 * (Math.floor((budgetMs - 1000 - Math.max(readMs, list)) / 400) + 1));
      expect(summary.durationMs).toBeLessThanOrEqual(budgetMs + 500);
      expect(summary.checked).toBeGreaterThan(0);
      // What was not read stays in flight for the next tick.
      expect((await checks.tasks(runId)).every((t) => t.status === 'dispatched' || t.status === 'running')).toBe(true);
    } finally {
      emu.setFaults(null);
      await checks.close();
    }
  });
});

describe('a short budget', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  beforeAll(async () => {
    emu = await startCloudRunEmulator();
    // The chaos suite's settings: 500 ms calls, a tick of 2 s (its budget less 1 s to record: 1 s of calls).
    h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_API_TIMEOUT: '500ms', TICKRUN_CLAIM_LEASE: '3s', TICKRUN_POLL_INTERVAL: '200ms' });
  });
  afterAll(async () => {
    await h.close();
    await emu.stop();
  });

  it('still stops an attempt past its timeout: a stop is a call of 500 ms, and fits a tick of 2 s', async () => {
    await h.apply(`name: overdue\ntasks:\n  t: { job: ${JOB}-overdue, timeout: 1s, env: { EMU_DURATION_MS: "600000" } }\n`);
    const runId = await h.trigger('overdue');
    expect((await tick(h.deps, { budgetMs: 0 })).dispatched).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    await tick(h.deps, { budgetMs: 2000 });
    expect(emu.calls.cancelExecution ?? 0).toBe(1);
    await tick(h.deps, { budgetMs: 2000 });
    const [task] = await h.tasks(runId);
    expect(task.status).toBe('failed');
    expect(task.error).toMatch(/timed out after 1s/);
  });
});
