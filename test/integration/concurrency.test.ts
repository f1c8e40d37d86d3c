import { Pool } from 'pg';
import { getRun } from '../../shared/model/runs';
import { triggerRun } from '../../shared/operator/trigger';
import { CLAIM_SQL } from '../../shared/steps/claim';
import { expandPendingRuns } from '../../shared/steps/expand';
import { tick } from '../../shared/tick';
import type { CloudRunEmulator } from '../helpers/cloudRunEmulator';
import { emulatorHarness, type Harness } from '../helpers/harness';

/** The most executions running at once, from the emulator's record of their start and end times. */
function peakOverlap(intervals: { createdAt: number; finishedAt?: number }[]): number {
  const events = intervals.flatMap((e) => [[e.createdAt, 1], [e.finishedAt ?? Infinity, -1]] as const);
  // An end at the same instant as a start comes first: the slot was free again.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, d] of events) peak = Math.max(peak, (now += d));
  return peak;
}

describe('per-workflow concurrency', () => {
  let emu: CloudRunEmulator;
  let h: Harness;
  emulatorHarness((started) => ({ emu, h } = started));

  it('concurrency 3, 4 runs of 10 tasks, 4 ticks at once: never more than 3 in flight, oldest run first, all finish', async () => {
    await h.apply(`
name: limited
concurrency: 3
tasks:
  work: { job: projects/p/locations/l/jobs/work, count: 10, env: { EMU_DURATION_MS: "40" } }
`);
    await h.apply(`name: free\ntasks:\n  other: { job: projects/p/locations/l/jobs/other, count: 12, env: { EMU_DURATION_MS: "40" } }\n`);
    const runs: string[] = [];
    for (let i = 0; i < 4; i++) {
      runs.push(await h.trigger('limited'));
      await new Promise((r) => setTimeout(r, 5)); // distinct creation times: "oldest" is well defined
    }
    const freeRun = await h.trigger('free');
    // One tick alone first: the limit holds the limited workflow to 3 claims, not the other one.
    expect(await tick(h.deps, { budgetMs: 0 })).toMatchObject({ runsStarted: 5, claimed: 3 + 12 });
    for (let i = 0; i < 300; i++) {
      await Promise.all([1, 2, 3, 4].map(() => tick(h.deps, { budgetMs: 0 })));
      const { rows } = await h.db.pool.query("select count(*)::int as n from runs where status in ('pending', 'running')");
      if (rows[0].n === 0) break;
    }
    for (const id of [...runs, freeRun]) expect((await getRun(h.db.pool, id)).status).toBe('success');
    const limited = emu.executions.filter((e) => e.env.TICKRUN_WORKFLOW === 'limited');
    expect(limited).toHaveLength(40);
    expect(peakOverlap(limited)).toBe(3);
    // Oldest run first: each run's first execution started before the next run's first.
    const firstStart = runs.map((id) => Math.min(...limited.filter((e) => e.env.TICKRUN_RUN_ID === id).map((e) => e.createdAt)));
    expect([...firstStart].sort((a, b) => a - b)).toEqual(firstStart);
    // Every slot was given back.
    const { rows } = await h.db.pool.query("select count(*)::int as n from concurrency_slots where workflow = 'limited' and task_id is not null");
    expect(rows[0].n).toBe(0);
  });

  it('the claim reads no more of a limited workflow’s waiting tasks than it has free slots', async () => {
    await h.apply(`name: backlog\nconcurrency: 2\ntasks:\n  t: { job: projects/p/locations/l/jobs/t, count: 5000 }\n`);
    await triggerRun(h.db.pool, 'backlog');
    // Expanded without a tick, so both slots are free when the claim below runs.
    await expandPendingRuns(h.context());
    await h.db.pool.query('analyze tasks');
    const client = await h.db.pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query(`explain (analyze, format json) ${CLAIM_SQL}`, [100, 60000, 600, 1000, 0]);
      const rowsReadFromTasks: number[] = [];
      const walk = (node: any) => {
        if (node['Relation Name'] === 'tasks') rowsReadFromTasks.push(node['Actual Rows'] * (node['Actual Loops'] ?? 1));
        for (const child of node.Plans ?? []) walk(child);
      };
      walk(rows[0]['QUERY PLAN'][0].Plan);
      const claimed = await client.query("select count(*)::int as n from tasks where workflow = 'backlog' and status = 'claimed'");
      await client.query('rollback');
      // At most 2 free slots: the probe for a ready task reads 1 row, the pick 2, the claim updates 2.
      expect(claimed.rows[0].n).toBe(2);
      expect(Math.max(...rowsReadFromTasks)).toBeLessThanOrEqual(2);
      expect(rowsReadFromTasks.reduce((a, b) => a + b, 0)).toBeLessThan(20);
    } finally {
      client.release();
    }
  });

  it('20 concurrent triggers with one idempotency key make one run', async () => {
    await h.apply(`name: keyed\ntasks:\n  t: { job: projects/p/locations/l/jobs/t }\n`);
    const pool = new Pool({ connectionString: h.db.url, max: 20 });
    pool.on('error', () => {});
    try {
      const ids = await Promise.all([...Array(20)].map(() => triggerRun(pool, 'keyed', { idempotencyKey: 'nightly-2026-11-27' })));
      expect(new Set(ids.map((r) => r.runId)).size).toBe(1);
      expect(ids.filter((r) => r.created)).toHaveLength(1);
      const { rows } = await h.db.pool.query("select count(*)::int as n from runs where workflow = 'keyed'");
      expect(rows[0].n).toBe(1);
    } finally {
      await pool.end();
    }
  });
});
