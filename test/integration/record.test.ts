import { expandPendingRuns } from '../../shared/steps/expand';
import { RECORD_SQL } from '../../shared/steps/record';
import { analyzedPlan, buffersRead, type PlanNode } from '../helpers/db';
import { createHarness, type Harness } from '../helpers/harness';

const JOB = 'projects/demo/locations/us-central1/jobs/work';

describe('record', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(() => h.close());

  // Statistics taken while nothing was in flight, then a burst sent before autovacuum came back: the
  // statement must read its batch's rows by key, not every task in flight.
  it('reads the same for a batch of checks however many tasks are in flight', async () => {
    await h.apply(`name: wide\ntasks:\n  a: { job: ${JOB}, count: 10000 }\n  b: { job: ${JOB}, count: 10000 }\n`);
    const runId = await h.trigger('wide');
    await expandPendingRuns(h.context());
    await h.db.pool.query("update tasks set status = 'success', attempt = 1 where run_id = $1", [runId]);
    await h.db.pool.query('vacuum analyze tasks');
    const { rows } = await h.db.pool.query("select id, task_index from tasks where run_id = $1 and name = 'a' and task_index < 10", [runId]);
    const checks = JSON.stringify(rows.map((r) => ({ id: r.id, attempt: 1, outcome: 'checked', executionName: `e-${r.task_index}` })));
    async function buffersAt(inFlight: number): Promise<number> {
      await h.db.pool.query(
        "update tasks set status = 'running', execution_name = 'e-' || task_index where run_id = $1 and name = 'a' and task_index < $2 and status <> 'running'",
        [runId, inFlight],
      );
      const plan = await analyzedPlan(h.db.pool, RECORD_SQL, [checks, '{}', 1200]);
      // The ten checks were recorded (each moves checked_at): a statement that changed nothing would
      // read little too.
      expect(updatedTasks(plan)).toBe(10);
      return buffersRead(plan);
    }
    const few = await buffersAt(100);
    const many = await buffersAt(5000);
    // The same index lookups and writes for the ten rows at either size (about 250 pages); a plan that
    // reads the tasks in flight reads over a thousand more at 5,000.
    expect(many).toBeLessThan(few * 1.5);
  });
});

/** Rows the plan's UPDATE of tasks changed. */
function updatedTasks(node: PlanNode): number {
  if (node['Node Type'] === 'ModifyTable' && node['Relation Name'] === 'tasks') return node['Actual Rows'];
  return (node.Plans ?? []).reduce((n, child) => n + updatedTasks(child), 0);
}
