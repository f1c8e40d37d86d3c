import type { Config } from '../../shared/config';
import { RUN_HEADROOM, THROTTLE_FACTOR } from '../../shared/regions';
import { claimReadyTasks, type ClaimedTask } from '../../shared/steps/claim';
import { expandPendingRuns } from '../../shared/steps/expand';
import { recordOutcomes } from '../../shared/steps/record';
import { slowThrottledRegions } from '../../shared/steps/throttle';
import { createHarness, type Harness } from '../helpers/harness';

// The claim against the regions' rules (shared/regions.ts), on real Postgres, with claims only: what the
// statement lets through, however many ticks send it at once.

const JOB = 'projects/p/locations/l/jobs/j';
const REGION = 'p/l';
const fanOut = (name: string, count: number, extra = '') => `name: ${name}\n${extra}tasks:\n  t: { job: ${JOB}, count: ${count} }\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `ticks` claimers at once, each claiming again as soon as its claim returns, for `ms`. */
async function claimFor(h: Harness, config: Config, ticks: number, ms: number): Promise<ClaimedTask[]> {
  const end = Date.now() + ms;
  const claimed: ClaimedTask[] = [];
  await Promise.all(Array.from({ length: ticks }, async () => {
    while (Date.now() < end) {
      claimed.push(...(await claimReadyTasks({ ...h.context(), config })));
      await sleep(5);
    }
  }));
  return claimed;
}

async function expandAll(h: Harness): Promise<void> {
  while ((await expandPendingRuns({ ...h.context(), config: { ...h.config, batchSize: 100 } })).runsStarted > 0);
}

describe('the claim keeps within each region’s limits, shared by every tick', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness();
  });
  afterEach(() => h.close());

  it('six ticks claiming at once spend one budget: no more than its tokens, and about all of them', async () => {
    await h.apply(fanOut('big', 500));
    await h.trigger('big');
    await expandAll(h);
    const config: Config = { ...h.config, batchSize: 50, regions: { ...h.config.regions, runPerMinute: 600 } };
    const started = performance.now();
    const claimed = await claimFor(h, config, 6, 4000);
    const seconds = (performance.now() - started) / 1000;
    // 600/min at the headroom is 9.7 a second, plus the burst kept at the start (one second of it).
    const perSecond = (600 * RUN_HEADROOM) / 60;
    expect(claimed.length).toBeLessThanOrEqual(Math.ceil(perSecond * (seconds + 1)));
    expect(claimed.length).toBeGreaterThanOrEqual(Math.floor(perSecond * (seconds - 0.5)));
    expect(new Set(claimed.map((t) => t.id)).size).toBe(claimed.length);
    const { rows } = await h.db.pool.query('select run_calls from region_usage where region = $1', [REGION]);
    expect(rows.reduce((n, r) => n + r.run_calls, 0)).toBe(claimed.length);
  });

  it('never more in flight than the cap less the reserve, and a place comes back when a task leaves flight', async () => {
    await h.apply(fanOut('big', 50));
    await h.trigger('big');
    await expandAll(h);
    const config: Config = { ...h.config, regions: { ...h.config.regions, maxRunning: 8, reserved: 3 } };
    const claimed = await claimFor(h, config, 6, 500);
    expect(claimed).toHaveLength(5);
    // The region's count against the cap is the count of its tasks in flight, here and after each change below.
    const counted = async () => {
      const { rows } = await h.db.pool.query(`select g.running, (select count(*)::int from tasks t where t.region = g.region
        and t.status in ('claimed', 'dispatched', 'running')) as in_flight from regions g where g.region = $1`, [REGION]);
      expect(rows[0].running).toBe(rows[0].in_flight);
      return rows[0].running as number;
    };
    expect(await counted()).toBe(5);
    // Two dispatched, then one ends: its place is free again, and exactly one more is claimed.
    const [a, b] = claimed;
    await recordOutcomes(h.context().db, [a, b].map((t) => ({ id: t.id, attempt: t.attempt, leaseToken: t.leaseToken, outcome: 'dispatched' as const, executionName: `${JOB}/executions/${t.index}` })));
    expect(await claimFor(h, config, 3, 300)).toHaveLength(0);
    await recordOutcomes(h.context().db, [{ id: a.id, attempt: a.attempt, executionName: `${JOB}/executions/${a.index}`, outcome: 'success' }]);
    expect(await counted()).toBe(4);
    expect(await claimFor(h, config, 3, 300)).toHaveLength(1);
    expect(await counted()).toBe(5);
    // A check that changes nothing leaves the count; b ending and c given back unsent take two off it.
    await recordOutcomes(h.context().db, [{ id: b.id, attempt: b.attempt, executionName: `${JOB}/executions/${b.index}`, outcome: 'checked' }]);
    expect(await counted()).toBe(5);
    await recordOutcomes(h.context().db, [{ id: b.id, attempt: b.attempt, executionName: `${JOB}/executions/${b.index}`, outcome: 'success' }]);
    const c = claimed[2];
    await recordOutcomes(h.context().db, [{ id: c.id, attempt: c.attempt, leaseToken: c.leaseToken, outcome: 'requeue', delayMs: 60_000 }]);
    expect(await counted()).toBe(3);
    expect(await claimFor(h, config, 3, 300)).toHaveLength(2);
    expect(await counted()).toBe(5);
  });

  it('a run triggered after a large fan-out is claimed within the next batch, and both take turns', async () => {
    await h.apply(fanOut('big', 2000));
    await h.apply(fanOut('small', 20));
    await h.trigger('big');
    await expandAll(h);
    const config: Config = { ...h.config, batchSize: 10 };
    const first = await claimReadyTasks({ ...h.context(), config });
    expect(first.every((t) => t.workflow === 'big')).toBe(true);
    await h.trigger('small');
    await expandAll(h);
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(...(await claimReadyTasks({ ...h.context(), config })).map((t) => t.workflow));
    // The next batch already has the small run's tasks, half of it; the small run is all claimed after
    // 40 claims, while the large one still has 1,960 waiting.
    expect(order.slice(0, 10).filter((w) => w === 'small')).toHaveLength(5);
    expect(order.slice(0, 40).filter((w) => w === 'small')).toHaveLength(20);
  });

  it('a workflow of priority 2 is claimed twice as often as one of priority 1', async () => {
    await h.apply(fanOut('one', 300));
    await h.apply(fanOut('two', 300, 'priority: 2\n'));
    await h.trigger('one');
    await h.trigger('two');
    await expandAll(h);
    const order: string[] = [];
    for (let i = 0; i < 15; i++) order.push(...(await claimReadyTasks({ ...h.context(), config: { ...h.config, batchSize: 10 } })).map((t) => t.workflow));
    const two = order.filter((w) => w === 'two').length;
    expect(order).toHaveLength(150);
    expect(two).toBeGreaterThanOrEqual(99);
    expect(two).toBeLessThanOrEqual(101);
  });

  it('a 429 shrinks the region’s rate for every tick, once per burst, and claiming grows it back', async () => {
    await h.apply(fanOut('big', 100));
    await h.trigger('big');
    await expandAll(h);
    const config: Config = { ...h.config, batchSize: 5, regions: { ...h.config.regions, runPerMinute: 600 } };
    const claimed = await claimReadyTasks({ ...h.context(), config });
    expect(claimed).toHaveLength(5);
    const state = async () => (await h.db.pool.query('select run_rate, run_tokens, throttled_at from regions where region = $1', [REGION])).rows[0];
    expect((await state()).run_rate).toBe(600);
    await slowThrottledRegions(h.context().db, claimed.slice(0, 2).map((t) => t.id), 600);
    const cut = await state();
    expect(cut.run_rate).toBeCloseTo(600 * THROTTLE_FACTOR);
    expect(cut.run_tokens).toBeLessThanOrEqual(0);
    // A second refusal of the same burst does not cut again, but is counted.
    await slowThrottledRegions(h.context().db, [claimed[2].id], 600);
    expect((await state()).run_rate).toBeCloseTo(600 * THROTTLE_FACTOR);
    const usage = await h.db.pool.query('select sum(run_throttled)::int as n from region_usage where region = $1', [REGION]);
    expect(usage.rows[0].n).toBe(3);
    // A claim half a minute later: the rate has grown by 5% of the ceiling (10% a minute).
    await h.db.pool.query("update regions set refilled_at = now() - interval '30 seconds' where region = $1", [REGION]);
    await claimReadyTasks({ ...h.context(), config });
    expect((await state()).run_rate).toBeCloseTo(600 * THROTTLE_FACTOR + 30, 0);
  });

  it('process tasks, which Cloud Run limits do not touch, are claimed without a budget or a place under a cap', async () => {
    await h.apply(`name: local\ntasks:\n  t: { executor: process, command: ["true"], count: 30 }\n`);
    await h.trigger('local');
    await expandAll(h);
    const config: Config = { ...h.config, batchSize: 100, regions: { ...h.config.regions, runPerMinute: 1, maxRunning: 1 } };
    expect(await claimReadyTasks({ ...h.context(), config })).toHaveLength(30);
    const { rows } = await h.db.pool.query('select coalesce(sum(running), 0)::int as n from regions');
    expect(rows[0].n).toBe(0);
  });
});
