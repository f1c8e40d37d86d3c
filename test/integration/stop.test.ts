import { cancelRun } from '../../shared/operator/cancel';
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
});
