import { LEASE_MARGIN_MS } from '../../shared/config';
import { tick } from '../../shared/tick';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs/renewed';

// Issue 15: "Short leases that the working tick renews, so a dead tick's claims come back in seconds
// while a slow live one keeps its own. Renewal must cost at most one statement per cycle, never one per task."
describe('claim leases', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  beforeAll(async () => {
    // Each runJob answered after 250 ms, 2 at a time: a batch of 40 takes 5 s to send, against a 3 s lease.
    emu = await startCloudRunEmulator({ latencyMs: 250 });
    h = await createHarness({
      CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_API_TIMEOUT: '500ms', TICKRUN_CLAIM_LEASE: '3s',
      TICKRUN_BATCH_SIZE: '40', TICKRUN_DISPATCH_CONCURRENCY: '2', TICKRUN_POLL_INTERVAL: '10s',
    });
  });
  afterAll(async () => {
    await h.close();
    await emu.stop();
  });

  it('are renewed by the live tick while it sends a batch that outlasts them, one statement for the whole batch each time', async () => {
    await h.apply(`name: renewed\ntasks:\n  t: { job: ${JOB}, count: 40 }\n`);
    const runId = await h.trigger('renewed');
    const started = Date.now();
    const summary = await tick(h.deps, { budgetMs: 0 });
    const tookMs = Date.now() - started;
    // Every claim was sent, none given back for a lease that ran short, and none taken by another tick.
    expect(summary).toMatchObject({ claimed: 40, dispatched: 40, requeued: 0 });
    expect(tookMs).toBeGreaterThan(h.config.claimLeaseMs);
    // A renewal comes only when a call would no longer fit the lease: at most one per lease less one
    // call and its margin, whatever the batch holds (40 claims here).
    const renewEvery = h.config.claimLeaseMs - h.config.timeouts.dispatch - LEASE_MARGIN_MS;
    expect(summary.renewals).toBeGreaterThan(0);
    expect(summary.renewals).toBeLessThanOrEqual(Math.ceil(tookMs / renewEvery));
    const starts = emu.startsByAttempt();
    expect(starts.size).toBe(40);
    expect([...starts.values()].every((n) => n === 1)).toBe(true);
    expect((await h.tasks(runId)).every((t) => t.attempt === 1)).toBe(true);
  });

  it('renew nothing when a batch is sent within its lease', async () => {
    emu.latencyMs = 0;
    await h.apply(`name: quick\ntasks:\n  t: { job: ${JOB}, count: 40 }\n`);
    await h.trigger('quick');
    const summary = await tick(h.deps, { budgetMs: 0 });
    expect(summary).toMatchObject({ claimed: 40, dispatched: 40, renewals: 0 });
  });
});
