import { tick } from '../../shared/tick';
import { applyWorkflows } from '../../shared/workflows/apply';
import { parseWorkflow } from '../../shared/workflows/parse';
import { startCloudRunEmulator, type CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { createHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs/work';

describe('round trips per cycle', () => {
  let emu: CloudRunEmulator;
  beforeAll(async () => {
    emu = await startCloudRunEmulator();
  });
  afterAll(() => emu.stop());

  describe('an idle cycle costs one round trip', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host });
    });
    afterAll(() => h.close());

    it('on an empty database', async () => {
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ cycles: 1, roundTrips: 1 });
    });

    it('with only finished runs', async () => {
      await h.apply(`name: quick\ntasks:\n  a: { job: ${JOB}, count: 3 }\n  b: { job: ${JOB}, depends_on: [a] }\n`);
      expect((await h.runToEnd(await h.trigger('quick'))).status).toBe('success');
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ roundTrips: 1, checked: 0 });
    });

    it('until a schedule slot comes, by the tick clock', async () => {
      const t0 = new Date('2026-03-01T10:00:30Z');
      await applyWorkflows(h.db.pool, [parseWorkflow(`name: hourly\nschedule: "0 * * * *"\ntasks:\n  a: { job: ${JOB} }\n`, '/w/wf.yaml')], t0);
      const at = (iso: string) => tick({ ...h.deps, clock: () => new Date(iso) }, { budgetMs: 0 });
      expect(await at('2026-03-01T10:59:59Z')).toMatchObject({ roundTrips: 1, runsScheduled: 0 });
      const due = await at('2026-03-01T11:00:01Z');
      expect(due.runsScheduled).toBe(1);
      expect(due.roundTrips).toBeGreaterThan(1);
      await h.db.pool.query("update workflows set paused = true where name = 'hourly'");
    });

    it('but not with a run left to complete, a waiting task, or an expired claim', async () => {
      await h.apply(`name: parked\ntasks:\n  a: { job: ${JOB} }\n`);
      const runId = await h.trigger('parked');
      // A pending run: expand has work.
      expect((await tick(h.deps, { budgetMs: 0 })).roundTrips).toBeGreaterThan(1);
      expect((await h.runToEnd(runId)).status).toBe('success');
      // A running run whose tasks have all ended: complete has work.
      await h.db.pool.query("update runs set status = 'running', finished_at = null where id = $1", [runId]);
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ runsCompleted: 1 });
      // A waiting task, or a claim whose lease ran out.
      for (const status of ['waiting', 'claimed']) {
        await h.db.pool.query("update tasks set status = $2, lease_until = now() - interval '1 second', lease_token = gen_random_uuid() where run_id = $1", [runId, status]);
        expect((await tick(h.deps, { budgetMs: 0 })).roundTrips).toBeGreaterThan(1);
        await h.db.pool.query("update tasks set status = 'success', lease_until = null, lease_token = null where run_id = $1", [runId]);
      }
      expect((await tick(h.deps, { budgetMs: 0 })).roundTrips).toBe(1);
    });
  });

  it.each([10, 100, 1000])('a busy cycle makes the same round trips at batch %i', async (batch) => {
    // A long poll interval: a batch is recorded in two statements when its calls outlast a fifth of it
    // (carry.ts), which 1,000 calls did on a CI machine busy with other tests (5 round trips, d8936b2).
    // A long lease too: a batch still sending after the lease's first part renews it in a statement of
    // its own (steps/leases.ts), which 1,000 calls did on a busy CI machine (5 round trips, 3867309).
    const h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host, TICKRUN_BATCH_SIZE: String(batch), TICKRUN_DISPATCH_CONCURRENCY: '100', TICKRUN_POLL_INTERVAL: '1m', TICKRUN_CLAIM_LEASE: '2m' });
    try {
      await h.apply(`name: wide\ntasks:\n  t: { job: ${JOB}, count: ${2 * batch}, env: { EMU_DURATION_MS: "600000" } }\n`);
      await h.trigger('wide');
      // Only the steps with work run. The first cycle: probe, expand (a pending run), claim (the tasks
      // it expanded) and dispatch's record; nothing was in flight when it began, so it checks none.
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ claimed: batch, dispatched: batch, checked: 0, roundTrips: 4 });
      // The second sends the other batch while it checks the first: probe, poll's fetch, claim,
      // dispatch's record and poll's record (the checks move checked_at). No task ended: no complete.
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ claimed: batch, dispatched: batch, checked: batch, roundTrips: 5 });
      // Nothing left to send: probe, poll's fetch and record.
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ claimed: 0, checked: Math.min(2 * batch, 1000), roundTrips: 3 });
    } finally {
      await h.close();
    }
  });

  describe('a step runs in the cycle an earlier step gave it work', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await createHarness({ CLOUD_RUN_EMULATOR_HOST: emu.host });
    });
    afterAll(() => h.close());

    it('a run scheduled is expanded and its tasks sent in the same cycle', async () => {
      const t0 = new Date('2026-03-01T10:00:30Z');
      await applyWorkflows(h.db.pool, [parseWorkflow(`name: hourly\nschedule: "0 * * * *"\ntasks:\n  a: { job: ${JOB}, count: 2 }\n`, '/w/wf.yaml')], t0);
      const due = await tick({ ...h.deps, clock: () => new Date('2026-03-01T11:00:01Z') }, { budgetMs: 0 });
      expect(due).toMatchObject({ runsScheduled: 1, runsStarted: 1, claimed: 2, dispatched: 2 });
      await h.db.pool.query("update workflows set paused = true where name = 'hourly'");
      await h.db.pool.query("update runs set status = 'cancelled' where workflow = 'hourly'");
      await h.db.pool.query("update tasks set status = 'cancelled' where workflow = 'hourly'");
    });

    it('a claim found never sent is sent again in the cycle that re-queued it', async () => {
      await h.apply(`name: lost\ntasks:\n  a: { job: ${JOB} }\n`);
      const runId = await h.trigger('lost');
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ runsStarted: 1, dispatched: 1 });
      // As if a tick had claimed the next attempt and died before sending it.
      await h.db.pool.query(
        "update tasks set status = 'claimed', attempt = attempt + 1, claimed_at = now(), lease_until = now() - interval '1 second', lease_token = gen_random_uuid() where run_id = $1",
        [runId],
      );
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ reconciled: 1, requeued: 1, claimed: 1, dispatched: 1 });
    });

    it('a task whose dependency ended is released, and a run whose last task ended is completed, in that cycle', async () => {
      await h.apply(`name: chain\ntasks:\n  a: { job: ${JOB} }\n  b: { job: ${JOB}, depends_on: [a] }\n`);
      const runId = await h.trigger('chain');
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ runsStarted: 1, dispatched: 1 });
      // a ends in this cycle's checks; b waited before the cycle began, so advance runs, releases it, and
      // the cycle sends it: probe, poll's fetch and record, advance, claim, dispatch's record, complete
      // (a task ended), where a cycle that releases nothing stops at five.
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ succeeded: 1, released: 1, claimed: 1, dispatched: 1, runsCompleted: 0, roundTrips: 7 });
      // b ends in this cycle's checks: no run was complete when it began, yet the run completes in it.
      expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ succeeded: 1, runsCompleted: 1 });
      expect((await h.db.pool.query('select status from runs where id = $1', [runId])).rows[0].status).toBe('success');
    });
  });
});
