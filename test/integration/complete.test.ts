import { COMPLETE_SQL, completeRuns } from '../../shared/steps/complete';
import { expandPendingRuns } from '../../shared/steps/expand';
import { PROBE_SQL } from '../../shared/steps/probe';
import { createHarness, type Harness } from '../helpers/harness';
import { analyzedPlan, buffersRead } from '../helpers/db';

const JOB = 'projects/demo/locations/us-central1/jobs/work';

describe('complete, and the probe for it', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(() => h.close());

  it('completes a run once its last task ended, failed with the first failure', async () => {
    await h.apply(`name: three\ntasks:\n  a: { job: ${JOB}, count: 3 }\n`);
    const runId = await h.trigger('three');
    await expandPendingRuns(h.context());
    await h.db.pool.query("update tasks set status = 'success' where run_id = $1 and task_index < 2", [runId]);
    expect(await completeRuns(h.context())).toEqual([]);
    await h.db.pool.query("update tasks set status = 'failed', error = 'exit 1' where run_id = $1 and task_index = 2", [runId]);
    expect(await completeRuns(h.context())).toEqual([{ id: runId, status: 'failed' }]);
    expect((await h.db.pool.query('select error from runs where id = $1', [runId])).rows[0].error).toBe('a[2]: exit 1');
  });

  // A run of n tasks under way, with statistics that say so (as after autovacuum): whether
  // it is complete must cost an index lookup per running run, not a read of its n unfinished tasks.
  // Reads are counted in buffers by EXPLAIN ANALYZE.
  it.each([
    ['complete', COMPLETE_SQL, () => []],
    ['the probe', PROBE_SQL, () => [new Date()]],
  ])('%s reads the same whatever the size of a run in flight', async (_what, sql, params) => {
    // Each size in a database of its own, holding that one run, as a new installation's first wide run.
    async function buffersAt(n: number): Promise<number> {
      const own = await createHarness();
      try {
        await own.apply(`name: wide\ntasks:\n  a: { job: ${JOB}, count: ${n} }\n`);
        const runId = await own.trigger('wide');
        await expandPendingRuns(own.context());
        // Sent a few batches ago: most still queued, some running, the first ones done.
        await own.db.pool.query(
          `update tasks set status = case when task_index < $2 * 0.2 then 'success' when task_index < $2 * 0.25 then 'running' else 'queued' end
           where run_id = $1`,
          [runId, n],
        );
        // As autovacuum leaves the table: statistics up to date, and no dead row versions left for the
        // statement to step over (that cost is paid once, by whichever statement reads them first).
        await own.db.pool.query('vacuum analyze tasks');
        return buffersRead(await analyzedPlan(own.db.pool, sql, params()));
      } finally {
        await own.close();
      }
    }
    // A few index pages at either size; a plan that reads the run's tasks, or the table up to them,
    // reads hundreds of pages at 8,000.
    expect(await buffersAt(1000)).toBeLessThan(100);
    expect(await buffersAt(8000)).toBeLessThan(100);
  });
});
