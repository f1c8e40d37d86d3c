import type { Config } from '../../shared/config';
import { listRegions } from '../../shared/model/regions';
import { listTasks } from '../../shared/model/tasks';
import { setRegionLimits } from '../../shared/operator/regions';
import { claimReadyTasks } from '../../shared/steps/claim';
import { expandPendingRuns } from '../../shared/steps/expand';
import { recordOutcomes } from '../../shared/steps/record';
import { slowThrottledRegions } from '../../shared/steps/throttle';
import { runCli } from '../helpers/cli';
import { startDashboard, type DashboardClient } from '../helpers/dashboard';
import { createHarness, type Harness } from '../helpers/harness';

// What tickrun shows of each region's limits, and why a queued task waits, from the state the steps write.

const JOB = 'projects/p/locations/l/jobs/j';
const fanOut = (name: string, count: number, extra = '') => `name: ${name}\n${extra}tasks:\n  t: { job: ${JOB}, count: ${count} }\n`;

describe('regions and why queued tasks wait', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness();
  });
  afterEach(() => h.close());
  const expand = () => expandPendingRuns({ ...h.context(), config: { ...h.config, batchSize: 100 } });
  const withLimits = (regions: Partial<Config['regions']>): Config => ({ ...h.config, batchSize: 100, regions: { ...h.config.regions, ...regions } });

  it('lists each region with its budget, its use, 429s, running against the cap, and what holds it back', async () => {
    await h.apply(fanOut('big', 30));
    await h.trigger('big');
    await expand();
    const config = withLimits({ runPerMinute: 600, maxRunning: 12, reserved: 2 });
    const claimed = await claimReadyTasks({ ...h.context(), config });
    // 600/min keeps one second of tokens: 9 whole ones.
    expect(claimed).toHaveLength(9);
    await recordOutcomes(h.context().db, claimed.slice(0, 4).map((t) => ({ id: t.id, attempt: t.attempt, leaseToken: t.leaseToken, outcome: 'dispatched' as const, executionName: `${JOB}/executions/e${t.index}` })));
    await slowThrottledRegions(h.context().db, [claimed[4].id], 600);
    // The CLI's settings differ from the ticks': the row's own record of theirs wins.
    const [region] = await listRegions(h.db.pool, { runPerMinute: 50, readPerMinute: 50, maxRunning: 5, reserved: 0 });
    expect(region).toMatchObject({
      region: 'p/l', runPerMinute: 600, ownRunPerMinute: false, rate: 420, usedLastMinute: 9, throttledLastHour: 1,
      running: 9, cap: 10, queued: 21,
    });
    expect(region.throttledAt).not.toBeNull();
    expect(region.holding).toMatch(/^at its run budget: 9 of 420\/min$/);
    // Its own values, set by the operator, win over the ticks'.
    await setRegionLimits(h.db.pool, 'p/l', { runPerMinute: 900, maxRunning: 9, reserved: null }, h.config.regions);
    const [own] = await listRegions(h.db.pool, h.config.regions);
    expect(own).toMatchObject({ runPerMinute: 900, ownRunPerMinute: true, rate: 900, cap: 9, running: 9, holding: 'at its cap: 9 of 9 running' });
  });

  it('says why each queued task waits: its time, its workflow’s limit, its region’s cap or budget, or the fair order', async () => {
    await h.apply(fanOut('big', 6));
    await h.apply(fanOut('limited', 3, 'concurrency: 1\n'));
    const big = await h.trigger('big');
    const limited = await h.trigger('limited');
    await expand();
    const config = withLimits({ runPerMinute: 1_000_000, maxRunning: 3, reserved: 0 });
    const claimed = await claimReadyTasks({ ...h.context(), config });
    expect(claimed).toHaveLength(3);
    const reasons = async (runId: string) => (await listTasks(h.db.pool, runId, config.regions)).filter((t) => t.status === 'queued').map((t) => t.waiting);
    expect(new Set(await reasons(big))).toEqual(new Set(['waiting for region capacity: 3 of 3 running in p/l']));
    // One claim of the unlimited run given back after a refusal: it waits for its time, and its place under
    // the cap is free again. (Found by `big`, not by place: the claim returns its rows in no set order.)
    const back = claimed.find((t) => t.workflow === 'big')!;
    await recordOutcomes(h.context().db, [{ id: back.id, attempt: back.attempt, leaseToken: back.leaseToken, outcome: 'requeue', delayMs: 60_000, error: 'dispatch refused, retrying: 429' }]);
    const tasks = await listTasks(h.db.pool, back.runId, config.regions);
    expect(tasks.find((t) => t.id === back.id)!.waiting).toMatch(/^given back, again at \d\d:\d\d:\d\dZ$/);
    expect(tasks.filter((t) => t.status === 'queued' && t.id !== back.id).map((t) => t.waiting)).toContain('next in the fair order');
    // The limited workflow's one slot is held by its claimed task, if one was claimed.
    const limitedClaimed = claimed.some((t) => t.workflow === 'limited');
    expect(await reasons(limited)).toContain(limitedClaimed ? 'waiting for a concurrency slot (1 of 1 in flight)' : 'next in the fair order');
    // A task not queued says nothing.
    expect(tasks.filter((t) => t.status !== 'queued').every((t) => t.waiting === null)).toBe(true);
    // Without the settings, the contract's fields only.
    expect((await listTasks(h.db.pool, big))[0]).not.toHaveProperty('waiting');
  });

  it('tickrun regions, regions set and its refusals, and the regions under tickrun status', async () => {
    const env = { DATABASE_URL: h.db.url, TICKRUN_HOME: h.home };
    expect((await runCli(['regions'], env)).stdout).toMatch(/^no region yet/);
    const set = await runCli(['regions', 'set', 'my-project/us-central1', '--run-per-minute', '300', '--max-running', '50', '--reserved', '5'], env);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/my-project\/us-central1\s+300\/min \(own\)\s+0\s+0 of 1200\/min\s+0\s+0 of 45\s+0/);
    const json = JSON.parse((await runCli(['regions', '--json'], env)).stdout);
    expect(json).toEqual([expect.objectContaining({ region: 'my-project/us-central1', runPerMinute: 300, cap: 45, running: 0, holding: null })]);
    const row = await h.db.pool.query("select running from regions where region = 'my-project/us-central1'");
    expect(row.rows).toEqual([{ running: 0 }]);
    // Back to the ticks' setting.
    await runCli(['regions', 'set', 'my-project/us-central1', '--run-per-minute', 'default'], env);
    expect(JSON.parse((await runCli(['regions', '--json'], env)).stdout)[0]).toMatchObject({ runPerMinute: 180, ownRunPerMinute: false });
    for (const [args, message] of [
      [['regions', 'set', 'us-central1', '--max-running', '5'], /region "us-central1" is not valid: it accepts PROJECT\/REGION/],
      [['regions', 'set', 'p/us-central1', '--max-running', '0'], /--max-running 0 is not valid: it accepts a whole number from 1 to 10000, or default/],
      [['regions', 'set', 'p/us-central1', '--run-per-minute', 'fast'], /--run-per-minute "fast" is not valid/],
      [['regions', 'set', 'p/us-central1', '--reserved', '1000'], /--reserved 1000 must be less than the maximum of running executions \(1000\)/],
      [['regions', 'set', 'p/us-central1'], /give at least one of/],
    ] as [string[], RegExp][]) {
      const refused = await runCli(args, env);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(message);
    }
    // A refused set changed nothing.
    expect(JSON.parse((await runCli(['regions', '--json'], env)).stdout)).toHaveLength(1);
    await h.apply(fanOut('big', 2));
    await h.trigger('big');
    const status = await runCli(['status'], env);
    expect(status.stdout).toMatch(/REGION\s+RUN BUDGET/);
    expect(status.stdout).toContain('my-project/us-central1');
    // Its JSON form stays the contract's array of runs.
    expect(Array.isArray(JSON.parse((await runCli(['status', '--json'], env)).stdout))).toBe(true);
  });

  describe('the dashboard', () => {
    let dash: DashboardClient | undefined;
    afterEach(() => dash?.close());

    it('answers /api/regions, and a queued task of a run says why it waits', async () => {
      await h.apply(fanOut('big', 5));
      const runId = await h.trigger('big');
      await expand();
      const config = withLimits({ maxRunning: 2 });
      await claimReadyTasks({ ...h.context(), config });
      // The ticks' cap is the row's record of it: the dashboard's own settings (the harness's) differ.
      dash = await startDashboard(h);
      const regions = (await dash.get('/api/regions')).body;
      expect(regions.regions).toEqual([expect.objectContaining({ region: 'p/l', running: 2, cap: 2, queued: 3, holding: 'at its cap: 2 of 2 running' })]);
      const detail = (await dash.get(`/api/runs/${runId}`)).body;
      const queued = detail.tasks.filter((t: { status: string }) => t.status === 'queued');
      expect(queued).toHaveLength(3);
      expect(queued.every((t: { waiting: string }) => t.waiting === 'waiting for region capacity: 2 of 2 running in p/l')).toBe(true);
    });
  });
});
