import { RUN_CANCELLED } from '../../shared/lifecycle';
import { getRun } from '../../shared/model/runs';
import { cancelRun } from '../../shared/operator/cancel';
import { claimReadyTasks } from '../../shared/steps/claim';
import { expandPendingRuns } from '../../shared/steps/expand';
import { RECORD_SQL } from '../../shared/steps/record';
import { tick } from '../../shared/tick';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs/held';

// A cancelled run starts nothing more: a claim being sent while `cancel` runs may come back (a 503, a
// claim the reaper finds never sent), and then it must end cancelled, never queued for a new execution.
describe('after cancel, no execution starts for the run', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  emulatorHarness((started) => ({ emu, h } = started), { TICKRUN_API_TIMEOUT: '2s', TICKRUN_CLAIM_LEASE: '5s' });
  beforeAll(async () => {
    await h.apply(`name: held\nconcurrency: 3\ntasks:\n  t: { job: ${JOB}, count: 2, retries: 2, env: { EMU_DURATION_MS: "50" } }\n`);
  });
  afterEach(() => {
    emu.setFaults(null);
    emu.latencyMs = 0;
  });

  const executionsOf = (runId: string) => emu.executions.filter((e) => e.env.TICKRUN_RUN_ID === runId);
  const waitForStatus = async (runId: string, status: string) => {
    for (let i = 0; i < 200; i++) {
      const { rows } = await h.db.pool.query('select count(*)::int as n from tasks where run_id = $1 and status = $2', [runId, status]);
      if (rows[0].n > 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no task of run ${runId} became ${status}`);
  };
  /** Ticks on as a scheduler would, with every wait before a claim over, then checks that nothing started. */
  const tickOn = async (runId: string) => {
    for (let i = 0; i < 5; i++) {
      await h.db.pool.query('update tasks set next_attempt_at = now() where run_id = $1', [runId]);
      await tick(h.deps, { budgetMs: 0 });
    }
    expect(executionsOf(runId)).toEqual([]);
  };
  /**
   * The run and its tasks ended cancelled, their concurrency slots given back. A claim that ended with the
   * run has its attempt's history row; a task given back before the cancel was queued, so spent nothing.
   */
  const expectCancelled = async (runId: string, claimEnded = true) => {
    expect((await getRun(h.db.pool, runId)).status).toBe('cancelled');
    const attempt = claimEnded ? 1 : 0;
    const tasks = await h.tasks(runId);
    expect(tasks.map((t) => [t.status, t.attempt, t.error])).toEqual([['cancelled', attempt, RUN_CANCELLED], ['cancelled', attempt, RUN_CANCELLED]]);
    const { rows: attempts } = await h.db.pool.query('select attempt, status, execution_name, error from task_attempts where run_id = $1', [runId]);
    const history = { attempt: 1, status: 'cancelled', execution_name: null, error: RUN_CANCELLED };
    expect(attempts).toEqual(claimEnded ? [history, history] : []);
    const { rows: slots } = await h.db.pool.query("select count(*)::int as n from concurrency_slots where workflow = 'held' and task_id is not null");
    expect(slots[0].n).toBe(0);
  };

  it.each(['503', '429'] as const)('a claim refused with %s while cancel runs ends cancelled', async (kind) => {
    const runId = await h.trigger('held');
    emu.setFaults({ rate: 1, kinds: [kind], rpcs: ['runJob'], seed: 5 });
    emu.latencyMs = 500; // every refusal is answered half a second after the call: cancel comes meanwhile
    const ticking = tick(h.deps, { budgetMs: 0 });
    await waitForStatus(runId, 'claimed');
    expect(await cancelRun(h.db.pool, h.config, h.deps.executors, runId)).toMatchObject({ cancelled: true, status: 'cancelled' });
    expect(await ticking).toMatchObject({ claimed: 2, dispatched: 0 });
    emu.setFaults(null);
    emu.latencyMs = 0;
    await tickOn(runId);
    await expectCancelled(runId);
  });

  it('a claim the reaper finds never sent, after cancel, ends cancelled', async () => {
    const runId = await h.trigger('held');
    const ctx = h.context();
    await expandPendingRuns(ctx);
    expect(await claimReadyTasks(ctx)).toHaveLength(2); // a tick that claimed, then died before sending
    await cancelRun(h.db.pool, h.config, h.deps.executors, runId);
    await h.db.pool.query("update tasks set lease_until = now() - interval '1 millisecond' where run_id = $1 and status = 'claimed'", [runId]);
    expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ reconciled: 2, adopted: 0, dispatched: 0 });
    await tickOn(runId);
    await expectCancelled(runId);
  });

  it('a claim given back in the same moment as cancel commits ends cancelled, in either order', async () => {
    for (const first of ['giveBack', 'cancel'] as const) {
      const runId = await h.trigger('held');
      const ctx = h.context();
      await expandPendingRuns(ctx);
      const claimed = await claimReadyTasks(ctx);
      const outcomes = claimed.map((c) => ({ id: c.id, attempt: c.attempt, leaseToken: c.leaseToken, outcome: 'requeue', delayMs: 0, error: 'dispatch refused, retrying: 503' }));
      const holder = await h.db.pool.connect();
      try {
        await holder.query('begin');
        let other: Promise<unknown>;
        if (first === 'giveBack') {
          // The give-back is written, not yet committed, when cancel comes.
          await holder.query(RECORD_SQL, [JSON.stringify(outcomes), '{}', 1200]);
          other = cancelRun(h.db.pool, h.config, h.deps.executors, runId);
        } else {
          // The run's cancel is written, not yet committed, when the give-back comes.
          await holder.query("update runs set status = 'cancelled', finished_at = now(), error = 'cancelled' where id = $1", [runId]);
          other = h.db.pool.query(RECORD_SQL, [JSON.stringify(outcomes), '{}', 1200]);
        }
        await new Promise((r) => setTimeout(r, 300));
        await holder.query('commit');
        await other;
      } finally {
        holder.release();
      }
      await tickOn(runId);
      await expectCancelled(runId, first === 'cancel');
    }
  });

  it('the claim never takes a task of a run that is not running', async () => {
    const runId = await h.trigger('held');
    const ctx = h.context();
    await expandPendingRuns(ctx);
    // A queued task left in a run that has ended, as no statement leaves one: the claim still refuses it.
    await h.db.pool.query("update runs set status = 'cancelled' where id = $1", [runId]);
    expect(await claimReadyTasks(ctx)).toEqual([]);
    expect((await h.tasks(runId)).map((t) => t.status)).toEqual(['queued', 'queued']);
    const { rows } = await h.db.pool.query("select count(*)::int as n from concurrency_slots where workflow = 'held' and task_id is not null");
    expect(rows[0].n).toBe(0);
    await h.db.pool.query("update tasks set status = 'cancelled' where run_id = $1", [runId]);
  });
});
