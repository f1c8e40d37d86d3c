import { tick } from '../../shared/tick';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createHarness, type Harness } from '../helpers/harness';

const JOBS = 'projects/demo/locations/us-central1/jobs';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Issue 15: "a fault on one job or one call never holds back work on the others: a hung call blocks only
// its own task; the rest of the batch goes on and the tick ends within its budget."
describe('one hung call', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  beforeEach(async () => {
    emu = await startCloudRunEmulator();
    h = await createHarness({
      CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_API_TIMEOUT: '', TICKRUN_DISPATCH_TIMEOUT: '3s', TICKRUN_READ_TIMEOUT: '3s',
      TICKRUN_LIST_TIMEOUT: '3s', TICKRUN_POLL_INTERVAL: '500ms',
    });
  });
  afterEach(async () => {
    await h.close();
    await emu.stop();
  });

  it("holds only its own task: the batch's other tasks are recorded, checked and ended while it hangs, and the tick ends within its budget", async () => {
    await h.apply(`name: hung\ntasks:\n  stuck: { job: ${JOBS}/stuck }\n  free: { job: ${JOBS}/free, count: 20 }\n`);
    const runId = await h.trigger('hung');
    // Every runJob of the job `stuck` is held unanswered (and not carried out) past its 3 s deadline.
    emu.setFaults({ rate: 1, kinds: ['hang'], rpcs: ['runJob'], jobs: [`${JOBS}/stuck`] });
    const budgetMs = 5000;
    const started = Date.now();
    const ticking = tick(h.deps, { budgetMs });
    // 2 s in, the stuck call still hangs (it ends at 3 s), yet the other 20 have been sent, recorded,
    // checked and ended: the cycles went on without waiting for it.
    await sleep(2000);
    const during = await h.tasks(runId);
    const free = during.filter((t) => t.name === 'free');
    expect(free.map((t) => t.status)).toEqual(Array(20).fill('success'));
    expect(during.find((t) => t.name === 'stuck')!.status).toBe('claimed');
    expect(Date.now() - started).toBeLessThan(3000);

    const summary = await ticking;
    // Its call ended at its deadline, and its answer is left for reconciliation, never sent blindly again.
    expect(summary.ambiguous).toBe(1);
    expect(summary.durationMs).toBeLessThanOrEqual(budgetMs + 500);
    emu.setFaults(null);
    // Reconciled (no execution was created: re-queued as the same attempt) and sent again once.
    expect((await h.runToEnd(runId)).status).toBe('success');
    const stuck = (await h.tasks(runId)).find((t) => t.name === 'stuck')!;
    expect(stuck.attempt).toBe(1);
    expect(emu.executions.filter((e) => e.job === `${JOBS}/stuck`)).toHaveLength(1);
  });

  it('holds only the tasks of the job whose status listing hangs: the others are checked and ended meanwhile', async () => {
    await h.apply(`name: listed\ntasks:\n  slow: { job: ${JOBS}/slow, count: 5, env: { EMU_DURATION_MS: "300" } }\n  quick: { job: ${JOBS}/quick, count: 5, env: { EMU_DURATION_MS: "300" } }\n`);
    const runId = await h.trigger('listed');
    expect((await tick(h.deps, { budgetMs: 0 })).dispatched).toBe(10);
    // The listing of `slow`'s executions (5 in flight: read by listing) hangs to its 3 s deadline.
    emu.setFaults({ rate: 1, kinds: ['hang'], rpcs: ['listExecutions', 'getExecution'], jobs: [`${JOBS}/slow`] });
    await sleep(400);
    const ticking = tick(h.deps, { budgetMs: 5000 });
    await sleep(2000);
    const during = await h.tasks(runId);
    expect(during.filter((t) => t.name === 'quick').map((t) => t.status)).toEqual(Array(5).fill('success'));
    expect(during.filter((t) => t.name === 'slow').every((t) => t.status === 'dispatched')).toBe(true);
    const summary = await ticking;
    expect(summary.statusErrors).toBeGreaterThan(0);
    emu.setFaults(null);
    expect((await h.runToEnd(runId)).status).toBe('success');
  });
});
