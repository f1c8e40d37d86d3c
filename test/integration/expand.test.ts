import { getRun } from '../../shared/model/runs';
import { tick } from '../../shared/tick';
import { createHarness, type Harness } from '../helpers/harness';

// A run pinned with a definition as a tickrun before duration bounds stored it: the file's `timeout`
// went through unchecked, however long. `tasks.a` of the workflow's own definition is replaced.
const PINNED_SQL = `
insert into runs (workflow, workflow_version, definition)
select name, version, jsonb_set(definition, '{tasks,a,timeoutMs}', $2::jsonb) from workflows where name = $1
returning id`;

describe('expand: one run never stops the others', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness();
    await h.apply(`name: legacy\ntasks:\n  a: { executor: process, command: ["node", "-e", ""] }\n`);
    await h.apply(`name: healthy\ntasks:\n  b: { executor: process, command: ["node", "-e", ""] }\n  c: { executor: process, command: ["node", "-e", ""], depends_on: [b] }\n`);
  });
  afterEach(() => h.close());

  const pin = async (timeoutMs: string) => (await h.db.pool.query(PINNED_SQL, ['legacy', timeoutMs])).rows[0].id as string;

  it('a run pinned with a 30-day timeout expands and runs: durations are stored in columns that hold them', async () => {
    const legacy = await pin(String(30 * 86_400_000));
    const run = await h.runToEnd(legacy);
    expect(run.status).toBe('success');
    const { rows } = await h.db.pool.query('select timeout_ms::text as t from tasks where run_id = $1', [legacy]);
    expect(rows).toEqual([{ t: '2592000000' }]);
  });

  it('a run whose definition cannot be expanded fails alone: another workflow’s run succeeds in the same ticks', async () => {
    // Larger than any integer column: nothing can store this run's tasks.
    const poisoned = await pin('99999999999999999999999');
    const healthy = await h.trigger('healthy');
    // A tick that threw would fail the test here: no tick may fail because of one run.
    const first = await tick(h.deps, { budgetMs: 0 });
    expect(first.runsStarted).toBe(1);
    const run = await getRun(h.db.pool, poisoned);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/could not be expanded: .*out of range for type bigint/);
    expect(run.finishedAt).not.toBeNull();
    expect(await h.tasks(poisoned)).toEqual([]);
    expect((await getRun(h.db.pool, healthy)).status).toBe('running');
    expect((await h.runToEnd(healthy)).status).toBe('success');
  });
});
