import { getRun } from '../../shared/model/runs';
import { retryRun } from '../../shared/operator/retry';
import { tick } from '../../shared/tick';
import { emulatorHarness, type Harness } from '../helpers/harness';

// A workflow whose tasks each fail their first attempt (the emulator's EMU_FAIL), so every task goes
// back to `queued` once after it has been in flight, and a task waiting on them meanwhile.
const workflow = (name: string, lines: { limit?: number; retries: number }) => `
name: ${name}
${lines.limit ? `concurrency: ${lines.limit}` : ''}
defaults: { backoff: 10ms, retries: ${lines.retries} }
tasks:
  a: { job: projects/p/locations/l/jobs/a, count: 3, env: { EMU_FAIL: "attempts<2", EMU_DURATION_MS: "30" } }
  b: { job: projects/p/locations/l/jobs/b, depends_on: [a] }
`;

// Tasks in flight without a concurrency slot, leaving out those let in before the limit existed (in
// flight then, on that same attempt): under a limit, nothing else may enter flight without one.
const UNSLOTTED_SQL = `
select t.name, t.task_index, t.attempt, t.status from tasks t
where t.workflow = $1 and t.status in ('claimed', 'dispatched', 'running')
  and not exists (select 1 from concurrency_slots s where s.task_id = t.id)
  and not (t.id = any ($2::uuid[]) and t.attempt = 1)`;

describe('changing a concurrency limit while runs are live', () => {
  let h: Harness;
  emulatorHarness((started) => ({ h } = started));

  /** Ticks until every run has ended; after each tick, `check` (if any) must hold. */
  async function tickToEnd(runs: string[], check?: () => Promise<void>): Promise<string[]> {
    for (let i = 0; i < 150; i++) {
      await tick(h.deps, { budgetMs: 0 });
      await check?.();
      const statuses = await Promise.all(runs.map(async (id) => (await getRun(h.db.pool, id)).status));
      if (statuses.every((s) => ['success', 'failed', 'cancelled'].includes(s))) return statuses;
      await new Promise((r) => setTimeout(r, 15));
    }
    const { rows } = await h.db.pool.query('select name, task_index, status, attempt, limited from tasks where run_id = any ($1) order by 1, 2', [runs]);
    throw new Error(`runs did not end within 150 ticks: ${JSON.stringify(rows)}`);
  }
  const inFlight = async (name: string) =>
    (await h.db.pool.query("select id from tasks where workflow = $1 and status in ('claimed', 'dispatched', 'running')", [name])).rows.map((r) => r.id as string);
  const expectSlotted = (name: string, before: string[]) => async () =>
    expect((await h.db.pool.query(UNSLOTTED_SQL, [name, before])).rows).toEqual([]);

  it('a limit removed with tasks in flight, waiting and due a retry: every run still ends in success', async () => {
    await h.apply(workflow('unlimit', { limit: 2, retries: 1 }));
    const runs = [await h.trigger('unlimit'), await h.trigger('unlimit')];
    await tick(h.deps, { budgetMs: 0 });
    expect(await inFlight('unlimit')).toHaveLength(2);
    await h.apply(workflow('unlimit', { retries: 1 }));
    expect(await tickToEnd(runs)).toEqual(['success', 'success']);
  });

  it('a limit added with tasks in flight and waiting: every run ends in success, and what enters flight after takes a slot', async () => {
    await h.apply(workflow('limit', { retries: 1 }));
    const runs = [await h.trigger('limit'), await h.trigger('limit')];
    await tick(h.deps, { budgetMs: 0 });
    const before = await inFlight('limit');
    expect(before).toHaveLength(6);
    await h.apply(workflow('limit', { limit: 1, retries: 1 }));
    expect(await tickToEnd(runs, expectSlotted('limit', before))).toEqual(['success', 'success']);
  });

  it('retry of a failed run after its limit was removed: the run ends in success', async () => {
    await h.apply(workflow('retry-unlimit', { limit: 1, retries: 0 }));
    const run = await h.trigger('retry-unlimit');
    expect(await tickToEnd([run])).toEqual(['failed']);
    await h.apply(workflow('retry-unlimit', { retries: 0 }));
    expect(await retryRun(h.db.pool, run)).toMatchObject({ retried: true, requeuedTasks: 3 });
    expect(await tickToEnd([run])).toEqual(['success']);
  });

  it('retry of a failed run after a limit was added: the run ends in success, its tasks taking slots', async () => {
    await h.apply(workflow('retry-limit', { retries: 0 }));
    const run = await h.trigger('retry-limit');
    expect(await tickToEnd([run])).toEqual(['failed']);
    await h.apply(workflow('retry-limit', { limit: 1, retries: 0 }));
    expect(await retryRun(h.db.pool, run)).toMatchObject({ retried: true });
    expect(await tickToEnd([run], expectSlotted('retry-limit', []))).toEqual(['success']);
  });
});
