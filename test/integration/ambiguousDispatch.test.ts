import { expandPendingRuns } from '../../shared/steps/expand';
import { claimReadyTasks } from '../../shared/steps/claim';
import { LEASE_MARGIN_MS } from '../../shared/config';
import { tick } from '../../shared/tick';
import type { TickSummary } from '../../shared/cycle';
import { startCloudRunEmulator, type CloudRunEmulator, type FaultPlan } from '../helpers/cloudRunEmulator';
import { createHarness, type Harness } from '../helpers/harness';

// Issue 15, "Recover in seconds": an ambiguous runJob is settled (adopted or re-queued) within its
// deadline + the lease margin + one cycle, by the tick that sent it; a failed search for it is tried again
// within seconds, not a lease later.

const JOB = 'projects/demo/locations/us-central1/jobs/single';
/** runJob's own deadline (TICKRUN_DISPATCH_TIMEOUT), short so that the bound is seconds. */
const DISPATCH_TIMEOUT_MS = 2000;
const POLL_MS = 500;
/**
 * Room for what the bound leaves out: the settling cycle's own statements and listing (tens of ms here),
 * the cycle that finds the lease a few ms short and leaves it to the next, timer lateness, and this test's
 * 20 ms reads. Far below what is being caught (a reconciliation a lease or an API deadline late).
 */
const SLACK_MS = 500;
const SETTLE_BOUND_MS = DISPATCH_TIMEOUT_MS + LEASE_MARGIN_MS + POLL_MS + SLACK_MS;
/** One tick, long enough to hold the bound twice over. */
const BUDGET_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface TaskRow {
  id: string;
  status: string;
  attempt: number;
  claimed_at: Date | null;
  execution_name: string | null;
  lease_until: Date | null;
  error: string | null;
}

describe('an ambiguous dispatch is settled within seconds', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  // A database and an emulator of its own for each case: a claim a failing case leaves behind would be
  // reconciled by the next case's tick and counted in its summary.
  beforeEach(async () => {
    emu = await startCloudRunEmulator();
    // TICKRUN_API_TIMEOUT empty counts as unset: the harness's 5 s for every call would hide runJob's own deadline.
    h = await createHarness({
      CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_API_TIMEOUT: '', TICKRUN_DISPATCH_TIMEOUT: `${DISPATCH_TIMEOUT_MS}ms`, TICKRUN_POLL_INTERVAL: `${POLL_MS}ms`,
    });
    await h.apply(`name: single\ntasks:\n  t: { job: ${JOB} }\n`);
  });
  afterEach(async () => {
    await h?.close();
    await emu?.stop();
  });

  const taskOf = async (runId: string): Promise<TaskRow> =>
    (await h.db.pool.query<TaskRow>('select id, status, attempt, claimed_at, execution_name, lease_until, error from tasks where run_id = $1', [runId])).rows[0];
  const startsOf = (taskId: string) => emu.executions.filter((e) => e.env.TICKRUN_TASK_ID === taskId);

  /**
   * Calls `fn` once the emulator has received the next request of `rpc`, and resolves with when it came
   * (to the ms: the emulator counts a request as it arrives, and the count is watched as it is written).
   * `fn` runs just after the emulator has drawn that request's fault and started its hold, so lifting
   * them in `fn` changes nothing for that request, only for those that follow.
   */
  function onNext(rpc: string, fn: () => void): Promise<number> {
    const calls = emu.calls;
    const target = (calls[rpc] ?? 0) + 1;
    return new Promise((resolve) => {
      emu.calls = new Proxy(calls, {
        set(counts, key, value) {
          counts[key as string] = value;
          if (key === rpc && value === target) {
            emu.calls = calls;
            resolve(Date.now());
            queueMicrotask(fn);
          }
          return true;
        },
      });
    });
  }

  /**
   * Ticks once (BUDGET_MS) and reads the task every 20 ms until its claim is settled: seen dispatched,
   * running, succeeded or queued, or claimed again after the first claim (a re-queued task is claimed
   * again within the same cycle). Returns when that was, when it was first claimed, how it was then, and
   * the tick's summary. The tick is always awaited.
   */
  async function tickUntilSettled(runId: string): Promise<{ settledAt?: number; claimedAt?: number; settledAs?: TaskRow; summary: TickSummary }> {
    let done = false;
    const ticking = tick(h.deps, { budgetMs: BUDGET_MS }).finally(() => (done = true));
    let claimedAt: number | undefined;
    let settledAs: TaskRow | undefined;
    let settledAt: number | undefined;
    try {
      while (!done && settledAt === undefined) {
        const t = await taskOf(runId);
        // Until the tick has expanded the run, it has no task.
        if (!t) {
          await sleep(20);
          continue;
        }
        if (t.claimed_at && claimedAt === undefined) claimedAt = t.claimed_at.getTime();
        const again = claimedAt !== undefined && t.status === 'claimed' && t.claimed_at!.getTime() > claimedAt;
        if (claimedAt !== undefined && (['dispatched', 'running', 'success', 'queued'].includes(t.status) || again)) [settledAt, settledAs] = [Date.now(), t];
        else await sleep(20);
      }
    } finally {
      await ticking.catch(() => undefined);
    }
    return { settledAt, claimedAt, settledAs, summary: await ticking };
  }

  const cases: { kind: string; faults?: FaultPlan; latencyMs?: number; created: boolean }[] = [
    // Carried out, then the answer lost (an INTERNAL error): the execution exists.
    { kind: "answer lost after the execution was created ('lost')", faults: { rate: 1, kinds: ['lost'], rpcs: ['runJob'] }, created: true },
    // Held past runJob's deadline, then carried out within the margin Cloud Run is assumed to act in: a
    // reconciliation before deadline + margin would miss it and start the attempt twice.
    { kind: 'carried out after the deadline, within the margin', latencyMs: DISPATCH_TIMEOUT_MS + LEASE_MARGIN_MS / 2, created: true },
    // Held past runJob's deadline, then refused without being carried out: no execution exists.
    { kind: 'no answer within the deadline, never carried out', faults: { rate: 1, kinds: ['500'], rpcs: ['runJob'] }, latencyMs: DISPATCH_TIMEOUT_MS + 1000, created: false },
  ];

  it.each(cases)('$kind: settled by the same tick within deadline + margin + one cycle, started once', async ({ faults, latencyMs = 0, created }) => {
    const runId = await h.trigger('single');
    emu.setFaults(faults ?? null);
    emu.latencyMs = latencyMs;
    // Only the first runJob goes wrong: Cloud Run is healthy again for the search and a re-send.
    let sentAt: number | undefined;
    void onNext('runJob', () => {
      emu.setFaults(null);
      emu.latencyMs = 0;
    }).then((at) => (sentAt = at));
    const { settledAt, claimedAt = NaN, settledAs, summary } = await tickUntilSettled(runId);
    const t = await taskOf(runId);
    const starts = startsOf(t.id);
    // From the runJob's arrival at Cloud Run, a loopback hop after it was sent: its deadline runs from then.
    const settledMs = settledAt === undefined || sentAt === undefined ? undefined : settledAt - sentAt;
    console.log(
      `ambiguous dispatch (${created ? 'created' : 'not created'}): runJob reached Cloud Run ${(sentAt ?? NaN) - claimedAt} ms after the claim; ` +
        `settled ${settledMs === undefined ? `not within the tick (${BUDGET_MS} ms)` : `${settledMs} ms after it (bound ${SETTLE_BOUND_MS} ms), as ${settledAs?.status}`}; ` +
        `now ${t.status}${t.status === 'claimed' ? `, its lease ending ${t.lease_until!.getTime() - (sentAt ?? NaN)} ms after the runJob` : ''} (error ${t.error}); ` +
        `summary ${JSON.stringify({ ambiguous: summary.ambiguous, reconciled: summary.reconciled, adopted: summary.adopted, requeued: summary.requeued, dispatched: summary.dispatched })}`,
    );
    expect(settledMs).toBeDefined();
    expect(settledMs!).toBeLessThanOrEqual(SETTLE_BOUND_MS);
    // The same tick settled it, as what it was: adopted, or re-queued and sent again.
    expect(summary).toMatchObject(created ? { ambiguous: 1, adopted: 1, requeued: 0 } : { ambiguous: 1, adopted: 0, requeued: 1, dispatched: 1 });
    // Never started twice: adopted, the one execution; or re-queued as the same attempt and sent once.
    expect(starts).toHaveLength(1);
    expect(starts[0].env.TICKRUN_ATTEMPT).toBe('1');
    expect(t.attempt).toBe(1);
    expect(['dispatched', 'running', 'success']).toContain(t.status);
    expect(t.execution_name).toBe(starts[0].name);
    if (created) expect(settledAs?.status).not.toBe('queued');
  });

  it('a search for a lost claim that failed (listExecutions 503) is tried again within seconds once Cloud Run answers', async () => {
    const RETRY_BOUND_MS = 5000;
    const runId = await h.trigger('single');
    const ctx = h.context();
    await expandPendingRuns(ctx);
    // A tick that died after starting the execution, before recording it; its lease long gone.
    const [claim] = await claimReadyTasks(ctx);
    await h.deps.executors.cloudrun.dispatch({ taskId: claim.id, runId, workflow: 'single', taskName: claim.name, index: claim.index, attempt: claim.attempt, params: {}, spec: claim.spec, workflowDir: '/' });
    await h.db.pool.query("update tasks set lease_until = now() - interval '1 millisecond' where id = $1", [claim.id]);
    emu.setFaults({ rate: 1, kinds: ['503'], rpcs: ['listExecutions'] });
    // The first search fails; Cloud Run answers again from then on.
    let liftedAt: number | undefined;
    void onNext('listExecutions', () => emu.setFaults(null)).then((at) => (liftedAt = at));
    let done = false;
    const ticking = tick(h.deps, { budgetMs: BUDGET_MS }).finally(() => (done = true));
    let settledAt: number | undefined;
    try {
      while (!done && settledAt === undefined) {
        const t = await taskOf(runId);
        if (['dispatched', 'running', 'success'].includes(t.status)) settledAt = Date.now();
        else await sleep(20);
      }
    } finally {
      await ticking.catch(() => undefined);
    }
    const summary = await ticking;
    const t = await taskOf(runId);
    const afterLift = settledAt !== undefined && liftedAt !== undefined ? settledAt - liftedAt : undefined;
    console.log(
      `failed search: ${emu.injected['503']} listing(s) refused; settled ${afterLift === undefined ? `not within the tick (${BUDGET_MS} ms)` : `${afterLift} ms after the fault was lifted`} (bound ${RETRY_BOUND_MS} ms); ` +
        `now ${t.status}${t.status === 'claimed' ? `, searched for again when its lease ends, ${t.lease_until!.getTime() - (liftedAt ?? NaN)} ms after the failed search` : ''}; ` +
        `summary ${JSON.stringify({ reconciled: summary.reconciled, adopted: summary.adopted, requeued: summary.requeued })}`,
    );
    expect(liftedAt).toBeDefined();
    expect(afterLift).toBeDefined();
    expect(afterLift!).toBeLessThanOrEqual(RETRY_BOUND_MS);
    expect(summary).toMatchObject({ adopted: 1, requeued: 0 });
    const starts = startsOf(t.id);
    expect(starts).toHaveLength(1);
    expect(t.execution_name).toBe(starts[0].name);
  });
});
